"""The cluster image's programs: the login node's ForceCommand wrapper (what
it runs, what it refuses, the environment it hands on) and
testbuild-slurm-conf (each node's memory in slurm.conf).

The wrapper is a Go program (images/cluster/command-wrapper/). Its functions
are tested by `go test` there, run here, against vectors Python's shlex, str
and binascii give (the Python wrapper it replaced decided with those); the
tests here build the binary with the host's Go and run it as sshd does.
"""

from __future__ import annotations

import datetime
import importlib.machinery
import importlib.util
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from string import Template
from types import ModuleType

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from firecrest_testbuild.common.certificates import sign_user_certificate
from firecrest_testbuild.harness.keys import KeyPair
from firecrest_testbuild.harness.paths import CLUSTER, IMAGES

WRAPPER_SOURCE = IMAGES / "cluster/command-wrapper"
SLURM_CONF = IMAGES / "cluster/files/usr/local/libexec/testbuild-slurm-conf"
REFUSED = 118
# What the image's build stage sets too: the Go that is there, nothing fetched.
GO_ENVIRONMENT = {"GOTOOLCHAIN": "local", "GOPROXY": "off", "CGO_ENABLED": "0"}


def load_script(name: str, path: Path) -> ModuleType:
    loader = importlib.machinery.SourceFileLoader(name, str(path))
    spec = importlib.util.spec_from_loader(name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


slurm_conf = load_script("slurm_conf", SLURM_CONF)


def go() -> list[str]:
    """The host's go command and the environment to run it in."""
    found = shutil.which("go") or next(
        (path for path in ("/usr/local/go/bin/go",) if os.access(path, os.X_OK)), None
    )
    if found is None:
        pytest.fail(
            "the command wrapper's tests need Go (1.19 or newer) and found no `go` on PATH"
            " nor /usr/local/go/bin/go: install it (https://go.dev/doc/install, or Debian's"
            " golang-go) and run pytest again"
        )
    return [found]


def run_go(*arguments: str, python: str = "") -> subprocess.CompletedProcess[str]:
    """go ARGUMENTS in the wrapper's folder; `python` is the interpreter its
    tests take their vectors from (python3 on PATH without it)."""
    return subprocess.run(
        [*go(), *arguments],
        cwd=WRAPPER_SOURCE,
        env={**os.environ, **GO_ENVIRONMENT, **({"PYTHON": python} if python else {})},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_the_wrappers_go_tests_pass():
    """`go test` of images/cluster/command-wrapper: the allow-list check, the
    certificate reading, and the differential tests against Python."""
    ran = run_go("test", "-count=1", ".", python=sys.executable)
    assert ran.returncode == 0, ran.stdout + ran.stderr


def test_the_wrapper_builds_with_bookworms_go_and_imports_no_os():
    """go.mod names the oldest Go of the image's releases (bookworm's 1.19; go
    vet checks the APIs against it); with 1.19, importing os would raise the
    soft RLIMIT_NOFILE of every command the wrapper runs."""
    assert "\ngo 1.19\n" in (WRAPPER_SOURCE / "go.mod").read_text()
    ran = run_go("list", "-deps", ".")
    assert ran.returncode == 0, ran.stderr
    assert "os" not in ran.stdout.split()


@dataclass(frozen=True)
class Wrapper:
    """The wrapper built for the tests: the same program, linked with an
    allow-list and a log file of the test's instead of the login node's."""

    binary: Path
    allowed: Path
    log: Path


@pytest.fixture(scope="session")
def built_wrapper(tmp_path_factory: pytest.TempPathFactory) -> Wrapper:
    folder = tmp_path_factory.mktemp("command-wrapper")
    wrapper = Wrapper(
        folder / "testbuild-command-wrapper", folder / "allowed-commands", folder / "commands.log"
    )
    links = f"-X main.allowedFile={wrapper.allowed} -X main.logFile={wrapper.log}"
    ran = run_go("build", "-trimpath", "-ldflags", links, "-o", str(wrapper.binary), ".")
    assert ran.returncode == 0, ran.stderr
    return wrapper


@pytest.fixture
def wrapper(built_wrapper: Wrapper) -> Wrapper:
    """A fresh allow-list (which holds `env`: the login node's does not) and no log."""
    built_wrapper.allowed.write_text("env\nhead\nls\nchmod\necho\ncd\ngrep\nid\nulimit\n")
    built_wrapper.log.unlink(missing_ok=True)
    return built_wrapper


# What bash -c itself adds to the environment of the command it runs.
BASH_OWN = {b"PWD", b"SHLVL", b"_"}


def login_env(tmp_path: Path, command: str | bytes, **extra: str | bytes) -> dict[bytes, bytes]:
    """An environment as sshd gives it to a ForceCommand, with no locale unless given."""
    env: dict[str, str | bytes] = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "USER": "test1",
        "LOGNAME": "test1",
        "SHELL": "/bin/bash",
        "SSH_CONNECTION": "127.0.0.1 50000 127.0.0.1 22",
        "SSH_ORIGINAL_COMMAND": command,
        **extra,
    }
    return {os.fsencode(name): os.fsencode(value) for name, value in env.items()}


def run_wrapper(
    wrapper: Wrapper, env: dict[bytes, bytes], *options: str, limit_files: int = 0
) -> subprocess.CompletedProcess[bytes]:
    """The wrapper as sshd starts it (optionally with a lower soft limit of open files)."""

    def lower_limit() -> None:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit_files, hard))

    return subprocess.run(
        [str(wrapper.binary), *options],
        env=env,
        capture_output=True,
        timeout=30,
        check=False,
        preexec_fn=lower_limit if limit_files else None,
    )


