"""Certificates the harness signs are what sshd and FirecREST v1 expect."""

from __future__ import annotations

import subprocess
from datetime import datetime
from pathlib import Path

from firecrest_testbuild.common.certificates import issue_identity
from firecrest_testbuild.harness.keys import KeyPair
from firecrest_testbuild.harness.state import EnvironmentState


def listing(certificate: str) -> str:
    return subprocess.run(
        ["ssh-keygen", "-L", "-f", "-"],
        input=certificate,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_certificate_names_the_user_and_carries_the_force_command(tmp_path: Path):
    ca = KeyPair.load_or_create(tmp_path / "ca", "test CA")
    identity = issue_identity(
        ca.private_key(), "test1", force_command="ID=x timeout 5 ls -a '/home/test1'"
    )
    text = listing(identity.certificate)
    assert "Type: ssh-ed25519-cert-v01@openssh.com user certificate" in text
    assert "Principals: \n                test1" in text
    assert "force-command ID=x timeout 5 ls -a '/home/test1'" in text
    ca_fingerprint = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(ca.public_path)], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    assert f"Signing CA: ED25519 {ca_fingerprint}" in text


def test_certificate_is_short_lived(tmp_path: Path):
    ca = KeyPair.load_or_create(tmp_path / "ca", "test CA")
    text = listing(issue_identity(ca.private_key(), "test1").certificate)
    valid = next(line for line in text.splitlines() if "Valid:" in line)
    start, end = valid.split("from ")[1].split(" to ")
    lifetime = datetime.fromisoformat(end.strip()) - datetime.fromisoformat(start.strip())
    assert 0 < lifetime.total_seconds() <= 10 * 60


def test_state_keys_and_secrets_are_stable_private_and_removed(tmp_path: Path):
    state = EnvironmentState(tmp_path / "env")
    first = state.user_ca.public_line()
    assert state.user_ca.public_line() == first
    assert state.secret("munge.key", 1024) == state.secret("munge.key", 1024)
    assert len(state.secret("munge.key", 1024)) == 1024
    assert (state.user_ca.private_path.stat().st_mode & 0o777) == 0o600
    assert (state.root / "secrets" / "munge.key").stat().st_mode & 0o777 == 0o600
    state.remove()
    assert not state.root.exists()
