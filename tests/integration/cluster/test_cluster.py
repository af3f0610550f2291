"""The cluster as a FirecREST site sees it, driven from the host over SSH, on
each Slurm generation."""

from __future__ import annotations

import hashlib
import os

import pytest

from firecrest_testbuild.common.certificates import issue_identity
from firecrest_testbuild.common.sshexec import LoginRefused
from firecrest_testbuild.harness.config import User
from firecrest_testbuild.harness.environment import Environment
from firecrest_testbuild.harness.keycloak_realm import TokenRefused
from firecrest_testbuild.harness.keys import load_paramiko_key
from firecrest_testbuild.harness.ssh import LoginNode
from tests.integration.conftest import eventually, keycloak, login_node, minio_of

pytestmark = pytest.mark.integration


JOB_SCRIPT = """#!/bin/bash
#SBATCH --job-name=test
#SBATCH --output=/home/test1/res.txt
#SBATCH --ntasks=1
#SBATCH --time=10:00

sha1sum /home/test1/input_file
"""


def sacct_state(login: LoginNode, user: str, job_id: str) -> str:
    result = login.run(
        user, f"sacct --noheader --parsable2 --allocations --jobs={job_id} --format=state"
    )
    return result.stdout.strip()


def test_tutorial_sha1_job_completes_in_accounting_with_the_hosts_sha1(login: LoginNode):
    data = os.urandom(64 * 1024)
    assert login.run("test1", "cat > /home/test1/input_file", stdin=data).exit_status == 0
    assert (
        login.run("test1", "cat > /home/test1/script.sh", stdin=JOB_SCRIPT.encode()).exit_status
        == 0
    )

    submitted = login.run("test1", "sbatch /home/test1/script.sh")
    assert submitted.exit_status == 0, submitted.stderr
    job_id = submitted.stdout.split()[-1]
    assert job_id.isdigit()

    eventually(lambda: sacct_state(login, "test1", job_id) == "COMPLETED")
    output = login.run("test1", "cat /home/test1/res.txt").stdout
    assert output.split() == [hashlib.sha1(data).hexdigest(), "/home/test1/input_file"]


ENV_JOB = """#!/bin/bash
#SBATCH --nodelist=c1
echo "HOME=$HOME USER=$USER GREETING=${GREETING:-unset}"
"""


@pytest.mark.parametrize(
    ("export", "greeting"), [("NONE", "unset"), ("ALL,GREETING=hello", "hello")]
)
def test_a_job_asking_for_the_users_login_environment_gets_it(
    login: LoginNode, environment: Environment, export: str, greeting: str
):
    # sbatch sets SLURM_GET_USER_ENV=1 for both (FirecREST v1 sends the second
    # for job environment variables): slurmd then loads test1's login
    # environment, which once killed slurmd 24.11 (cluster/slurm-24.11.conf).
    assert login.run("test1", "cat > /home/test1/env.sh", stdin=ENV_JOB.encode()).exit_status == 0
    output = f"/home/test1/env-{export.split(',')[0]}.out"
    submitted = login.run(
        "test1", f"sbatch --parsable --export={export} --output={output} /home/test1/env.sh"
    )
    assert submitted.exit_status == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    eventually(lambda: sacct_state(login, "test1", job_id) in {"COMPLETED", "FAILED", "NODE_FAIL"})
    assert sacct_state(login, "test1", job_id) == "COMPLETED"
    printed = login.run("test1", f"cat {output}").stdout.split()
    assert printed == ["HOME=/home/test1", "USER=test1", f"GREETING={greeting}"]
    c1 = environment.runtime.container("c1")
    c1.reload()
    assert c1.status == "running"


def test_job_is_visible_in_squeue_while_it_runs(login: LoginNode):
    submitted = login.run("test1", "sbatch --wrap 'sleep 30' --output=/dev/null")
    job_id = submitted.stdout.split()[-1]
    listed = login.run("test1", "squeue --noheader --format=%i:%T:%u").stdout
    assert f"{job_id}:" in listed and ":test1" in listed
    assert login.run("test1", f"scancel {job_id}").exit_status == 0
    eventually(lambda: sacct_state(login, "test1", job_id).startswith("CANCELLED"))


def test_srun_on_two_nodes_prints_two_hostnames(login: LoginNode):
    result = login.run("test2", "srun --nodes=2 --ntasks-per-node=1 hostname")
    assert result.exit_status == 0, result.stderr
    assert sorted(result.stdout.split()) == ["c1", "c2"]


def test_files_written_on_the_login_node_are_read_on_a_compute_node(login: LoginNode):
    scratch, home = os.urandom(8).hex(), os.urandom(8).hex()
    login.run("test1", f"echo {scratch} > /scratch/test1/shared.txt")
    login.run("test1", f"echo {home} > /home/test1/shared.txt")
    read = login.run(
        "test1", "srun --nodelist=c2 cat /scratch/test1/shared.txt /home/test1/shared.txt"
    )
    assert read.exit_status == 0, read.stderr
    assert read.stdout.split() == [scratch, home]