def command_environment(output: bytes) -> dict[bytes, bytes]:
    """The environment `env -0` printed, without what bash -c added."""
    entries = [entry.partition(b"=") for entry in output.split(b"\0") if entry]
    return {name: value for name, _, value in entries if name not in BASH_OWN}


@pytest.mark.parametrize(
    "locale",
    [
        {},
        {"LANG": "C"},
        {"LANG": "C", "LC_MESSAGES": "C"},
        {"LC_ALL": "C"},
        {"LC_CTYPE": "C.UTF-8"},
        {"LANG": "C.UTF-8", "LC_TIME": "POSIX"},
    ],
    ids=lambda locale: ",".join(f"{k}={v}" for k, v in locale.items()) or "no-locale",
)
def test_the_command_sees_exactly_the_environment_sshd_gave(
    tmp_path: Path, wrapper: Wrapper, locale: dict[str, str]
):
    env = login_env(tmp_path, "env -0", **locale)
    ran = run_wrapper(wrapper, env)
    assert ran.returncode == 0, ran.stderr
    assert command_environment(ran.stdout) == env


def test_bytes_that_are_not_utf8_reach_the_command_unchanged(tmp_path: Path, wrapper: Wrapper):
    env = login_env(tmp_path, "env -0", RAW=b"caf\xe9", LANG="C")
    ran = run_wrapper(wrapper, env)
    assert command_environment(ran.stdout)[b"RAW"] == b"caf\xe9"


def test_coreutils_messages_keep_plain_quotes_in_the_c_locale(tmp_path: Path, wrapper: Wrapper):
    ran = run_wrapper(wrapper, login_env(tmp_path, "head -n x /dev/null; ls /nonexistent"))
    # Under LC_CTYPE=C.UTF-8, head would quote with U+2018 and U+2019 instead.
    assert ran.stderr.decode().splitlines() == [
        "head: invalid number of lines: 'x'",
        "ls: cannot access '/nonexistent': No such file or directory",
    ]
    assert ran.returncode == 2


