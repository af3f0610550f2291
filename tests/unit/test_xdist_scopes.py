"""Which integration tests pytest-xdist keeps on one worker (tests/conftest.py):
splitting a file, the files of a shared fixture, or one Slurm
generation's cluster tests, would bring their environment up twice."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.conftest import environment_scope, pytest_collection_modifyitems


def test_a_files_tests_share_a_scope_whatever_their_parameters():
    scopes = {
        environment_scope("tests/integration/test_stack_v2.py::test_liveness_needs_no_token"),
        environment_scope("tests/integration/test_stack_v2.py::test_ls[a-b]"),
    }
    assert scopes == {"tests/integration/test_stack_v2.py"}


def test_cluster_tests_share_a_scope_per_slurm_generation_across_files():
    ids = [
        "tests/integration/cluster/test_cluster.py::test_srun[22.05]",
        "tests/integration/cluster/test_cluster.py::test_env[22.05-NONE-unset]",
        "tests/integration/cluster/test_slurm_versions.py::test_job[22.05]",
        "tests/integration/cluster/test_cluster.py::test_srun[24.11]",
        "tests/integration/cluster/test_cluster_site.py::test_mem[24.11-ALL,X=y-y]",
    ]
    assert [environment_scope(nodeid) for nodeid in ids] == [
        *["tests/integration/cluster/22.05"] * 3,
        *["tests/integration/cluster/24.11"] * 2,
    ]


def test_the_files_of_a_shared_fixture_share_one_scope():
    files = [
        "test_hosting.py",
        "test_keycloak.py",
        "test_stack_reservations.py",
        "test_stack_split.py",
    ]
    scopes = {environment_scope(f"tests/integration/{name}::test_x") for name in files}
    assert scopes == {"split_environment"}
    both = ["test_conformance.py", "test_conformance_v2.py"]
    runs = {environment_scope(f"tests/integration/{name}::test_x") for name in both}
    assert runs == {"suite_runs"}
    logins = ["test_cluster_v2_ssh.py", "test_slurmrestd.py"]
    login = {environment_scope(f"tests/integration/{name}::test_x") for name in logins}
    assert login == {"v2_login_environment"}
    assert environment_scope("tests/integration/test_minio.py::test_x") == (
        "tests/integration/test_minio.py"
    )


@dataclass
class Collected:
    """What the ordering hook reads of a collected test."""

    name: str
    ends: bool = False

    def get_closest_marker(self, name: str) -> pytest.Mark | None:
        return (
            pytest.mark.ends_environment.mark if self.ends and name == "ends_environment" else None
        )


def test_a_test_that_ends_a_shared_environment_runs_after_the_other_files():
    items = [
        Collected("v2_ssh::test_pool"),
        Collected("v2_ssh::test_down", ends=True),
        Collected("v2_ssh::test_key"),
        Collected("slurmrestd::test_rest"),
        Collected("slurmrestd::test_hybrid"),
    ]
    pytest_collection_modifyitems(items)  # type: ignore[arg-type]
    assert [item.name for item in items] == [
        "v2_ssh::test_pool",
        "v2_ssh::test_key",
        "slurmrestd::test_rest",
        "slurmrestd::test_hybrid",
        "v2_ssh::test_down",
    ]
