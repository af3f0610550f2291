"""The environment's keys: SSH user CA, login node host key, per-user static
keys, and the Keycloak realm's token signing key.

SSH keys are stored as OpenSSH files under the environment's state folder;
certificates are signed by the service stack's certificator
(common.certificates), the same signing the service stack uses. The realm's
signing key is an RSA key in a PEM file beside them.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from firecrest_testbuild.harness.errors import TestbuildError


@dataclass(frozen=True)
class KeyPair:
    """An Ed25519 key pair stored as OpenSSH files (private: mode 0600)."""

    private_path: Path

    @property
    def public_path(self) -> Path:
        return self.private_path.with_name(self.private_path.name + ".pub")

    def private_key(self) -> ed25519.Ed25519PrivateKey:
        key = serialization.load_ssh_private_key(self.private_path.read_bytes(), password=None)
        assert isinstance(key, ed25519.Ed25519PrivateKey)
        return key

    def public_line(self) -> str:
        return self.public_path.read_text().strip()

    @classmethod
    def load_or_create(cls, private_path: Path, comment: str) -> KeyPair:
        pair = cls(private_path)
        if not private_path.exists():
            pair._write(ed25519.Ed25519PrivateKey.generate(), comment)
        return pair

    def _write(self, key: ed25519.Ed25519PrivateKey, comment: str) -> None:
        self.private_path.parent.mkdir(parents=True, exist_ok=True)
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        self.private_path.touch(mode=0o600)
        self.private_path.write_bytes(private)
        self.public_path.write_text(f"{public.decode()} {comment}\n")


def load_paramiko_key(pair: KeyPair) -> paramiko.Ed25519Key:
    """A stored key for paramiko, without any certificate (static-key logins)."""
    return paramiko.Ed25519Key.from_private_key_file(str(pair.private_path))


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def load_or_create_rsa_key(path: Path) -> rsa.RSAPrivateKey:
    """The 2048-bit RSA key stored at `path` (PEM, mode 0600), made on first use."""
    if not path.exists():
        _write_rsa_key(path, new_rsa_key())
    return _load_rsa_key(path, path.stat().st_mtime_ns)


def _write_rsa_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    """Written beside and renamed into place: an interrupted run leaves no
    half-written key for every later command to trip over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    partial.replace(path)


@functools.lru_cache(maxsize=16)
def _load_rsa_key(path: Path, mtime_ns: int) -> rsa.RSAPrivateKey:
    """Parsing checks the key, about 30 ms; an `up` reads each key several
    times (every container spec, probes, endpoints), so each version of a
    file (its modification time) is parsed once."""
    try:
        stored = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError as error:
        stored = None
        reason = str(error)
    else:
        reason = "not an RSA key"
    if not isinstance(stored, rsa.RSAPrivateKey):
        raise TestbuildError(
            "state",
            f"{path} is not a readable RSA private key ({reason})",
            fix="remove the environment ('testbuild down') and bring it up again: its keys"
            " are made anew",
        )
    return stored
