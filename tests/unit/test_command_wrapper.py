"""The cluster image's Python scripts: the login node's ForceCommand wrapper
(what it runs, what it refuses, the environment it hands on) and
testbuild-slurm-conf (each node's memory in slurm.conf)."""

from __future__ import annotations

import datetime
import importlib.machinery
import importlib.util
import itertools
import os
import random
import re
import shlex
import subprocess
import sys
from pathlib import Path
from string import Template
from types import ModuleType

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from firecrest_testbuild.common.certificates import sign_user_certificate
from firecrest_testbuild.harness.keys import KeyPair
from firecrest_testbuild.harness.paths import CLUSTER, IMAGES

LIBEXEC = IMAGES / "cluster/files/usr/local/libexec"
WRAPPER = LIBEXEC / "testbuild_command_wrapper.py"
SLURM_CONF = LIBEXEC / "testbuild-slurm-conf"


def load_script(name: str, path: Path) -> ModuleType:
    loader = importlib.machinery.SourceFileLoader(name, str(path))
    spec = importlib.util.spec_from_loader(name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


wrapper = load_script("command_wrapper", WRAPPER)
slurm_conf = load_script("slurm_conf", SLURM_CONF)

ALLOWED = wrapper.read_allowed(str(CLUSTER / "allowed-commands"))


@pytest.mark.parametrize(
    "command",
    [
        "ls -la /home/test1",
        "ID=af516f55 timeout 5 ls -l --quoting-style=c /home",
        "F7TID=abc timeout -s KILL 10 sha256sum -- '/home/test1/a b'",
        "SLURM_TIME_FORMAT=standard sacct --jobs=1 --format=jobid,state",
        "sbatch --chdir=/home/test1 -- /home/test1/job.sh",
        "cat /home/test1/res.txt 2>&1 | sha1sum",
        "mkdir -p /home/test1/a && cp a b",
        "echo '$(not a substitution)'",
        "curl -s -X PUT -T file 'http://minio:9000/bucket/key?X-Amz-Signature=abc&b=1'",
        # FirecREST v2's lines
        "SLURM_TIME_FORMAT='%s' squeue --noheader --format='%i|%T'",
        "base64 -d > '/home/test1/a b'",
        "cd /home/test1 && timeout 5 ls -l",
        "ls > /home/test1/out 2>&1 < /dev/null",
        "> /home/test1/empty ls",
        "timeout 5 dd if='/home/test1/f' bs=1048576 skip=2 count=1",
        "sacctmgr show user 'test1' format=defaultaccount -n",
        "sacctmgr show assoc user='test1' format=account -n",
        "srun --overlap --jobid=4 hostname",
        "find /home/test1 -name '*.txt' -exec sha1sum {} +",
        "timeout 5 bash -c \"cd /home/test1; timeout 5 find . -type f -regex '.*\\.txt'"
        " -print0 | tar -czvf '/home/test1/o.tar.gz' --null --files-from - \"",
        "bash -c 'ls -l \"/home/test1/a b\"'",
        "bash -c \"bash -c 'id -un'\"",
        "echo ${HOME}",
    ],
)
def test_allowed_command_lines(command: str):
    wrapper.check_allowed(command, ALLOWED)


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("bash -i", "'bash' is not an allowed command"),
        ("ls; python3 -c 1", "'python3' is not an allowed command"),
        ("ls | sh", "'sh' is not an allowed command"),
        ("ls && vi x", "'vi' is not an allowed command"),
        ("timeout 5 bash", "'bash' is not an allowed command"),
        ("timeout -k 1 5 sh -c id", "'sh' is not an allowed command"),
        ("ID=x python3", "'python3' is not an allowed command"),
        ("echo $(id)", "command substitution ($() is not allowed"),
        ('echo "`id`"', "command substitution (`) is not allowed"),
        ("ls 'unterminated", "cannot be parsed"),
        ("ID=x", "no program in the command"),
        # process substitution runs a command of its own
        ("cat <(uname -a)", "process substitution (<() is not allowed"),
        ("ls > >(uname)", "process substitution (>() is not allowed"),
        # the line inside bash -c is checked as any line, at any depth
        ('bash -c "uname"', "'uname' is not an allowed command"),
        ("timeout 5 bash -c 'ls; uname'", "'uname' is not an allowed command"),
        ("bash -c \"ls && bash -c 'uname -a'\"", "'uname' is not an allowed command"),
        ("bash -c 'echo $(uname)'", "command substitution ($() is not allowed"),
        ("bash script.sh", "'bash' is not an allowed command"),
        ("bash -c ls extra", "'bash' is not an allowed command"),
        # whatever bash would run, the check sees
        ('echo "\'" $(uname) "\'"', "command substitution ($() is not allowed"),
        ("ls\nuname", "'uname' is not an allowed command"),
        ("ls a#; uname", "'uname' is not an allowed command"),
        ("ls;(uname)", "'uname' is not an allowed command"),
        ("ls > out;uname", "'uname' is not an allowed command"),
        ("cd /tmp && uname", "'uname' is not an allowed command"),
        ("ls >", "a redirection without a target"),
        # prefixes that make an allowed program run other code
        ("PATH=/home/test1/bin ls", "setting PATH is not allowed"),
        ("LD_PRELOAD=/home/test1/x.so timeout 5 ls", "setting LD_PRELOAD is not allowed"),
        ("ID=1 BASH_ENV=/home/test1/x ls", "setting BASH_ENV is not allowed"),
        # arithmetic runs the substitutions in a variable's value
        ("x='a[$(uname)]'; echo ${y:x}", "parameter expansions other than ${NAME}"),
        ("x=1; ls", "only assignments"),
        ("find . -exec uname \\;", "'uname' is not an allowed command"),
        ("find . -execdir bash -c uname {} +", "'uname' is not an allowed command"),
        ("find . -exec bash {} -c ls ;", "'bash' is not an allowed command"),
        ("find . -exec {} ;", "without a program"),
    ],
)
def test_refused_command_lines(command: str, reason: str):
    with pytest.raises(wrapper.Refused, match=re.escape(reason)):
        wrapper.check_allowed(command, ALLOWED)


