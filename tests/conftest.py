"""How pytest-xdist shares the tests between its workers (`make test` and
`make integration` run `-n $(WORKERS)`, 2 by default)."""

from __future__ import annotations

import ast
import functools
from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

from firecrest_testbuild.harness.config import DEFAULT_SLURM
from tests.repository import ROOT

INTEGRATION_TESTS = "tests/integration/"
CLUSTER_TESTS = f"{INTEGRATION_TESTS}cluster/"
SESSION_SCOPE = "the session's environment"
SPLIT_AND_LOGIN_SCOPE = "the split and v2 login environments"
# The session fixtures that bring environments up, by the scope of the files
# whose tests or fixtures ask for them: a scope's files run on one worker, so
# each of its environments comes up once. (The split and the v2 login
# environments share a scope: test_keycloak.py compares the two.)
SCOPES = {
    "split_environment": SPLIT_AND_LOGIN_SCOPE,
    "v2_login_environment": SPLIT_AND_LOGIN_SCOPE,
    "suite_runs": SESSION_SCOPE,
    "session_environment": SESSION_SCOPE,
    "environment": SESSION_SCOPE,
    "login": SESSION_SCOPE,
}


def _is_fixture(function: ast.FunctionDef) -> bool:
    return any("fixture" in ast.unparse(decorator) for decorator in function.decorator_list)


@functools.cache
def fixtures_asked_for(path: str) -> tuple[str, ...]:
    """The parameter names of the tests and fixtures in the file at `path`
    (helpers' parameters are not fixtures), in the order they appear."""
    source = ROOT / path
    if not source.is_file():
        return ()
    functions = [
        node
        for node in ast.walk(ast.parse(source.read_text()))
        if isinstance(node, ast.FunctionDef)
        and (node.name.startswith("test_") or _is_fixture(node))
    ]
    return tuple(argument.arg for function in functions for argument in function.args.args)


def environment_scope(nodeid: str) -> str:
    """The tests that must share a worker: those of one file, since a file's
    environment comes up once per worker that runs any of its tests; the
    files that ask for one of the environments in SCOPES (the first scope
    they ask for, in SCOPES's order); and the cluster tests of one Slurm
    generation (every test in cluster/ runs on each generation's
    environment, its id starting with the release; the default release's
    is the session's)."""
    path = nodeid.split("::", 1)[0]
    if not path.startswith(INTEGRATION_TESTS):
        return path  # a unit test file: no environment (`make test` runs them beside)
    if path.startswith(CLUSTER_TESTS):
        release = nodeid.partition("[")[2].split("-")[0].rstrip("]")
        return SESSION_SCOPE if release == DEFAULT_SLURM else f"{CLUSTER_TESTS}{release}"
    asked = set(fixtures_asked_for(path))
    return next((scope for name, scope in SCOPES.items() if name in asked), path)


class ByEnvironment(LoadScopeScheduling):
    """Whole scopes (environment_scope) to each worker: every environment
    comes up on one worker only.

    (xdist's own `loadgroup` would do with markers, but it cannot rename test
    ids under pytest 9.2, so its groups are silently ignored.)"""

    def _split_scope(self, nodeid: str) -> str:
        return environment_scope(nodeid)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> ByEnvironment:
    return ByEnvironment(config, log)


# The session fixtures that are environments.
ENVIRONMENTS = frozenset(
    {"session_environment", "older_slurm_environment", "split_environment", "v2_login_environment"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `reconfigures_environment` after the others, then those
    marked `ends_environment`, each in their order: they change or take down
    an environment that tests of other files share (SCOPES). Among those
    that end one, those that ask for more environments first: a test that
    takes one down while it checks that another is still up runs before
    the test that takes that other down, whatever the files' order. Each
    worker collects alike, so the order holds under xdist too: a scope's
    tests run in collection order."""

    def place(item: pytest.Item) -> tuple[int, int]:
        if item.get_closest_marker("ends_environment") is not None:
            return (2, -len(ENVIRONMENTS.intersection(item.fixturenames)))
        if item.get_closest_marker("reconfigures_environment") is not None:
            return (1, 0)
        return (0, 0)

    items.sort(key=place)
