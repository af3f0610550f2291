"""The environment's SSH keys: user CA, login node host key, per-user static keys.

Certificates are signed in-process (cryptography's SSHCertificateBuilder), so
the harness needs no ssh-keygen on the host. Every certificate is short-lived
and may carry a force-command, as FirecREST v1's certificator issues them.
"""

from __future__ import annotations

import datetime
import io
import secrets
from dataclasses import dataclass
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

CERTIFICATE_LIFETIME = datetime.timedelta(minutes=5)
CLOCK_SKEW = datetime.timedelta(minutes=1)


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


def sign_user_certificate(
    ca: KeyPair,
    user: str,
    public_key: ed25519.Ed25519PublicKey,
    force_command: str | None = None,
    lifetime: datetime.timedelta = CERTIFICATE_LIFETIME,
) -> str:
    """An OpenSSH user certificate line for `user`, valid from now for `lifetime`."""
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        serialization.SSHCertificateBuilder()
        .public_key(public_key)
        .serial(secrets.randbits(64))
        .type(serialization.SSHCertificateType.USER)
        .key_id(f"testbuild-{user}".encode())
        .valid_principals([user.encode()])
        .valid_after(int((now - CLOCK_SKEW).timestamp()))
        .valid_before(int((now + lifetime).timestamp()))
    )
    if force_command is not None:
        builder = builder.add_critical_option(b"force-command", force_command.encode())
    certificate = builder.sign(ca.private_key())
    return certificate.public_bytes().decode()


@dataclass(frozen=True)
class SignedIdentity:
    """A throw-away key and its certificate, ready for paramiko."""

    pkey: paramiko.Ed25519Key
    certificate: str


def issue_identity(ca: KeyPair, user: str, force_command: str | None = None) -> SignedIdentity:
    """A fresh key with a CA certificate for `user` (the certificator's job)."""
    key = ed25519.Ed25519PrivateKey.generate()
    certificate = sign_user_certificate(ca, user, key.public_key(), force_command)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    pkey = paramiko.Ed25519Key.from_private_key(io.StringIO(pem.decode()))
    pkey.load_certificate(certificate)
    return SignedIdentity(pkey=pkey, certificate=certificate)


def load_paramiko_key(pair: KeyPair) -> paramiko.Ed25519Key:
    """A stored key for paramiko, without any certificate (static-key logins)."""
    return paramiko.Ed25519Key.from_private_key_file(str(pair.private_path))
