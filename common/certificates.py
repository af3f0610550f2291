"""The certificator: short-lived SSH user certificates signed by the site CA.

FirecREST v1 never holds standing user keys: for each command it makes a
throw-away key and has the CA sign it for the user, valid for a minute or
so, with the command itself as the certificate's force-command. The login
node trusts the CA and runs nothing but that command.
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

DEFAULT_LIFETIME = datetime.timedelta(minutes=5)
CLOCK_SKEW = datetime.timedelta(minutes=1)


@dataclass(frozen=True)
class SignedIdentity:
    """A throw-away key and its certificate, ready for paramiko."""

    pkey: paramiko.Ed25519Key
    certificate: str


def load_ca_key(path: Path) -> ed25519.Ed25519PrivateKey:
    key = serialization.load_ssh_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def sign_user_certificate(
    ca: ed25519.Ed25519PrivateKey,
    user: str,
    public_key: ed25519.Ed25519PublicKey,
    force_command: str | None = None,
    lifetime: datetime.timedelta = DEFAULT_LIFETIME,
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
    return builder.sign(ca).public_bytes().decode()


def issue_identity(
    ca: ed25519.Ed25519PrivateKey,
    user: str,
    force_command: str | None = None,
    lifetime: datetime.timedelta = DEFAULT_LIFETIME,
) -> SignedIdentity:
    """A fresh key with a CA certificate for `user`."""
    key = ed25519.Ed25519PrivateKey.generate()
    certificate = sign_user_certificate(ca, user, key.public_key(), force_command, lifetime)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    pkey = paramiko.Ed25519Key.from_private_key(io.StringIO(pem.decode()))
    pkey.load_certificate(certificate)
    return SignedIdentity(pkey=pkey, certificate=certificate)