def test_allow_list_file_has_the_commands_firecrest_needs():
    for program in (
        "cat",
        "ls",
        "sbatch",
        "squeue",
        "sacct",
        "scancel",
        "curl",
        "rsync",
        "sha1sum",
    ):
        assert program in ALLOWED
    assert "bash" not in ALLOWED and "sh" not in ALLOWED
    for program in ("dd", "find", "sacctmgr", "cd"):  # FirecREST v2
        assert program in ALLOWED


@pytest.mark.parametrize(
    ("accept", "v1", "plain_over_key", "plain_over_certificate"),
    [
        ("both", True, True, True),
        ("certificate-as-command", True, False, False),
        ("plain", False, True, True),
    ],
)
def test_accepted_command_models(
    ca: KeyPair, accept: str, v1: bool, plain_over_key: bool, plain_over_certificate: bool
):
    forced = certificate(ca, "id -un")
    free = certificate(ca, None)
    cases = [
        (v1, forced, forced, "id -un"),  # v1: the certificate text as the command
        (plain_over_key, "sinfo", None, "sinfo"),
        (plain_over_certificate, "sinfo", free, "sinfo"),
    ]
    for accepted, sent, login, expected in cases:
        if accepted:
            assert wrapper.resolve_command(sent, login_cert=login, accept=accept) == expected
        else:
            with pytest.raises(wrapper.Refused, match="not accepted here"):
                wrapper.resolve_command(sent, login_cert=login, accept=accept)
    # a certificate's force-command binds in every model
    assert wrapper.resolve_command("id -un", login_cert=forced, accept=accept) == "id -un"
    with pytest.raises(wrapper.Refused, match="differs"):
        wrapper.resolve_command("sinfo", login_cert=forced, accept=accept)


def test_force_command_is_read_from_the_certificate(ca: KeyPair):
    assert wrapper.force_command(certificate(ca, "a 'b' \"c\"")) == "a 'b' \"c\""
    assert wrapper.force_command(certificate(ca, None)) is None
    with pytest.raises(wrapper.Refused, match="cannot be read"):
        wrapper.force_command("ssh-ed25519-cert-v01@openssh.com AAAAnotbase64!")


@pytest.fixture
def ca(tmp_path: Path) -> KeyPair:
    return KeyPair.load_or_create(tmp_path / "ca", "test CA")


def certificate(ca: KeyPair, command: str | None) -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    return sign_user_certificate(ca.private_key(), "test1", key.public_key(), force_command=command)


def test_certificate_sent_as_command_runs_its_force_command(ca: KeyPair):
    cert = certificate(ca, "ID=t1 timeout 5 ls -a /home")
    assert wrapper.resolve_command(cert, login_cert=cert) == "ID=t1 timeout 5 ls -a /home"


