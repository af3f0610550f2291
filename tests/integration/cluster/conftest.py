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
def slurm_environment(
    request: pytest.FixtureRequest, session_environment: Environment
) -> Environment:
    if request.param == session_environment.config.cluster.slurm:
        return session_environment
    older: Environment = request.getfixturevalue("older_slurm_environment")
    assert older.config.cluster.slurm == request.param
    return older


@pytest.fixture(scope="module")
def environment(slurm_environment: Environment) -> Environment:
    return slurm_environment


@pytest.fixture(scope="module")
def login(environment: Environment) -> LoginNode:
    return login_node(environment)
