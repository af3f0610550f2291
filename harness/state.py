"""Per-environment secrets and keys, kept on the host under stateDir/<name>/.

Nothing secret is baked into an image: the SSH CA, the login node's host key,
the munge key and database passwords are generated here on first `up`, reused
by later ones (so a running cluster keeps trusting them) and removed by
`down`.
"""

from __future__ import annotations

import secrets
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from firecrest_testbuild.harness.sshca import KeyPair


def _free_port(address: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class EnvironmentState:
    root: Path

    @property
    def user_ca(self) -> KeyPair:
        return KeyPair.load_or_create(self.root / "ssh" / "user_ca", "testbuild user CA")

    @property
    def host_key(self) -> KeyPair:
        return KeyPair.load_or_create(self.root / "ssh" / "host_ed25519", "testbuild login node")

    def user_key(self, user: str) -> KeyPair:
        return KeyPair.load_or_create(self.root / "ssh" / "users" / user, f"{user}@testbuild")

    def secret(self, name: str, size: int) -> bytes:
        """Random bytes made once per environment (munge key, passwords)."""
        path = self.root / "secrets" / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_bytes(secrets.token_bytes(size))
        return path.read_bytes()

    def password(self, name: str) -> str:
        return self.secret(name, 18).hex()

    def port(self, key: str, configured: int, bind_address: str) -> int:
        """The configured port, or for 0 a free one picked once and kept.

        Published ports are fixed before containers start because URLs that
        contain them (token issuer, presigned URLs) must not change.
        """
        if configured:
            return configured
        path = self.root / "ports" / key
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(str(_free_port(bind_address)))
        return int(path.read_text())

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
