"""Each Slurm generation end to end (cluster.slurm): munge, slurmdbd with
accounting, slurmctld, slurmd on one compute node, partitions, associations.

The environments come one after the other (one at a time on the machine)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from firecrest_testbuild.harness.config import SLURM_RELEASES
from firecrest_testbuild.harness.environment import Environment
from firecrest_testbuild.harness.ssh import LoginNode
from tests.integration.conftest import environment_for, eventually, login_node

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=sorted(SLURM_RELEASES))
def versioned(request: pytest.FixtureRequest, state_home: Path) -> Iterator[Environment]:
    version = request.param
    shared: Environment = request.getfixturevalue("environment")
    if shared.config.cluster.slurm == version:  # the session's environment runs it already
        yield shared
        return
    env = environment_for(
        state_home, f"cluster: {{sshPort: 0, computeNodes: 1, slurm: '{version}'}}\n"
    )
    started = time.monotonic()
    try:
        env.up()
        print(f"\nSlurm {version}: up in {time.monotonic() - started:.1f}s", file=sys.stderr)
        yield env
    finally:
        env.down()


def root(env: Environment, command: str) -> str:
    result = env.runtime.execute("controller", ["bash", "-c", command])
    assert result.exit_code == 0, result.output
    return result.output.strip()


def test_the_cluster_runs_the_configured_slurm(versioned: Environment):
    version = versioned.config.cluster.slurm
    assert root(versioned, "sinfo --version").startswith(f"slurm-wlm {version}.")
    compute = versioned.runtime.execute("c1", ["slurmd", "-V"])
    assert compute.output.strip().startswith(f"slurm-wlm {version}.")


def test_partitions_nodes_and_associations(versioned: Environment):
    partitions = root(versioned, "sinfo --noheader --format=%P").split()
    assert partitions == ["part01*", "part02", "xfer"]
    associations = root(
        versioned, "sacctmgr --noheader --parsable2 list association format=user,account"
    ).splitlines()
    for user in versioned.config.users:
        assert f"{user.name}|{user.account}" in associations


def test_a_job_completes_in_accounting_with_its_script(versioned: Environment):
    login: LoginNode = login_node(versioned)
    submitted = login.run("test1", "sbatch --parsable --output=/dev/null --wrap 'hostname'")
    assert submitted.exit_status == 0, submitted.stderr
    job_id = submitted.stdout.strip().split(";")[0]

    def state() -> bool:
        line = root(versioned, f"sacct -nP -X -j {job_id} --format=state,user,partition")
        return line == "COMPLETED|test1|part01"

    eventually(state, timeout=90)
    # AccountingStoreFlags=job_script,job_env: the script of a finished job.
    assert "hostname" in root(versioned, f"sacct -j {job_id} --batch-script")


def test_sacct_has_the_output_fields_on_24_11_only(versioned: Environment):
    fields = root(versioned, "sacct --helpformat").split()
    has_output_fields = {"StdIn", "StdOut", "StdErr"} <= set(fields)
    assert has_output_fields == (versioned.config.cluster.slurm == "24.11")
