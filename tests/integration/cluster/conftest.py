"""The cluster tests run on each Slurm generation: `environment` here is the
session's environment (the default generation) or the older generation's,
both with two compute nodes (tests/integration/conftest.py)."""

from __future__ import annotations

import pytest

from firecrest_testbuild.harness.config import DEFAULT_SLURM, SLURM_RELEASES
from firecrest_testbuild.harness.environment import Environment
from firecrest_testbuild.harness.ssh import LoginNode
from tests.integration.conftest import login_node


@pytest.fixture(scope="module", params=sorted(SLURM_RELEASES))
def slurm_environment(request: pytest.FixtureRequest) -> Environment:
    """Asks for the one environment of its release only: a worker that runs
    the older generation's tests does not bring the session's up as well."""
    name = "session_environment" if request.param == DEFAULT_SLURM else "older_slurm_environment"
    environment: Environment = request.getfixturevalue(name)
    assert environment.config.cluster.slurm == request.param
    return environment


@pytest.fixture(scope="module")
def environment(slurm_environment: Environment) -> Environment:
    return slurm_environment


@pytest.fixture(scope="module")
def login(environment: Environment) -> LoginNode:
    return login_node(environment)