def test_the_command_gets_the_limits_and_signals_sshd_gave(tmp_path: Path, wrapper: Wrapper):
    """Nothing of the wrapper's own runtime reaches the command: not a raised
    limit of open files, not an ignored SIGPIPE (the Python wrapper handed on
    python3's: SIGPIPE and SIGXFSZ ignored; sshd and a shell wrapper give none)."""
    ran = run_wrapper(wrapper, login_env(tmp_path, "ulimit -n"), limit_files=200)
    assert (ran.returncode, ran.stdout) == (0, b"200\n"), ran.stderr
    ignored = "grep SigIgn /proc/self/status"
    ran = run_wrapper(wrapper, login_env(tmp_path, ignored))
    assert ran.stdout.startswith(b"SigIgn:\t"), ran.stderr
    # Ignored signals, as a mask (bit n-1: signal n), beside what this process
    # hands any child (under make, glibc's signals 32 and 33 are ignored, and
    # Go's runtime gives 33 back its default): the wrapper ignores nothing more.
    mask = int(ran.stdout.split()[1], 16)
    given = subprocess.run(["bash", "-c", ignored], capture_output=True, check=True).stdout
    assert mask & ~int(given.split()[1], 16) == 0
    assert mask & (1 << (signal.SIGPIPE - 1) | 1 << (signal.SIGXFSZ - 1)) == 0


def test_the_wrapper_run_as_sshd_runs_it_still_refuses_and_logs(tmp_path: Path, wrapper: Wrapper):
    ran = run_wrapper(wrapper, login_env(tmp_path, "ls; sh -c id"))
    assert ran.returncode == REFUSED
    assert ran.stdout == b""
    assert ran.stderr == b"testbuild: command refused: 'sh' is not an allowed command\n"
    assert "refused ('sh' is not an allowed command)" in wrapper.log.read_text()


def test_each_decision_is_logged_with_how_the_user_logged_in(tmp_path: Path, wrapper: Wrapper):
    for command in ("echo one", "cat <(ls)", 'bash -c "echo two"', "bash -c 'env | sh'"):
        run_wrapper(wrapper, login_env(tmp_path, command))
    lines = wrapper.log.read_text().splitlines()
    assert [line.split(" ", 3)[2:] for line in lines] == [
        ["login=key", "ok 'echo one'"],
        ["login=key", "refused (process substitution (<() is not allowed) 'cat <(ls)'"],
        ["login=key", "ok 'bash -c \"echo two\"'"],
        ["login=key", "refused ('sh' is not an allowed command) \"bash -c 'env | sh'\""],
    ]
    assert all(line.split(" ")[1] == "user=test1" for line in lines)


def test_a_refused_line_is_logged_as_python_repr_showed_it(tmp_path: Path, wrapper: Wrapper):
    """At most 200 characters, bytes that are not UTF-8 as \\udcXX (in the
    message too), control characters escaped: one line per decision."""
    sent = b"\xff\tx\n\x1b[2J " + b"\xc3\xa9" * 300
    ran = run_wrapper(wrapper, login_env(tmp_path, sent))
    assert ran.returncode == REFUSED
    assert ran.stderr == b"testbuild: command refused: '\\udcff' is not an allowed command\n"
    [line] = wrapper.log.read_text(encoding="utf-8").splitlines()
    shown = repr(os.fsdecode(sent)[:200])  # the Python wrapper's log, byte for byte
    assert shown.endswith(" " + "é" * 191 + "'")
    assert line.split(" ", 3)[3] == "refused ('\\udcff' is not an allowed command) " + shown


def test_an_allowed_line_inside_bash_c_runs(tmp_path: Path, wrapper: Wrapper):
    ran = run_wrapper(wrapper, login_env(tmp_path, "bash -c \"cd / && bash -c 'echo in'\""))
    assert (ran.returncode, ran.stdout) == (0, b"in\n"), ran.stderr


def test_plain_commands_are_refused_in_the_certificate_as_command_model(
    tmp_path: Path, wrapper: Wrapper
):
    env = login_env(tmp_path, "echo hi")
    ran = run_wrapper(wrapper, env, "--accept=certificate-as-command")
    assert ran.returncode == REFUSED
    assert ran.stderr.startswith(b"testbuild: command refused: plain commands are not accepted")
    assert run_wrapper(wrapper, env, "--accept=plain").stdout == b"hi\n"
    misconfigured = run_wrapper(wrapper, env, "--accept=anything")
    assert misconfigured.returncode == REFUSED


