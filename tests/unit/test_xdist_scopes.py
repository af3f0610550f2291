"""Which integration tests pytest-xdist keeps on one worker (tests/conftest.py):
splitting a file, the files of a shared fixture, or one Slurm
generation's cluster tests, would bring their environment up twice."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import (
    SESSION_SCOPE,
    environment_scope,
    fixtures_asked_for,
    pytest_collection_modifyitems,
)


def test_a_files_tests_share_a_scope_whatever_their_parameters():
    scopes = {
        environment_scope("tests/integration/test_report_page.py::test_page"),
        environment_scope("tests/integration/test_report_page.py::test_page[a-b]"),
    }
    assert scopes == {"tests/integration/test_report_page.py"}


def test_cluster_tests_share_a_scope_per_slurm_generation_across_files():
    ids = [
        "tests/integration/cluster/test_cluster.py::test_srun[22.05]",
        "tests/integration/cluster/test_cluster.py::test_env[22.05-NONE-unset]",
        "tests/integration/cluster/test_slurm_versions.py::test_job[22.05]",
        "tests/integration/cluster/test_cluster.py::test_srun[24.11]",
        "tests/integration/cluster/test_cluster_site.py::test_mem[24.11-ALL,X=y-y]",
    ]
    # 24.11 is the default generation: its environment is the session's.
    assert [environment_scope(nodeid) for nodeid in ids] == [
        *["tests/integration/cluster/22.05"] * 3,
        *[SESSION_SCOPE] * 2,
    ]


def scope_of(name: str) -> str:
    return environment_scope(f"tests/integration/{name}::test_x")


def test_the_files_of_an_environment_share_one_scope():
    split_and_login = [
        "test_hosting.py",
        "test_keycloak.py",
        "test_stack_reservations.py",
        "test_stack_split.py",
        "test_cluster_v2_ssh.py",
        "test_slurmrestd.py",
    ]
    assert {scope_of(name) for name in split_and_login} == {"the split and v2 login environments"}
    session = [
        "test_conformance.py",  # through suite_runs
        "test_conformance_v2.py",
        "test_minio.py",
        "test_stack_v2.py",
        "test_stack_status_tasks.py",
        "test_lifecycle.py",  # a port the session's environment has taken
    ]
    assert {scope_of(name) for name in session} == {SESSION_SCOPE}
    # Files that make their own environment, or none, are scopes of their own.
    for own in ("test_install.py", "test_compose_run.py", "test_report_page.py"):
        assert scope_of(own) == f"tests/integration/{own}"
    # So is every unit test file, whatever its fixtures are called.
    unit = "tests/unit/test_command_wrapper.py"
    assert "login" in fixtures_asked_for(unit)  # a fixture of its own
    assert environment_scope(f"{unit}::test_x") == unit


def test_only_tests_and_fixtures_ask_for_fixtures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A helper's parameter named like a fixture does not put its file in a scope."""
    source = tmp_path / "test_sample.py"
    source.write_text(
        "import pytest\n"
        "def helper(environment, login): ...\n"
        "@pytest.fixture(scope='module')\n"
        "def made(request, split_environment): ...\n"
        "def test_it(made, tmp_path): ...\n"
    )
    monkeypatch.setattr("tests.conftest.ROOT", tmp_path)
    assert fixtures_asked_for("test_sample.py") == (
        "request",
        "split_environment",
        "made",
        "tmp_path",
    )


@dataclass
class Collected:
    """What the ordering hook reads of a collected test."""

    name: str
    ends: bool = False
    fixturenames: tuple[str, ...] = ()
    reconfigures: bool = False

    def get_closest_marker(self, name: str) -> pytest.Mark | None:
        marked = {"ends_environment": self.ends, "reconfigures_environment": self.reconfigures}
        return getattr(pytest.mark, name).mark if marked.get(name) else None


def ordered(*items: Collected) -> list[str]:
    """The names of `items` in the order the hook puts them."""
    collected = list(items)
    pytest_collection_modifyitems(collected)  # type: ignore[arg-type]
    return [item.name for item in collected]


def test_a_test_that_ends_a_shared_environment_runs_after_the_other_files():
    assert ordered(
        Collected("v2_ssh::test_pool"),
        Collected("v2_ssh::test_down", ends=True),
        Collected("v2_ssh::test_key"),
        Collected("slurmrestd::test_rest"),
        Collected("slurmrestd::test_hybrid"),
    ) == [
        "v2_ssh::test_pool",
        "v2_ssh::test_key",
        "slurmrestd::test_rest",
        "slurmrestd::test_hybrid",
        "v2_ssh::test_down",
    ]


def test_a_test_that_reconfigures_a_shared_environment_runs_after_its_other_users():
    """The hybrid test switches the v2 login environment's stack: it runs after
    the tests that use the stack in rest mode, whatever its place in its file,
    and before the test that takes the environment down."""
    assert ordered(
        Collected("slurmrestd::test_hybrid", reconfigures=True),
        Collected("v2_ssh::test_down", ends=True),
        Collected("slurmrestd::test_rest"),
        Collected("keycloak::test_tokens"),
    ) == [
        "slurmrestd::test_rest",
        "keycloak::test_tokens",
        "slurmrestd::test_hybrid",
        "v2_ssh::test_down",
    ]


def test_a_test_that_checks_another_environment_is_up_ends_before_that_one():
    """The v2 login environment's down test checks that the split one is
    still up: it runs before the hosting test that takes the split one down,
    even when the hosting file is collected first."""
    assert ordered(
        Collected("hosting::test_down", ends=True, fixturenames=("hosting", "split_environment")),
        Collected("hosting::test_judged"),
        Collected(
            "v2_ssh::test_down",
            ends=True,
            fixturenames=("v2_login_environment", "split_environment"),
        ),
    ) == [
        "hosting::test_judged",
        "v2_ssh::test_down",
        "hosting::test_down",
    ]
