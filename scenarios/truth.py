"""Ground truth behind the API: commands on the system, run as an identity.

The target grants it with its SSH CA key: each command gets a throw-away key
signed with `ssh-keygen -s` for that user, valid for a minute, whose
force-command is the command (the login node's usual rules apply).
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from scenarios.target import SshTruth


@dataclass(frozen=True)
class Ran:
    exit_status: int
    stdout: bytes
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout.decode(errors="replace")


class SystemTruth:
    def __init__(self, settings: SshTruth) -> None:
        self.settings = settings

    def run(self, user: str, command: str) -> Ran:
        key = ed25519.Ed25519PrivateKey.generate()
        with tempfile.TemporaryDirectory(prefix="conformance-") as folder:
            certificate = self._signed(Path(folder), key, user, command)
        pkey = paramiko.Ed25519Key.from_private_key(_pem_file(key))
        pkey.load_certificate(certificate)
        client = paramiko.SSHClient()
        address = f"[{self.settings.host}]:{self.settings.port}"
        entry = paramiko.hostkeys.HostKeyEntry.from_line(f"{address} {self.settings.host_key}")
        assert entry is not None and entry.key is not None, "groundTruth.ssh.hostKey is unreadable"
        client.get_host_keys().add(address, entry.key.get_name(), entry.key)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(
            self.settings.host,
            port=self.settings.port,
            username=user,
            pkey=pkey,
            look_for_keys=False,
            allow_agent=False,
            timeout=15,
        )
        try:
            _, stdout, stderr = client.exec_command(command, timeout=120)
            out = stdout.read()
            return Ran(
                stdout.channel.recv_exit_status(), out, stderr.read().decode(errors="replace")
            )
        finally:
            client.close()

    def _signed(self, folder: Path, key: ed25519.Ed25519PrivateKey, user: str, command: str) -> str:
        public = folder / "key.pub"
        public.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
            )
        )
        ca = folder / "ca"
        ca.write_bytes(self.settings.ca_private_key.read_bytes())
        ca.chmod(0o600)
        subprocess.run(
            [
                "ssh-keygen",
                "-q",
                "-s",
                str(ca),
                "-I",
                f"conformance-{user}",
                "-n",
                user,
                "-V",
                "-1m:+2m",
                "-O",
                f"force-command={command}",
                str(public),
            ],
            check=True,
            capture_output=True,
        )
        return (folder / "key-cert.pub").read_text()


def _pem_file(key: ed25519.Ed25519PrivateKey):
    import io

    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    return io.StringIO(pem.decode())
