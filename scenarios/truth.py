"""Ground truth behind the API: commands on the system run as an identity,
and objects in the staging store.

The target grants SSH with its CA key: each command gets a throw-away key
signed with `ssh-keygen -s` for that user, valid for a minute, whose
force-command is the command (the login node's usual rules apply). S3 is
granted with credentials for the staging store.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from minio import Minio

from firecrest_testbuild.common import sshexec
from firecrest_testbuild.common.sshexec import Output, SshTarget
from firecrest_testbuild.scenarios.target import S3Truth, SshTruth


class SystemTruth:
    def __init__(self, settings: SshTruth) -> None:
        self.settings = settings

    def run(self, user: str, command: str) -> Output:
        key = ed25519.Ed25519PrivateKey.generate()
        with tempfile.TemporaryDirectory(prefix="conformance-") as folder:
            certificate = self._signed(Path(folder), key, user, command)
        pkey = paramiko.Ed25519Key.from_private_key(_pem_file(key))
        pkey.load_certificate(certificate)
        target = SshTarget(self.settings.host, self.settings.port, self.settings.host_key, 15)
        return sshexec.execute(target, user, pkey, command)

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


class Truth:
    """Ground truth for one test: a check runs where the target grants the
    access it needs; otherwise it is recorded as skipped, with the reason, in
    the test's report (the API-level checks run either way)."""

    def __init__(self, system: SystemTruth | None, s3: S3Truth | None, node) -> None:
        self._system = system
        self._s3 = s3
        self._node = node

    def system(self, what: str) -> SystemTruth | None:
        if self._system is None:
            self.note(what, "the target grants no SSH access (groundTruth.ssh)")
        return self._system

    def store(self, what: str) -> Minio | None:
        if self._s3 is None:
            self.note(what, "the target grants no S3 access (groundTruth.s3)")
            return None
        secure = self._s3.url.startswith("https://")
        return Minio(
            self._s3.url.split("://", 1)[1],
            access_key=self._s3.access_key,
            secret_key=self._s3.secret_key,
            secure=secure,
            region=self._s3.region,
        )

    def note(self, what: str, why: str) -> None:
        """A check this test could not make, with why (reported as skipped)."""
        self._node.user_properties.append(("skipped-check", f"{what}: {why}"))