def test_a_missing_allow_list_runs_nothing(tmp_path: Path, wrapper: Wrapper):
    wrapper.allowed.unlink()
    ran = run_wrapper(wrapper, login_env(tmp_path, "echo hi"))
    assert (ran.returncode, ran.stdout) == (1, b"")
    assert ran.stderr.startswith(f"testbuild: {wrapper.allowed}: ".encode())


@pytest.fixture
def ca(tmp_path: Path) -> KeyPair:
    return KeyPair.load_or_create(tmp_path / "ca", "test CA")


def certificate(ca: KeyPair, command: str | None) -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    return sign_user_certificate(ca.private_key(), "test1", key.public_key(), force_command=command)


def run_over_ssh(
    tmp_path: Path, wrapper: Wrapper, sent: str, login: str | None, accept: str = "both"
) -> subprocess.CompletedProcess[bytes]:
    """The wrapper started for a login with `login` (a certificate line, or
    None for a plain key), as sshd's ExposeAuthInfo tells it."""
    extra: dict[str, str] = {}
    if login is not None:
        auth_info = tmp_path / "auth-info"
        auth_info.write_text(f"publickey {login}\n")
        extra["SSH_USER_AUTH"] = str(auth_info)
    return run_wrapper(wrapper, login_env(tmp_path, sent, **extra), f"--accept={accept}")


@pytest.mark.parametrize(
    ("accept", "v1", "plain_over_key", "plain_over_certificate"),
    [
        ("both", True, True, True),
        ("certificate-as-command", True, False, False),
        ("plain", False, True, True),
    ],
)
def test_accepted_command_models(
    tmp_path: Path,
    wrapper: Wrapper,
    ca: KeyPair,
    accept: str,
    v1: bool,
    plain_over_key: bool,
    plain_over_certificate: bool,
):
    forced = certificate(ca, "echo forced")
    free = certificate(ca, None)
    cases = [
        (v1, forced, forced, b"forced\n", "certificate-as-command"),  # v1: the certificate text
        (plain_over_key, "echo sent", None, b"sent\n", "key"),
        (plain_over_certificate, "echo sent", free, b"sent\n", "certificate"),
    ]
    for accepted, sent, login, output, how in cases:
        ran = run_over_ssh(tmp_path, wrapper, sent, login, accept)
        if accepted:
            assert (ran.returncode, ran.stdout) == (0, output), ran.stderr
        else:
            assert ran.returncode == REFUSED and b"not accepted here" in ran.stderr
        assert f" login={how} " in wrapper.log.read_text().splitlines()[-1]
    # a certificate's force-command binds in every model
    assert run_over_ssh(tmp_path, wrapper, "echo forced", forced, accept).stdout == b"forced\n"
    refused = run_over_ssh(tmp_path, wrapper, "echo other", forced, accept)
    assert refused.returncode == REFUSED
    assert refused.stderr == (
        b"testbuild: command refused: the command differs from the certificate's force-command\n"
    )


@pytest.mark.parametrize(
    ("sent", "login", "reason"),
    [
        ("other", "ls", b"the certificate sent as command is not the one used to log in"),
        ("login", None, b"the certificate sent as command has no force-command"),
        ("  ", None, b"no command given: interactive logins are not offered"),
    ],
)
def test_certificate_and_login_mismatches_are_refused(
    tmp_path: Path, wrapper: Wrapper, ca: KeyPair, sent: str, login: str | None, reason: bytes
):
    login_cert = certificate(ca, login)
    lines = {"other": certificate(ca, "ls"), "login": login_cert}
    on_key = sent.isspace()
    ran = run_over_ssh(tmp_path, wrapper, lines.get(sent, sent), None if on_key else login_cert)
    assert ran.returncode == REFUSED
    assert ran.stderr == b"testbuild: command refused: " + reason + b"\n"


def test_the_command_gets_shlvl_as_if_sshd_set_none(tmp_path: Path, wrapper: Wrapper):
    """sshd's SetEnv SHLVL=1 keeps the login shell from reading ~/.bashrc; that
    shell hands on 2; the command's bash must see what it saw without: 2."""
    ran = run_wrapper(wrapper, login_env(tmp_path, "echo $SHLVL", SHLVL="2"))
    assert ran.stdout == b"2\n"


