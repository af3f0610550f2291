"""The login node as FirecREST v2 implementations use it: they log in as the
user (a static key, or a certificate without force-command) and keep one
connection per user open, running many plain commands over it, several at
once. The command wrapper's allow-list applies to each of them, and nothing
a user can write (~/.bashrc, ~/.ssh/rc) runs before it. The v1 protocol
(the certificate text as the command) keeps working alongside. The
environment (conftest's V2_LOGIN_CLUSTER, shared with test_slurmrestd.py)
runs beside the session's, and its `down` (the last test of both files)
leaves nothing and the other one running."""

from __future__ import annotations

import base64
import os
import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import paramiko
import pytest

from firecrest_testbuild.common import sshexec
from firecrest_testbuild.common.certificates import issue_identity
from firecrest_testbuild.common.sshexec import LoginRefused, Output, SshTarget
from firecrest_testbuild.harness.contracts import ClusterEndpoints
from firecrest_testbuild.harness.environment import Environment
from firecrest_testbuild.harness.keys import load_paramiko_key
from firecrest_testbuild.harness.ssh import LoginNode
from tests.integration.conftest import eventually, login_node

pytestmark = pytest.mark.integration

REFUSED = 118


class PooledConnection:
    """One SSH connection kept open, a session per command (as v2's pool)."""

    def __init__(self, endpoints: ClusterEndpoints, user: str, pkey: paramiko.PKey) -> None:
        ssh = endpoints.ssh
        self.target = SshTarget(ssh.host, ssh.port, ssh.host_key)
        self.client = sshexec.connect(self.target, user, pkey)

    def run(self, command: str, stdin: bytes = b"", timeout: float = 60) -> Output:
        return sshexec.run(self.client, self.target, command, stdin, timeout)

    def close(self) -> None:
        self.client.close()


def endpoints_of(environment: Environment) -> ClusterEndpoints:
    return environment.context().endpoints(ClusterEndpoints)


def static_key(environment: Environment, user: str) -> paramiko.PKey:
    return load_paramiko_key(environment.state.user_key(user))


def certificate_without_force_command(login: LoginNode, user: str) -> paramiko.PKey:
    """v2's per-user `public_cert`, or what an SSH CA service signs."""
    return issue_identity(login.ca.private_key(), user, force_command=None).pkey


CREDENTIALS = ("static-key", "certificate-without-force-command")


def credential(environment: Environment, kind: str, user: str) -> paramiko.PKey:
    if kind == "static-key":
        return static_key(environment, user)
    return certificate_without_force_command(login_node(environment), user)


@pytest.fixture(params=CREDENTIALS)
def pooled(
    request: pytest.FixtureRequest, v2_login_environment: Environment
) -> Iterator[PooledConnection]:
    pkey = credential(v2_login_environment, request.param, "test1")
    connection = PooledConnection(endpoints_of(v2_login_environment), "test1", pkey)
    yield connection
    connection.close()


def controller_run(environment: Environment, command: str) -> str:
    return environment.runtime.execute("controller", ["bash", "-c", command]).output


def test_one_connection_runs_200_plain_commands(pooled: PooledConnection, capsys):
    latencies = []
    for index in range(200):
        started = time.perf_counter()
        ran = pooled.run(f"timeout 5 echo {index}")
        latencies.append(time.perf_counter() - started)
        assert (ran.exit_status, ran.text) == (0, f"{index}\n"), ran.stderr
    median = statistics.median(latencies) * 1000
    with capsys.disabled():
        print(
            f"\n200 commands over one connection: median {median:.1f} ms,"
            f" p90 {statistics.quantiles(latencies, n=10)[-1] * 1000:.1f} ms"
        )
    assert median < 100  # the target is 15 ms; this machine is shared


def test_many_sessions_at_once_over_one_connection(pooled: PooledConnection):
    with ThreadPoolExecutor(max_workers=30) as pool:
        results = list(pool.map(lambda i: pooled.run(f"echo {i} && id -un"), range(60)))
    for index, ran in enumerate(results):
        assert (ran.exit_status, ran.text) == (0, f"{index}\ntest1\n"), ran.stderr


