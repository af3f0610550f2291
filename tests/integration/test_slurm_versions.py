"""Each Slurm generation end to end (cluster.slurm): munge, slurmdbd with
accounting, slurmctld, slurmd on the compute nodes, partitions, associations.

On the session's environment (the default generation) and the older
generation's, which the cluster tests use too."""

from __future__ import annotations

import pytest

from firecrest_testbuild.harness.config import SLURM_RELEASES
from firecrest_testbuild.harness.environment import Environment
from firecrest_testbuild.harness.ssh import LoginNode
from tests.integration.conftest import each_slurm, eventually, login_node

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=sorted(SLURM_RELEASES))
def versioned(request: pytest.FixtureRequest, environment: Environment) -> Environment:
    return each_slurm(request, environment)


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