def test_sshd_keeps_user_files_from_running_before_the_wrapper():
    rendered = Template((CLUSTER / "sshd_config.template").read_text()).substitute(
        authorized_keys_file="none", ssh_commands="both"
    )
    lines = rendered.splitlines()
    assert "SetEnv SHLVL=1" in lines and "PermitUserRC no" in lines
    assert "ForceCommand /usr/local/libexec/testbuild-command-wrapper --accept=both" in lines
    assert "MaxSessions 100" in lines


def test_the_image_compiles_the_wrapper_into_the_path_sshd_runs():
    dockerfile = (IMAGES / "cluster/Dockerfile").read_text()
    copy = re.search(r"^COPY --from=command-wrapper (\S+) (\S+)$", dockerfile, re.MULTILINE)
    assert copy is not None and copy.group(2) == "/usr/local/libexec/testbuild-command-wrapper"
    assert "GOTOOLCHAIN=local GOPROXY=off CGO_ENABLED=0" in dockerfile


def test_log_lines_start_with_the_time_in_iso_8601_utc(tmp_path: Path, wrapper: Wrapper):
    run_wrapper(wrapper, login_env(tmp_path, "echo one"))
    stamp = wrapper.log.read_text().split(" ")[0]
    logged = datetime.datetime.fromisoformat(stamp)
    assert logged.isoformat(timespec="seconds") == stamp and logged.utcoffset() == ZERO
    now = datetime.datetime.now(datetime.UTC)
    assert now - datetime.timedelta(seconds=30) < logged <= now


ZERO = datetime.timedelta(0)


# testbuild-slurm-conf: each node's RealMemory and DefMemPerCPU.

MIB = 1024 * 1024
HOST_KB = 24684084  # MemTotal of a 24 GiB host: 24105 MiB


def fake_node(
    root: Path,
    proc_cgroup: str = "",
    files: dict[str, str] | None = None,
    mem_total_kb: int = HOST_KB,
) -> Path:
    """A /proc and /sys/fs/cgroup as a container sees them."""
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/meminfo").write_text(
        f"MemTotal:       {mem_total_kb} kB\nMemFree:        1000 kB\n"
    )
    (root / "proc/self/cgroup").write_text(proc_cgroup)
    for name, text in (files or {}).items():
        path = root / "sys/fs/cgroup" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


V1_CONTAINER = "4:memory:/docker/0123abcd\n3:cpuset:/docker/0123abcd\n0::/docker/0123abcd\n"
V2_PRIVATE = "0::/\n"


@pytest.mark.parametrize(
    ("proc_cgroup", "files", "expected", "source"),
    [
        # cgroup v1 as Docker mounts it: the container's cgroup at the mount point
        (V1_CONTAINER, {"memory/memory.limit_in_bytes": str(700 * MIB)}, 700 * MIB, "v1"),
        # cgroup v1 without a limit: the kernel's "unlimited" is a huge number
        (V1_CONTAINER, {"memory/memory.limit_in_bytes": "9223372036854771712"}, None, "Mem"),
        # cgroup v2 with a private cgroup namespace
        (V2_PRIVATE, {"cgroup.controllers": "memory", "memory.max": str(2 << 30)}, 2 << 30, "v2"),
        (V2_PRIVATE, {"cgroup.controllers": "memory", "memory.max": "max"}, None, "Mem"),
        # cgroup v2 seen from the host's namespace: the lowest limit on the way up
        (
            "0::/system.slice/docker-1.scope\n",
            {
                "cgroup.controllers": "memory",
                "system.slice/memory.max": str(3 << 30),
                "system.slice/docker-1.scope/memory.max": "max",
            },
            3 << 30,
            "v2",
        ),
        # a limit above the host's memory is no limit
        (V2_PRIVATE, {"cgroup.controllers": "memory", "memory.max": str(64 << 30)}, None, "Mem"),
        # no cgroup file system at all
        ("", {}, None, "Mem"),
    ],
)
def test_node_memory_is_the_lowest_cgroup_limit_or_the_hosts(
    tmp_path: Path, proc_cgroup: str, files: dict[str, str], expected: int | None, source: str
):
    root = fake_node(tmp_path, proc_cgroup, files)
    memory, where = slurm_conf.node_memory(root)
    assert memory == (expected or HOST_KB * 1024)
    assert where.startswith({"v1": "cgroup v1", "v2": "cgroup v2", "Mem": "MemTotal"}[source])