def test_many_connections_at_once(v2_login_environment: Environment):
    endpoints = endpoints_of(v2_login_environment)
    users = [user.name for user in v2_login_environment.config.users]

    def connect_and_run(index: int) -> tuple[str, Output]:
        user = users[index % len(users)]
        kind = CREDENTIALS[index % 2]
        connection = PooledConnection(endpoints, user, credential(v2_login_environment, kind, user))
        try:
            return user, connection.run("id -un")
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(connect_and_run, range(40)))
    for user, ran in results:
        assert (ran.exit_status, ran.text.strip()) == (0, user), ran.stderr


def test_v2_file_command_lines(pooled: PooledConnection):
    data = os.urandom(3000)
    target = "/home/test1/v2 upload.bin"
    sent = pooled.run(f"base64 -d > '{target}'", stdin=base64.b64encode(data))
    assert sent.exit_status == 0, sent.stderr
    listed = pooled.run(f"timeout 5 ls -l --time-style=+%s '{target}'")
    assert listed.exit_status == 0 and " 3000 " in listed.text, listed.stderr
    chunk = pooled.run(f"timeout 5 dd if='{target}' bs=1000 skip=1 count=1")
    assert (chunk.exit_status, chunk.stdout) == (0, data[1000:2000]), chunk.stderr
    assert pooled.run("cd /home/test1 && timeout 5 ls").text.count("v2 upload.bin") == 1
    assert pooled.run("id").text.startswith("uid=1001(test1)")
    assert pooled.run("true").exit_status == 0
    made = pooled.run("mkdir -p /home/test1/cz && touch /home/test1/cz/a.txt /home/test1/cz/b.log")
    assert made.exit_status == 0, made.stderr
    compressed = pooled.run(
        "timeout 5 bash -c \"cd /home/test1/cz; timeout 5 find . -type f -regex '.*\\.txt'"
        " -print0 | tar -czvf '/home/test1/cz.tar.gz' --null --files-from - \""
    )
    assert (compressed.exit_status, compressed.text.strip()) == (0, "./a.txt"), compressed.stderr
    assert pooled.run("tar -tzf /home/test1/cz.tar.gz").text.split() == ["./a.txt"]


def test_v2_scheduler_command_lines(pooled: PooledConnection, v2_login_environment: Environment):
    script = b"#!/bin/bash\n#SBATCH --output=/dev/null\nsleep 60\n"
    submitted = pooled.run("sbatch --chdir=/home/test1", stdin=script)
    assert submitted.exit_status == 0, submitted.stderr
    job_id = submitted.text.split()[-1]

    def state() -> str:
        return pooled.run(
            f"SLURM_TIME_FORMAT='%s' squeue --noheader --jobs={job_id} --format='%T|%S'"
        ).text.strip()

    eventually(lambda: state().startswith("RUNNING|"))
    assert state().split("|")[1].isdigit()  # SLURM_TIME_FORMAT reached squeue
    attached = pooled.run(f"srun --overlap --jobid={job_id} hostname")
    assert (attached.exit_status, attached.text.strip()) == (0, "c1"), attached.stderr
    assert pooled.run(f"scancel {job_id}").exit_status == 0
    default = pooled.run("sacctmgr show user 'test1' format=defaultaccount -n")
    assert (default.exit_status, default.text.strip()) == (0, "testbuild"), default.stderr
    accounts = pooled.run("sacctmgr show assoc user='test1' format=account -n")
    assert accounts.text.split() == ["testbuild"], accounts.stderr


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("cat <(uname -a)", "process substitution (<() is not allowed"),
        ('bash -c "uname"', "'uname' is not an allowed command"),
        ("ls\nuname", "'uname' is not an allowed command"),
        ("PATH=/home/test1 ls", "setting PATH is not allowed"),
        ("find /home/test1 -exec uname ;", "'uname' is not an allowed command"),
    ],
)
def test_commands_outside_the_allow_list_are_refused_and_logged(
    pooled: PooledConnection, v2_login_environment: Environment, command: str, reason: str
):
    ran = pooled.run(command)
    assert (ran.exit_status, ran.stdout) == (REFUSED, b"")
    assert reason in ran.stderr
    log = controller_run(v2_login_environment, "tail -n 20 /var/log/testbuild/commands.log")
    assert f"refused ({reason}" in log or reason in log