def test_certificate_other_than_the_login_one_is_refused(ca: KeyPair):
    login, other = certificate(ca, "ls"), certificate(ca, "cat /etc/shadow")
    with pytest.raises(wrapper.Refused, match="not the one used to log in"):
        wrapper.resolve_command(other, login_cert=login)


def test_plain_command_must_equal_the_login_certificates_force_command(ca: KeyPair):
    login = certificate(ca, "squeue")
    assert wrapper.resolve_command("squeue", login_cert=login) == "squeue"
    assert wrapper.resolve_command("", login_cert=login) == "squeue"
    with pytest.raises(wrapper.Refused, match="differs from the certificate's force-command"):
        wrapper.resolve_command("scancel 1", login_cert=login)


def test_certificate_without_force_command_sent_as_command_is_refused(ca: KeyPair):
    cert = certificate(ca, None)
    with pytest.raises(wrapper.Refused, match="has no force-command"):
        wrapper.resolve_command(cert, login_cert=cert)


def test_plain_key_login_runs_the_command_sent_and_refuses_a_shell():
    assert wrapper.resolve_command("sinfo", login_cert=None) == "sinfo"
    with pytest.raises(wrapper.Refused, match="interactive logins are not offered"):
        wrapper.resolve_command("  ", login_cert=None)


def test_login_certificate_is_read_from_expose_auth_info():
    cert_line = "ssh-ed25519-cert-v01@openssh.com AAAAC3Nz test"
    auth_info = f"publickey {cert_line}\n"
    assert wrapper.login_certificate(auth_info) == cert_line
    assert wrapper.login_certificate("publickey ssh-ed25519 AAAAC3Nz\n") is None


def test_parse_environ_keeps_bytes_and_the_first_of_a_name():
    block = b"A=1\0B=caf\xe9\0A=2\0no-equals\0=x\0EMPTY=\0"
    assert wrapper.parse_environ(block) == {b"A": b"1", b"B": b"caf\xe9", b"EMPTY": b""}


def test_login_environment_falls_back_to_os_environ_without_proc(tmp_path: Path):
    assert wrapper.login_environment(str(tmp_path / "missing")) is os.environb


# The wrapper as sshd runs it: a fresh python3 in the environment sshd gives,
# with main() reading a test allow-list (which may hold `env`: the login node's
# does not) and logging to a test file.
DRIVER = """
import importlib.machinery, importlib.util, sys
loader = importlib.machinery.SourceFileLoader("wrapper", sys.argv[1])
spec = importlib.util.spec_from_loader("wrapper", loader)
wrapper = importlib.util.module_from_spec(spec)
loader.exec_module(wrapper)
wrapper.ALLOWED_FILE, wrapper.LOG_FILE = sys.argv[2], sys.argv[3]
sys.exit(wrapper.main(sys.argv[4:]))
"""
# What bash -c itself adds to the environment of the command it runs.
BASH_OWN = {b"PWD", b"SHLVL", b"_"}


def login_env(tmp_path: Path, command: str, **extra: str | bytes) -> dict[bytes, bytes]:
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
    tmp_path: Path, env: dict[bytes, bytes], *options: str
) -> subprocess.CompletedProcess[bytes]:
    allowed = tmp_path / "allowed-commands"
    allowed.write_text("env\nhead\nls\nchmod\necho\ncd\n")
    log = tmp_path / "commands.log"
    arguments = [sys.executable, "-c", DRIVER, str(WRAPPER), str(allowed), str(log), *options]
    return subprocess.run(arguments, env=env, capture_output=True, timeout=30, check=False)


def python_coerces_the_locale(env: dict[bytes, bytes]) -> bool:
    """Whether a python3 started in `env` puts LC_CTYPE=C.UTF-8 into its os.environ."""
    probe = "import os; print(os.environ.get('LC_CTYPE', ''))"
    ran = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, check=True)
    return ran.stdout.strip() == b"C.UTF-8"


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
def test_the_command_sees_exactly_the_environment_sshd_gave(tmp_path: Path, locale: dict[str, str]):
    env = login_env(tmp_path, "env -0", **locale)
    if not locale and not python_coerces_the_locale(env):
        pytest.skip("this host's python3 does not coerce the C locale (no C.UTF-8 here)")
    ran = run_wrapper(tmp_path, env)
    assert ran.returncode == 0, ran.stderr
    assert command_environment(ran.stdout) == env


