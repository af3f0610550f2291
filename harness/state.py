"""Per-environment state: secrets, keys, picked ports and the saved config.

Each environment has one folder, named after it, in the user's state home
($TESTBUILD_STATE_HOME, else $XDG_STATE_HOME/testbuild, else
~/.local/state/testbuild), so every command finds the same environment by
name from any folder. Nothing secret is baked into an image: the SSH CA, the
login node's host key, the munge key and database passwords are generated
here on first `up`, reused by later ones (so a running cluster keeps
trusting them) and removed by `down`; so are the RSA keys of Keycloak's
realms (the cluster's Slurm trusts the realm's signing key from its start).

Only `up` makes what is missing. Commands that read an environment use the
state read-only: a missing key, secret or port is an error there, since a
new one would not match what the running environment was given.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from firecrest_testbuild.harness.errors import TestbuildError
from firecrest_testbuild.harness.keys import KeyPair, load_or_create_rsa_key

STATE_HOME_VARIABLE = "TESTBUILD_STATE_HOME"


def state_home() -> Path:
    """Where every environment's state folder lives."""
    chosen = os.environ.get(STATE_HOME_VARIABLE)
    if chosen:
        return Path(chosen).resolve()
    xdg = os.environ.get("XDG_STATE_HOME", "")
    # The XDG base directory spec says to ignore a relative path.
    base = Path(xdg) if Path(xdg).is_absolute() else Path.home() / ".local" / "state"
    return base / "testbuild"


def _free_port(address: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class EnvironmentState:
    """The state folder of one environment, named after it."""

    root: Path
    writable: bool = True  # False: what is missing is an error, never made

    @classmethod
    def of(cls, name: str, home: Path | None = None, writable: bool = True) -> EnvironmentState:
        """Environment `name`'s state in `home` (default: the user's state home)."""
        return cls((home or state_home()) / name, writable)

    @property
    def home(self) -> Path:
        return self.root.parent

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def config_file(self) -> Path:
        """The validated config `up` brought the environment up with."""
        return self.root / "config.yaml"

    @property
    def target_file(self) -> Path:
        """The conformance target description `up` writes (see harness/target.py)."""
        return self.root / "target.yaml"

    @property
    def v2_target_file(self) -> Path:
        """The target description of the stack's FirecREST v2 API (stack.v2)."""
        return self.root / "target-v2.yaml"

    def stack_target(self, api: str) -> Path:
        """The target description of the stack's API of generation `api` (v1, v2)."""
        return self.v2_target_file if api == "v2" else self.target_file

    def implementation_target(self, name: str) -> Path:
        """The target description `up` writes for a hosted implementation."""
        return self.root / "targets" / f"{name}.yaml"

    @property
    def user_ca(self) -> KeyPair:
        return self._key_pair(self.root / "ssh" / "user_ca", "testbuild user CA")

    @property
    def host_key(self) -> KeyPair:
        return self._key_pair(self.root / "ssh" / "host_ed25519", "testbuild login node")

    def keycloak_key(self, name: str) -> rsa.RSAPrivateKey:
        """An RSA key of Keycloak's realms (see keycloak_realm): made here, before
        any container starts, so that what must trust or carry it (the cluster's
        JWKS, the master realm Keycloak imports at its first start) is known."""
        path = self.root / "keycloak" / f"{name}.pem"
        if not path.exists():
            self._may_make(path)
        return load_or_create_rsa_key(path)

    def user_key(self, user: str) -> KeyPair:
        return self._key_pair(self.root / "ssh" / "users" / user, f"{user}@testbuild")

    def secret(self, name: str, size: int) -> bytes:
        """Random bytes made once per environment (munge key, passwords)."""
        path = self.root / "secrets" / name
        if not path.exists():
            self._may_make(path)
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
            self._may_make(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(str(_free_port(bind_address)))
        return int(path.read_text())

    def write(self, path: Path, text: str) -> None:
        """A file of the state folder, readable by its owner only (it may hold secrets)."""
        self._may_make(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(text)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def _key_pair(self, private_path: Path, comment: str) -> KeyPair:
        if not private_path.exists():
            self._may_make(private_path)
        return KeyPair.load_or_create(private_path, comment)

    def _may_make(self, path: Path) -> None:
        if not self.writable:
            raise TestbuildError(
                "state",
                f"{path} is missing from the state of environment '{self.name}'",
                fix=f"run 'testbuild up' for '{self.name}' again: it makes what is missing"
                " (commands that only read an environment never do)",
            )