@pytest.mark.parametrize(
    ("memory_mib", "real_memory"),
    [
        (24105, 24105 - 2410),  # 10 % for the daemons
        (2048, 2048 - 256),  # at least 256 MiB
        (1024, 768),
        (300, 150),  # at most half
        (2, 1),
    ],
)
def test_real_memory_leaves_a_margin_for_the_daemons(memory_mib: int, real_memory: int):
    assert slurm_conf.real_memory_mib(memory_mib * MIB) == real_memory


def test_a_node_without_memory_for_a_job_is_refused():
    with pytest.raises(slurm_conf.Unusable, match="too little"):
        slurm_conf.real_memory_mib(MIB // 2)


def harness_slurm_conf(cpus: int) -> str:
    """cluster/slurm.conf.template as the harness renders it."""
    template = Template((CLUSTER / "slurm.conf.template").read_text())
    return template.substitute(
        cluster_name="cluster", controller="cluster", node_names="c1,c2", cpus=cpus
    )


def test_the_harness_slurm_conf_gets_real_memory_and_a_default_per_cpu():
    filled, per_cpu = slurm_conf.render(harness_slurm_conf(cpus=4), 21695)
    assert "@" not in filled
    assert "NodeName=c1,c2 CPUs=4 RealMemory=21695 Feature=f7t State=UNKNOWN" in filled.splitlines()
    assert per_cpu == 21695 // 4
    assert f"DefMemPerCPU={per_cpu}" in filled.splitlines()
    assert "SelectTypeParameters=CR_CPU_Memory" in filled.splitlines()
    # Batch jobs start on the scheduler's next pass, not up to 3 s later.
    assert "SchedulerParameters=batch_sched_delay=0" in filled.splitlines()
    partitions = [line for line in filled.splitlines() if line.startswith("PartitionName=")]
    assert len(partitions) == 3 and all("OverSubscribe=YES" in line for line in partitions)


def test_a_slurm_conf_without_node_cpus_or_placeholder_is_refused():
    with pytest.raises(slurm_conf.Unusable, match="CPUs="):
        slurm_conf.render("NodeName=c1 RealMemory=@REAL_MEMORY@\n", 1000)
    with pytest.raises(slurm_conf.Unusable, match="placeholder"):
        slurm_conf.render("NodeName=c1 CPUs=2 RealMemory=1000\n", 1000)


def test_the_script_writes_the_filled_slurm_conf_and_says_why(tmp_path: Path):
    root = fake_node(
        tmp_path / "root", V1_CONTAINER, {"memory/memory.limit_in_bytes": "1073741824"}
    )
    conf = tmp_path / "slurm.conf"
    conf.write_text(harness_slurm_conf(cpus=2))
    ran = subprocess.run(
        [sys.executable, str(SLURM_CONF), str(conf), "--root", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert (
        "NodeName=c1,c2 CPUs=2 RealMemory=768 Feature=f7t State=UNKNOWN" in ran.stdout.splitlines()
    )
    assert "DefMemPerCPU=384" in ran.stdout.splitlines()
    assert ran.stderr.startswith("node memory 1024 MiB (cgroup v1 memory.limit_in_bytes of /)")


def test_the_script_fails_with_a_reason_and_writes_nothing(tmp_path: Path):
    root = fake_node(tmp_path / "root", mem_total_kb=512)
    conf = tmp_path / "slurm.conf"
    conf.write_text(harness_slurm_conf(cpus=2))
    ran = subprocess.run(
        [sys.executable, str(SLURM_CONF), str(conf), "--root", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (ran.returncode, ran.stdout) == (1, "")
    assert ran.stderr.startswith("testbuild-slurm-conf: the node has 524288 bytes")