def test_bytes_that_are_not_utf8_reach_the_command_unchanged(tmp_path: Path):
    env = login_env(tmp_path, "env -0", RAW=b"caf\xe9", LANG="C")
    ran = run_wrapper(tmp_path, env)
    assert command_environment(ran.stdout)[b"RAW"] == b"caf\xe9"


def test_coreutils_messages_keep_plain_quotes_in_the_c_locale(tmp_path: Path):
    env = login_env(tmp_path, "head -n x /dev/null; ls /nonexistent")
    if not python_coerces_the_locale(env):
        pytest.skip("this host's python3 does not coerce the C locale (no C.UTF-8 here)")
    ran = run_wrapper(tmp_path, env)
    # Under LC_CTYPE=C.UTF-8, head would quote with U+2018 and U+2019 instead.
    assert ran.stderr.decode().splitlines() == [
        "head: invalid number of lines: 'x'",
        "ls: cannot access '/nonexistent': No such file or directory",
    ]
    assert ran.returncode == 2


def test_the_wrapper_run_as_sshd_runs_it_still_refuses_and_logs(tmp_path: Path):
    ran = run_wrapper(tmp_path, login_env(tmp_path, "ls; sh -c id"))
    assert ran.returncode == wrapper.REFUSED
    assert ran.stdout == b""
    assert ran.stderr == b"testbuild: command refused: 'sh' is not an allowed command\n"
    assert "refused ('sh' is not an allowed command)" in (tmp_path / "commands.log").read_text()


def test_each_decision_is_logged_with_how_the_user_logged_in(tmp_path: Path):
    for command in ("echo one", "cat <(ls)", 'bash -c "echo two"', "bash -c 'env | sh'"):
        run_wrapper(tmp_path, login_env(tmp_path, command))
    lines = (tmp_path / "commands.log").read_text().splitlines()
    assert [line.split(" ", 3)[2:] for line in lines] == [
        ["login=key", "ok 'echo one'"],
        ["login=key", "refused (process substitution (<() is not allowed) 'cat <(ls)'"],
        ["login=key", "ok 'bash -c \"echo two\"'"],
        ["login=key", "refused ('sh' is not an allowed command) \"bash -c 'env | sh'\""],
    ]
    assert all(line.split(" ")[1] == "user=test1" for line in lines)


def test_an_allowed_line_inside_bash_c_runs(tmp_path: Path):
    ran = run_wrapper(tmp_path, login_env(tmp_path, "bash -c \"cd / && bash -c 'echo in'\""))
    assert (ran.returncode, ran.stdout) == (0, b"in\n"), ran.stderr


def test_plain_commands_are_refused_in_the_certificate_as_command_model(tmp_path: Path):
    env = login_env(tmp_path, "echo hi")
    ran = run_wrapper(tmp_path, env, "--accept=certificate-as-command")
    assert ran.returncode == wrapper.REFUSED and b"not accepted here" in ran.stderr
    assert run_wrapper(tmp_path, env, "--accept=plain").stdout == b"hi\n"
    misconfigured = run_wrapper(tmp_path, env, "--accept=anything")
    assert misconfigured.returncode == wrapper.REFUSED


def test_the_command_gets_shlvl_as_if_sshd_set_none(tmp_path: Path):
    """sshd's SetEnv SHLVL=1 keeps the login shell from reading ~/.bashrc; that
    shell hands on 2; the command's bash must see what it saw without: 2."""
    ran = run_wrapper(tmp_path, login_env(tmp_path, "echo $SHLVL", SHLVL="2"))
    assert ran.stdout == b"2\n"


def test_sshd_keeps_user_files_from_running_before_the_wrapper():
    rendered = Template((CLUSTER / "sshd_config.template").read_text()).substitute(
        authorized_keys_file="none", ssh_commands="both"
    )
    lines = rendered.splitlines()
    assert "SetEnv SHLVL=1" in lines and "PermitUserRC no" in lines
    assert "ForceCommand /usr/local/libexec/testbuild-command-wrapper --accept=both" in lines
    assert "MaxSessions 100" in lines


# The wrapper starts for every SSH command, so it imports neither re nor shlex
# (nor os, nor datetime): what it does instead must decide exactly as they did.


