"""The cluster behaves like a site: nodes declare the memory they have, small
jobs share nodes, new homes get /etc/skel, and commands run through the
login node's wrapper see the environment sshd gives them, locale included.

These run on each Slurm generation (conftest.py here).
"""

from __future__ import annotations

import re

import paramiko
import pytest
from docker.models.containers import Container

from firecrest_testbuild.common.certificates import issue_identity
from firecrest_testbuild.harness.environment import Environment
from firecrest_testbuild.harness.ssh import LoginNode
from tests.integration.conftest import eventually, output_of

pytestmark = pytest.mark.integration


MIB = 1024 * 1024
SKELETON = (".bash_logout", ".bashrc", ".profile")  # Debian bookworm's /etc/skel


def number_after(pattern: str, text: str) -> int:
    found = re.search(pattern, text, re.MULTILINE)
    assert found is not None, (pattern, text)
    return int(found.group(1))


def expected_real_memory(container: Container) -> int:
    """RealMemory as the README states it, worked out here from what the node's
    container has: its cgroup memory limit (v2 or v1) if lower than the
    host's MemTotal, minus 10 % (at least 256 MiB, at most half) for daemons."""
    meminfo = output_of(container, ["cat", "/proc/meminfo"])
    total_kb = number_after(r"^MemTotal:\s+(\d+) kB$", meminfo)
    limit_text = output_of(
        container,
        [
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory.max 2>/dev/null"
            " || cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
        ],
    ).strip()
    memory = total_kb * 1024
    if limit_text.isdigit():
        memory = min(memory, int(limit_text))
    memory_mib = memory // MIB
    margin = min(max(memory_mib // 10, 256), memory_mib // 2)
    return memory_mib - margin


def node_fields(login: LoginNode, node: str) -> dict[str, str]:
    shown = login.run("test1", f"scontrol --oneliner show node {node}")
    assert shown.exit_status == 0, shown.stderr
    return dict(field.split("=", 1) for field in shown.stdout.split() if "=" in field)


def slurm_config(environment: Environment) -> dict[str, str]:
    shown = output_of(environment.runtime.container("controller"), ["scontrol", "show", "config"])
    rows = (line.split("=", 1) for line in shown.splitlines() if " = " in line)
    return {name.strip(): value.strip() for name, value in rows}


def test_nodes_declare_the_memory_their_container_has(login: LoginNode, environment: Environment):
    for node in environment.config.cluster.compute_node_names:
        expected = expected_real_memory(environment.runtime.container(node))
        fields = node_fields(login, node)
        assert int(fields["RealMemory"]) == expected > 1, (node, fields)
        # what slurmd detects is at least that, so no node is drained for "Low RealMemory"
        detected = output_of(environment.runtime.container(node), ["slurmd", "-C"])
        assert number_after(r"RealMemory=(\d+)", detected) >= expected
        assert "DRAIN" not in fields["State"], fields
    config = slurm_config(environment)
    cpus = int(node_fields(login, "c1")["CPUTot"])
    assert config["DefMemPerCPU"] == str(int(node_fields(login, "c1")["RealMemory"]) // cpus)
    assert config["SelectTypeParameters"] == "CR_CPU_MEMORY"


def sacct_fields(login: LoginNode, job_id: str, fields: str) -> str:
    result = login.run(
        "test1", f"sacct --noheader --parsable2 --allocations --jobs={job_id} --format={fields}"
    )
    return result.stdout.strip()


MEM_JOB = """#!/bin/bash
#SBATCH --job-name=mem50
#SBATCH --output=/home/test1/mem50.out
#SBATCH --ntasks=1
#SBATCH --mem=50M
#SBATCH --time=5:00

echo "$SLURM_MEM_PER_NODE"
"""


def test_a_job_asking_for_50M_completes(login: LoginNode):
    assert login.run("test1", "cat > /home/test1/mem50.sh", stdin=MEM_JOB.encode()).exit_status == 0
    submitted = login.run("test1", "sbatch /home/test1/mem50.sh")
    assert submitted.exit_status == 0, submitted.stderr
    job_id = submitted.stdout.split()[-1]
    eventually(lambda: sacct_fields(login, job_id, "state") == "COMPLETED")
    # slurmctld's record (kept MinJobAge=300 s) and the job's own environment;
    # not sacct's ReqMem, which one run showed as "16?" (NO_VAL64) for this job
    shown = login.run("test1", f"scontrol --oneliner show job {job_id}").stdout.split()
    assert "MinMemoryNode=50M" in shown, shown
    assert login.run("test1", "cat /home/test1/mem50.out").stdout.strip() == "50"


def test_a_job_asking_for_more_than_a_node_has_is_refused(login: LoginNode):
    too_much = int(node_fields(login, "c1")["RealMemory"]) + 1
    submitted = login.run("test1", f"sbatch --mem={too_much}M --output=/dev/null --wrap true")
    assert submitted.exit_status == 1
    assert "Memory specification can not be satisfied" in submitted.stderr


def test_one_cpu_jobs_without_mem_run_together_on_one_node(
    login: LoginNode, environment: Environment
):
    cpus = int(node_fields(login, "c1")["CPUTot"])
    assert cpus >= 2, "this test needs a node with two CPUs or more"
    job_ids = []
    try:
        for _ in range(cpus):
            submitted = login.run(
                "test1",
                "sbatch --nodelist=c1 --ntasks=1 --cpus-per-task=1 --output=/dev/null"
                " --wrap 'sleep 120'",
            )
            assert submitted.exit_status == 0, submitted.stderr
            job_ids.append(submitted.stdout.split()[-1])

        def all_running() -> bool:
            listed = login.run(
                "test1", f"squeue --noheader --jobs={','.join(job_ids)} --format=%i:%T:%N"
            ).stdout.split()
            return sorted(listed) == sorted(f"{job}:RUNNING:c1" for job in job_ids)

        eventually(all_running)
        per_cpu = slurm_config(environment)["DefMemPerCPU"]
        for job in job_ids:
            shown = login.run("test1", f"scontrol --oneliner show job {job}").stdout
            assert f"MinMemoryCPU={per_cpu}M" in shown.split(), shown
    finally:
        if job_ids:
            login.run("test1", f"scancel {' '.join(job_ids)}")


def test_partitions_let_jobs_share_nodes(login: LoginNode):
    shown = login.run("test1", "scontrol --oneliner show partition").stdout.splitlines()
    assert len(shown) == 3
    # YES:4: a job asking --oversubscribe may share CPUs with up to 3 others
    assert all("OverSubscribe=YES:4" in line.split() for line in shown), shown


def test_a_new_home_has_the_skeleton_files_owned_by_its_user(
    login: LoginNode, environment: Environment
):
    for user in environment.config.users:
        home = f"/home/{user.name}"
        files = " ".join(f"{home}/{name}" for name in SKELETON)
        skeleton = " ".join(f"/etc/skel/{name}" for name in SKELETON)
        shown = login.run(
            user.name, f"stat -c '%n %U %G %a' {home} {files} && sha1sum {skeleton} {files}"
        )
        assert shown.exit_status == 0, shown.stderr
        lines = shown.stdout.splitlines()
        assert lines[0].split() == [home, user.name, user.name, "700"]
        for line, name in zip(lines[1:4], SKELETON, strict=True):
            assert line.split()[:3] == [f"{home}/{name}", user.name, user.name]
        digests = [line.split()[0] for line in lines[4:]]
        assert digests[:3] == digests[3:], "the home's files differ from /etc/skel's"


def run_with_environment(
    login: LoginNode, user: str, command: str, environment: dict[str, str]
) -> tuple[int, str, str]:
    """Run `command` as upstream FirecREST does, the client sending `environment`
    (sshd passes what its AcceptEnv allows: LANG and LC_* on Debian)."""
    identity = issue_identity(login.ca.private_key(), user, force_command=command)
    client = paramiko.SSHClient()
    address = f"[{login.host}]:{login.port}"
    entry = paramiko.hostkeys.HostKeyEntry.from_line(f"{address} {login.host_key_line}")
    assert entry is not None and entry.key is not None
    client.get_host_keys().add(address, entry.key.get_name(), entry.key)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        login.host,
        port=login.port,
        username=user,
        pkey=identity.pkey,
        look_for_keys=False,
        allow_agent=False,
        timeout=10,
    )
    try:
        _, stdout, stderr = client.exec_command(
            identity.certificate, timeout=60, environment=environment
        )
        out, err = stdout.read().decode(), stderr.read().decode()
        return stdout.channel.recv_exit_status(), out, err
    finally:
        client.close()


# What a command really gets: its own environment, read through an allowed program.
LOCALE = "cat /proc/self/environ"


def locale_of(environ: str) -> dict[str, str]:
    """The locale variables of a NUL-separated environment."""
    pairs = (entry.split("=", 1) for entry in environ.split("\0") if "=" in entry)
    return {name: value for name, value in pairs if name == "LANG" or name.startswith("LC_")}


def test_commands_see_no_locale_the_login_did_not_set(login: LoginNode):
    result = login.run("test1", LOCALE)
    assert result.exit_status == 0, result.stderr
    assert locale_of(result.stdout) == {}


@pytest.mark.parametrize(
    "sent",
    [{"LANG": "C"}, {"LANG": "C", "LC_MESSAGES": "C"}, {"LANG": "C.UTF-8"}, {"LC_ALL": "C"}],
    ids=lambda sent: ",".join(f"{k}={v}" for k, v in sent.items()),
)
def test_commands_see_exactly_the_locale_the_client_sent(login: LoginNode, sent: dict[str, str]):
    status, out, err = run_with_environment(login, "test1", LOCALE, sent)
    assert status == 0, err
    assert locale_of(out) == sent


def test_coreutils_messages_use_plain_quotes_in_the_c_locale(login: LoginNode):
    result = login.run("test1", "head -n x /dev/null; ls /nonexistent")
    assert result.exit_status == 2
    # with LC_CTYPE=C.UTF-8, head quotes the 'x' with U+2018 and U+2019
    assert result.stderr.splitlines() == [
        "head: invalid number of lines: 'x'",
        "ls: cannot access '/nonexistent': No such file or directory",
    ]


def test_a_utf8_locale_the_client_sent_is_kept(login: LoginNode):
    status, _, err = run_with_environment(
        login, "test1", "head -n x /dev/null", {"LANG": "C.UTF-8"}
    )
    assert status == 1
    assert err.strip() == "head: invalid number of lines: \u2018x\u2019"
