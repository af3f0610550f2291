"""The cluster tests run on each Slurm generation: `environment` here is the
session's environment (the default generation) or the older generation's,
both with two compute nodes (tests/integration/conftest.py)."""

from __future__ import annotations

import pytest

from firecrest_testbuild.harness.config import SLURM_RELEASES
from firecrest_testbuild.harness.environment import Environment
from firecrest_testbuild.harness.ssh import LoginNode
from tests.integration.conftest import login_node


@pytest.fixture(scope="module", params=sorted(SLURM_RELEASES))
def environment(request: pytest.FixtureRequest, environment: Environment) -> Environment:
    if request.param == environment.config.cluster.slurm:
        return environment
    older: Environment = request.getfixturevalue("older_slurm_environment")
    assert older.config.cluster.slurm == request.param
    return older


@pytest.fixture(scope="module")
def login(environment: Environment) -> LoginNode:
    return login_node(environment)
