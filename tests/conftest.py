"""How pytest-xdist shares the integration tests between its workers
(`make integration` runs `-n $(WORKERS)`, 3 by default)."""

from __future__ import annotations

from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

CLUSTER_TESTS = "tests/integration/cluster/"


class ByEnvironment(LoadScopeScheduling):
    """A test file's tests go to one worker together, and so do all the
    cluster tests (they run on both Slurm generations): each environment a
    module, or the cluster tests, bring up comes up once in the run. Only the
    session's environment comes up on every worker that needs it.

    (xdist's own `loadgroup` would do with markers, but it cannot rename test
    ids under pytest 9.2, so its groups are silently ignored.)"""

    def _split_scope(self, nodeid: str) -> str:
        path = nodeid.split("::", 1)[0]
        return CLUSTER_TESTS if path.startswith(CLUSTER_TESTS) else path


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> ByEnvironment:
    return ByEnvironment(config, log)