def test_v1_protocol_still_works(v2_login_environment: Environment):
    login = login_node(v2_login_environment)
    ran = login.run("test2", "ID=trace7 timeout 5 id -un")
    assert (ran.exit_status, ran.stdout.strip()) == (0, "test2")
    same = login.run("test2", "id -un", protocol="plain-command")
    assert (same.exit_status, same.stdout.strip()) == (0, "test2")


def test_no_user_file_runs_before_the_wrapper(v2_login_environment: Environment):
    """A ~/.bashrc or ~/.ssh/rc uploaded through the API must not run at login:
    bash started by sshd would source the one, sshd itself the other."""
    endpoints = endpoints_of(v2_login_environment)
    writer = PooledConnection(endpoints, "test2", static_key(v2_login_environment, "test2"))
    marker = "/home/test2/rc-ran"
    payload = base64.b64encode(f"touch {marker}-$$\n".encode())
    try:
        for path in ("/home/test2/.bashrc", "/home/test2/.ssh/rc"):
            written = writer.run(f"base64 -d > '{path}'", stdin=payload)
            assert written.exit_status == 0, written.stderr
        login = login_node(v2_login_environment)
        pooled = writer.run("id -un")
        runs = [
            (pooled.exit_status, pooled.text, pooled.stderr),
            *(
                (ran.exit_status, ran.stdout, ran.stderr)
                for ran in (
                    login.run("test2", "id -un"),  # v1: the certificate as the command
                    login.run("test2", "id -un", protocol="plain-command"),
                    login.run_with_key(
                        "test2", certificate_without_force_command(login, "test2"), "id -un"
                    ),
                )
            ),
        ]
        for status, stdout, stderr in runs:
            assert (status, stdout.strip()) == (0, "test2"), stderr
        assert writer.run("echo $SHLVL").text.strip() == "2"  # as without the fix
        assert (
            controller_run(v2_login_environment, f"ls {marker}-* 2>/dev/null; true").strip() == ""
        )
        # The files would run: bash as sshd starts it without SHLVL sources ~/.bashrc.
        controller_run(
            v2_login_environment, "runuser -u test2 -- env -u SHLVL SSH_CLIENT=x bash -c true"
        )
        assert controller_run(v2_login_environment, f"ls {marker}-*").strip().startswith(marker)
        controller_run(v2_login_environment, f"rm -f {marker}-*")
        shell = controller_run(v2_login_environment, "getent passwd test2 | cut -d: -f7").strip()
        assert shell == "/bin/bash"  # users' jobs still get bash
    finally:
        writer.run("rm -f /home/test2/.ssh/rc")
        writer.run("cp /etc/skel/.bashrc /home/test2/.bashrc")
        writer.close()


def test_a_static_key_logs_in_only_its_own_user(v2_login_environment: Environment):
    login = login_node(v2_login_environment)
    key = static_key(v2_login_environment, "test1")
    ran = login.run_with_key("test1", key, "id -un")
    assert (ran.exit_status, ran.stdout.strip()) == (0, "test1")
    with pytest.raises(LoginRefused):
        login.run_with_key("test2", key, "id")


@pytest.mark.ends_environment
def test_down_beside_another_environment_leaves_nothing_and_the_other_running(
    v2_login_environment: Environment, split_environment: Environment
):
    """Runs after test_slurmrestd.py's and test_keycloak.py's tests too
    (ends_environment); the other environment is the split one, up on the
    same worker (tests/conftest.py)."""
    assert login_node(v2_login_environment).port != login_node(split_environment).port
    removed = v2_login_environment.down()
    assert any(item.startswith("volume ") for item in removed)
    assert v2_login_environment.runtime.leftovers() == []
    assert not v2_login_environment.state.root.exists()
    status = split_environment.status()
    assert status and all(row["state"] == "running" for row in status)
