"""Each Slurm generation end to end (cluster.slurm): munge, slurmdbd with
accounting, slurmctld, slurmd on the compute nodes, partitions, associations.

On each generation's environment (conftest.py here)."""

from __future__ import annotations

import pytest

from firecrest_testbuild.harness.environment import Environment
from firecrest_testbuild.harness.ssh import LoginNode
from tests.integration.conftest import eventually, login_node, output_of

pytestmark = pytest.mark.integration


def root(env: Environment, command: str) -> str:
    return output_of(env.runtime.container("controller"), ["bash", "-c", command]).strip()


def test_the_cluster_runs_the_configured_slurm(environment: Environment):
    version = environment.config.cluster.slurm
    assert root(environment, "sinfo --version").startswith(f"slurm-wlm {version}.")
    compute = environment.runtime.execute("c1", ["slurmd", "-V"])
    assert compute.output.strip().startswith(f"slurm-wlm {version}.")


def test_partitions_nodes_and_associations(environment: Environment):
    partitions = root(environment, "sinfo --noheader --format=%P").split()
    assert partitions == ["part01*", "part02", "xfer"]
    associations = root(
        environment, "sacctmgr --noheader --parsable2 list association format=user,account"
    ).splitlines()
    for user in environment.config.users:
        assert f"{user.name}|{user.account}" in associations


def test_a_job_completes_in_accounting_with_its_script(environment: Environment):
    login: LoginNode = login_node(environment)
    submitted = login.run("test1", "sbatch --parsable --output=/dev/null --wrap 'hostname'")
    assert submitted.exit_status == 0, submitted.stderr
    job_id = submitted.stdout.strip().split(";")[0]

    def state() -> bool:
        line = root(environment, f"sacct -nP -X -j {job_id} --format=state,user,partition")
        return line == "COMPLETED|test1|part01"

    eventually(state, timeout=90)
    # AccountingStoreFlags=job_script,job_env: the script of a finished job.
    assert "hostname" in root(environment, f"sacct -j {job_id} --batch-script")


def test_sacct_has_the_output_fields_on_24_11_only(environment: Environment):
    fields = root(environment, "sacct --helpformat").split()
    has_output_fields = {"StdIn", "StdOut", "StdErr"} <= set(fields)
    assert has_output_fields == (environment.config.cluster.slurm == "24.11")