def test_users_have_the_same_uid_on_every_node(environment: Environment):
    for node in ["controller", "c1", "c2"]:
        for user in environment.config.users:
            uid = environment.runtime.execute(node, ["id", "-u", user.name]).output.strip()
            assert uid == str(user.uid), (node, user.name)


def test_partitions_and_accounting_associations(login: LoginNode, environment: Environment):
    partitions = login.run("test1", "sinfo --noheader --format=%P").stdout.split()
    assert sorted(partitions) == ["part01*", "part02", "xfer"]
    associations = login.run(
        "test1", "sacctmgr --noheader --parsable2 list association user=test1 format=user,account"
    )  # sacctmgr is on the allow-list (FirecREST v2 asks for users' accounts)
    assert associations.stdout.split() == ["test1|testbuild"], associations.stderr
    listed = environment.runtime.execute(
        "controller",
        ["sacctmgr", "--noheader", "--parsable2", "list", "association", "format=user,account"],
    )
    rows = set(listed.output.split())
    for user in environment.config.users:
        assert f"{user.name}|{user.account}" in rows


def test_command_outside_the_allow_list_is_refused(login: LoginNode):
    result = login.run("test1", "bash -i")
    assert result.exit_status == 118
    assert "'bash' is not an allowed command" in result.stderr
    inner = login.run("test1", "bash -c 'uname -a'")  # the line inside is checked
    assert (inner.exit_status, inner.stdout) == (118, "")
    assert "'uname' is not an allowed command" in inner.stderr
    assert result.stdout == ""


def test_upstream_protocol_and_a_mismatched_certificate(login: LoginNode):
    identity = issue_identity(
        login.ca.private_key(), "test1", force_command="ID=trace42 timeout 5 id -un"
    )
    ran = login.run_with_key("test1", identity.pkey, identity.certificate)
    assert (ran.exit_status, ran.stdout.strip()) == (0, "test1")
    other = issue_identity(login.ca.private_key(), "test1", force_command="cat /etc/passwd")
    refused = login.run_with_key("test1", identity.pkey, other.certificate)
    assert refused.exit_status == 118
    assert "not the one used to log in" in refused.stderr


def test_plain_command_with_a_matching_certificate_runs(login: LoginNode):
    result = login.run("test2", "id -un", protocol="plain-command")
    assert (result.exit_status, result.stdout.strip()) == (0, "test2")


def test_a_plain_key_is_refused_in_certificate_mode_even_if_authorized(
    login: LoginNode, environment: Environment
):
    pair = environment.state.user_key("test1")
    controller = environment.runtime.container("controller")
    authorize = (
        "install -d -o test1 -m 700 /home/test1/.ssh"
        f" && echo '{pair.public_line()}' > /home/test1/.ssh/authorized_keys"
    )
    assert controller.exec_run(["bash", "-c", authorize]).exit_code == 0
    try:
        with pytest.raises(LoginRefused):
            login.run_with_key("test1", load_paramiko_key(pair), "id")
    finally:
        controller.exec_run(["rm", "-rf", "/home/test1/.ssh"])


def test_a_certificate_for_another_user_is_refused(login: LoginNode):
    identity = issue_identity(login.ca.private_key(), "test2", force_command="id")
    with pytest.raises(LoginRefused):
        login.run_with_key("test1", identity.pkey, identity.certificate)


def test_up_again_with_a_new_user_seeds_it_without_recreating_nodes(environment: Environment):
    before = {c.name: c.id for c in environment.runtime.containers()}
    newcomer = User(name="newcomer", uid=1500, password="newcomer1", account="extra")
    config = environment.config.model_copy(update={"users": (*environment.config.users, newcomer)})
    updated = Environment(config, environment.state.home, environment.progress)
    try:
        updated.up()
        assert {c.name: c.id for c in updated.runtime.containers()} == before

        login = login_node(updated)
        result = login.run("newcomer", "srun --nodelist=c1 id -u")
        assert (result.exit_status, result.stdout.strip()) == (0, "1500")
        rows = updated.runtime.execute(
            "controller",
            ["sacctmgr", "-nP", "list", "association", "user=newcomer", "format=account"],
        )
        assert rows.output.split() == ["extra"]
        listed = login.run("newcomer", "stat -c '%n %U %a' /home/newcomer /home/newcomer/.bashrc")
        assert listed.stdout.split() == [
            *("/home/newcomer", "newcomer", "700"),
            *("/home/newcomer/.bashrc", "newcomer", "644"),
        ]  # /etc/skel's files, as `useradd -m` gives them
        assert keycloak(updated).token(user=newcomer)
        assert minio_of(updated).client(updated.context()).bucket_exists("newcomer")
    finally:
        environment.up()  # back to the original users, whatever happened above

    gone = environment.runtime.container("controller").exec_run(["id", "newcomer"])
    assert gone.exit_code != 0
    with pytest.raises(TokenRefused):
        keycloak(updated).token(user=newcomer)
