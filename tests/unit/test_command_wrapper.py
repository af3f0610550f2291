"""The login node's ForceCommand wrapper: what it runs and what it refuses."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from firecrest_testbuild.common.certificates import sign_user_certificate
from firecrest_testbuild.harness.paths import CLUSTER, IMAGES
from firecrest_testbuild.harness.sshca import KeyPair

WRAPPER = IMAGES / "cluster/files/usr/local/libexec/testbuild-command-wrapper"
loader = importlib.machinery.SourceFileLoader("command_wrapper", str(WRAPPER))
spec = importlib.util.spec_from_loader("command_wrapper", loader)
assert spec is not None
wrapper = importlib.util.module_from_spec(spec)
loader.exec_module(wrapper)

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