def shlex_words(line: str) -> list[str] | str:
    """The words of the shlex lexer the wrapper used to split lines with, or its error."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.whitespace = " \t\r"
    lexer.wordchars += "\n"
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError as error:
        return str(error)


def wrapper_words(line: str) -> list[str] | str:
    try:
        return list(wrapper.split_words(line))
    except ValueError as error:
        return str(error)


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("a  b\tc\rd", ["a", "b", "c", "d"]),
        ("ls>out 2>&1|wc", ["ls", ">", "out", "2", ">&", "1", "|", "wc"]),
        ("a;;b&&c||(d)", ["a", ";;", "b", "&&", "c", "||(", "d", ")"]),
        ("echo '' \"\" x''", ["echo", "", "", "x"]),
        ("a'b c'd \"e f\"g", ["ab cd", "e fg"]),
        ("'a;b' \"c|d\" e\\;f", ["a;b", "c|d", "e;f"]),
        ('"a\\"b\\\\c\\d\\$"', ['a"b\\c\\d\\$']),
        ("'a\\'", ["a\\"]),
        ("a\\ b \\\nc", ["a b", "\nc"]),
        ("ls\nuname", ["ls\nuname"]),
        ("''|x", ["", "|", "x"]),
        ("$'a'", ["$a"]),
        ("a #b", ["a", "#b"]),
        ("ls 'x", "No closing quotation"),
        ('ls "x\\', "No escaped character"),
        ("ls \\", "No escaped character"),
        ("$'a\\'b'", "No closing quotation"),
    ],
)
def test_lines_split_as_shlex_split_them(line: str, words: list[str] | str):
    assert wrapper_words(line) == words == shlex_words(line)


def test_every_short_line_splits_as_with_shlex():
    """Every line of up to 4 characters that matter to the lexer."""
    alphabet = ["a", " ", "\t", "'", '"', "\\", ";", "|", "&", ">", "\n", "$"]
    for length in range(5):
        for characters in itertools.product(alphabet, repeat=length):
            line = "".join(characters)
            assert wrapper_words(line) == shlex_words(line), repr(line)


def test_longer_random_lines_split_as_with_shlex():
    alphabet = "ab =$#{}()'\"\\;|&<>\t\r\n"
    generator = random.Random(1216)
    for _ in range(3000):
        line = "".join(generator.choices(alphabet, k=generator.randint(1, 24)))
        assert wrapper_words(line) == shlex_words(line), repr(line)


OLD_CERT_PREFIX = re.compile(r"^\S+-cert-v01@openssh\.com\s+(\S+)")


def test_certificate_lines_are_recognised_as_the_regex_did():
    blanks = [chr(code) for code in range(0x3001) if chr(code).isspace()]
    lines = [
        "ssh-ed25519-cert-v01@openssh.com AAAA comment",
        "  ssh-ed25519-cert-v01@openssh.com\t\tAAAA\n",
        "-cert-v01@openssh.com AAAA",  # no key type before the suffix
        "x-cert-v01@openssh.com",
        "x-cert-v01@openssh.com ",
        "x-cert-v01@openssh.comm AAAA",
        "x-cert-v01@opensshxcom AAAA",
        "ssh-ed25519 AAAA",
        "ls -l x-cert-v01@openssh.com",
        "",
        *(f"x-cert-v01@openssh.com{blank}AAAA{blank}c" for blank in blanks),
        *(f"{blank}x-cert-v01@openssh.com AAAA" for blank in blanks),
    ]
    for line in lines:
        match = OLD_CERT_PREFIX.match(line.strip())
        assert wrapper.certificate_blob(line) == (match.group(1) if match else None), repr(line)


OLD_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=")
OLD_UNSAFE_VARIABLES = re.compile(
    r"^(PATH|ENV|BASH_ENV|SHELLOPTS|BASHOPTS|IFS|PS4|CDPATH|GLOBIGNORE|BASH_XTRACEFD"
    r"|GCONV_PATH|HOSTALIASES|LOCPATH|NLSPATH|TMPDIR|HOME|SHELL|EDITOR|VISUAL|PAGER"
    r"|TAR_OPTIONS|RSYNC_RSH|RSYNC_CONNECT_PROG|LD_.*|BASH_FUNC_.*|PYTHON.*|PERL.*"
    r"|RUBY.*|NODE_.*|GIT_.*|MALLOC_.*|SSH_.*)$"
)
OLD_SIMPLE_PARAMETER = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}")
NAMES = [
    "A", "_", "a1", "ID", "F7TID", "1A", "A-B", "é", "Aé", "", "SLURM_TIME_FORMAT",
    "PATH", "PATHX", "XPATH", "LD_PRELOAD", "LD_", "LD", "PYTHON", "PYTHONPATH", "SSH_AUTH_SOCK",
    "SSH", "BASH_FUNC_f%%", "GIT_DIR", "NODE_OPTIONS", "MALLOC_CHECK_", "PERL5LIB", "RUBYOPT",
    "HOME", "HOMEDIR", "IFS", "PS4", "TMPDIR", "SHELLOPTS",
]  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_assignments_are_told_and_checked_as_the_regexes_did(name: str):
    line = f"{name}=x ls"
    if not OLD_ASSIGNMENT.match(f"{name}=x"):
        assert wrapper.simple_commands(line) == [[f"{name}=x", "ls"]]
    elif OLD_UNSAFE_VARIABLES.match(name):
        with pytest.raises(ValueError, match=f"setting {re.escape(name)} is not allowed"):
            wrapper.simple_commands(line)
    else:
        assert wrapper.simple_commands(line) == [["ls"]]


@pytest.mark.parametrize("name", [*NAMES, "A}", "A:-x", "#A", "A[1]", "!A"])
def test_parameter_expansions_are_told_as_the_regex_did(name: str):
    for line in (f"echo ${{{name}}}", f"echo ${{{name}", f"echo ${{{name}}} ${{A:x}}"):
        try:
            wrapper.scan(line)
            refused = False
        except wrapper.Refused:
            refused = True
        expansions = [m.start() for m in re.finditer(r"\$\{", line)]
        assert refused == (not all(OLD_SIMPLE_PARAMETER.match(line[i:]) for i in expansions))


def test_the_environment_is_read_as_os_environ_reads_it(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(os.environb, b"WRAPPER_RAW", b"caf\xe9 \xc3\xa9")
    monkeypatch.delitem(os.environb, b"WRAPPER_UNSET", raising=False)
    for name in ("PATH", "WRAPPER_RAW", "WRAPPER_UNSET"):
        assert wrapper.getenv(name) == os.environ.get(name)


def test_log_lines_start_with_the_time_in_iso_8601_utc(tmp_path: Path):
    run_wrapper(tmp_path, login_env(tmp_path, "echo one"))
    stamp = (tmp_path / "commands.log").read_text().split(" ")[0]
    logged = datetime.datetime.fromisoformat(stamp)
    assert logged.isoformat(timespec="seconds") == stamp and logged.utcoffset() == ZERO
    now = datetime.datetime.now(datetime.UTC)
    assert now - datetime.timedelta(seconds=30) < logged <= now


ZERO = datetime.timedelta(0)


def test_checking_a_line_imports_nothing_python_has_not_loaded_at_start(tmp_path: Path):
    """The wrapper's start is python3's (issue 16): the module and a whole
    plain command's check and log add no module to those python3 -I -S loads."""
    allowed = tmp_path / "allowed-commands"
    allowed.write_text("ls\ncd\n")
    probe = (
        "import sys; loaded = set(sys.modules); sys.path.append(sys.argv[1]);"
        "import testbuild_command_wrapper as w; w.LOG_FILE = sys.argv[2];"
        "command = w.resolve_command('cd /tmp && ls -l \"a b\" 2>&1 | ls', None, 'both');"
        "w.check_allowed(command, w.read_allowed(sys.argv[3])); w.log('ok', command, 'key');"
        "w.command_environment(w.login_environment());"
        "print(sorted(set(sys.modules) - loaded - {'testbuild_command_wrapper'}))"
    )
    arguments = [str(LIBEXEC), str(tmp_path / "log"), str(allowed)]
    ran = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", probe, *arguments],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (ran.returncode, ran.stdout) == (0, "[]\n"), ran.stderr


def test_the_executable_sshd_runs_is_a_stub_that_runs_the_module(tmp_path: Path):
    """What sshd runs (python3 -IS, the stub's first line) imports the module
    beside it and runs main(): here a refusal, decided before any file is read
    (the allow-list and the log are the login node's)."""
    stub = LIBEXEC / "testbuild-command-wrapper"
    assert stub.read_text().startswith("#!/usr/bin/python3 -IS\n") and os.access(stub, os.X_OK)
    env = login_env(tmp_path, "ls")
    ran = subprocess.run(
        [sys.executable, "-I", "-S", "-B", str(stub), "--accept=certificate-as-command"],
        env=env,
        capture_output=True,
        check=False,
    )
    assert ran.returncode == wrapper.REFUSED
    assert ran.stderr.startswith(b"testbuild: command refused: plain commands are not accepted")


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
