"""How pytest-xdist shares the integration tests between its workers
(`make integration` runs `-n $(WORKERS)`, 2 by default)."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

from tests.repository import ROOT

CLUSTER_TESTS = "tests/integration/cluster/"
# Session fixtures of more than one file that are costly to make: every file
# that uses one is in one scope, so that it is made once. (Environments
# other than the default; the conformance runs of both API generations.)
SHARED_FIXTURES = ("split_environment", "suite_runs", "v2_login_environment")


@functools.cache
def shared_fixture(path: str) -> str | None:
    """The shared fixture the test file at `path` uses, if any."""
    source = (ROOT / path).read_text() if (ROOT / path).is_file() else ""
    return next((name for name in SHARED_FIXTURES if name in source), None)


def environment_scope(nodeid: str) -> str:
    """The tests that must share a worker: those of one file, since a file's
    environment comes up once per worker that runs any of its tests; the
    files of one shared fixture; and the cluster tests of one Slurm
    generation (every test in cluster/ runs on each generation's
    environment, its id starting with the release)."""
    path = nodeid.split("::", 1)[0]
    if not path.startswith(CLUSTER_TESTS):
        return shared_fixture(path) or path
    release = nodeid.partition("[")[2].split("-")[0].rstrip("]")
    return f"{CLUSTER_TESTS}{release}"


class ByEnvironment(LoadScopeScheduling):
    """Whole scopes (environment_scope) to each worker. Only the session's
    environment comes up on every worker that needs it.

    (xdist's own `loadgroup` would do with markers, but it cannot rename test
    ids under pytest 9.2, so its groups are silently ignored.)"""

    def _split_scope(self, nodeid: str) -> str:
        return environment_scope(nodeid)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> ByEnvironment:
    return ByEnvironment(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `ends_environment` after every other, in their order: they
    take down an environment that tests of other files share
    (SHARED_FIXTURES). Each worker collects alike, so the order holds under
    xdist too: a scope's tests run in collection order."""
    items.sort(key=lambda item: item.get_closest_marker("ends_environment") is not None)
