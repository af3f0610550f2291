"""The HTTP service: two protocols, one check, one signer.

- `POST /sign`, body `{"PublicKey": "<openssh public key>", "OTT": "<token>"}`
  (sent by FirecREST v2's `SSHCA` provider as JSON text without a JSON
  content type): 200 with the certificate line as text/plain.
- `POST /api/v1/ssh-keys`, `Authorization: Bearer <token>`, body
  `{"duration": "1min", "username": "<user>"}` (v2's `SSHService` provider):
  201 with `{"sshKey": {"privateKey": <OpenSSH key>, "publicKey": <certificate>}}`,
  both without a final newline (the client adds one).

Certificates are user certificates of the token's `preferred_username`,
valid for at most `certificateLifetime` seconds, with no force-command (v2
sends plain commands). Every refusal is a JSON `{"message": reason}`:
400 for a bad body or key, 401 for a missing, invalid, expired or foreign
token, 403 for a username other than the token's; nothing is signed then.
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from flask import Flask, Response, jsonify, request

from firecrest_testbuild.common.certificates import load_ca_key, sign_user_certificate
from firecrest_testbuild.sshca.tokens import Refused, TokenVerifier

MAX_BODY = 64 * 1024
DURATION = re.compile(r"^\s*(\d+)\s*(s|sec|secs|m|min|mins|h|hour|hours|d|day|days)\s*$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Settings:
    """The service's configuration file (JSON, written by the harness)."""

    jwks_url: str
    issuer: str
    ca_private_key: Path
    certificate_lifetime: int = 300  # seconds
    username_claim: str = "preferred_username"
    audience: str | None = None

    @classmethod
    def from_file(cls, path: Path) -> Settings:
        document = json.loads(path.read_text())
        return cls(
            jwks_url=document["jwksUrl"],
            issuer=document["issuer"],
            ca_private_key=Path(document["caPrivateKey"]),
            certificate_lifetime=int(document.get("certificateLifetime", 300)),
            username_claim=document.get("usernameClaim", "preferred_username"),
            audience=document.get("audience"),
        )


def parse_duration(text: object) -> int:
    """Seconds of a duration such as "1min", "30s", "2h" (SSHService's field)."""
    match = DURATION.match(text) if isinstance(text, str) else None
    if match is None or int(match.group(1)) <= 0:
        raise Refused(400, f"'duration' must be a positive duration such as '1min', not {text!r}")
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)[0]]


def create_app(settings: Settings, verifier: TokenVerifier | None = None) -> Flask:
    ca = load_ca_key(settings.ca_private_key)
    tokens = verifier or TokenVerifier(
        settings.jwks_url, settings.issuer, settings.username_claim, settings.audience
    )
    longest = datetime.timedelta(seconds=settings.certificate_lifetime)
    app = Flask("firecrest_testbuild.sshca")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY

    def certificate(
        user: str, public_key: ed25519.Ed25519PublicKey, lifetime: datetime.timedelta
    ) -> str:
        return sign_user_certificate(ca, user, public_key, force_command=None, lifetime=lifetime)

    @app.errorhandler(Refused)
    def refused(error: Refused) -> tuple[Response, int]:
        return jsonify(message=error.reason), error.status

    @app.errorhandler(413)
    def too_large(error: Exception) -> tuple[Response, int]:
        return jsonify(message=f"the body is larger than {MAX_BODY} bytes"), 413

    @app.get("/_health")
    def health() -> Response:
        return jsonify(status="ok")

    @app.post("/sign")
    def sign() -> Response:
        body = json_body()
        user = tokens.user_of(body.get("OTT"))
        public_key = ed25519_key(body.get("PublicKey"))
        line = certificate(user, public_key, longest)
        return Response(line + "\n", status=200, mimetype="text/plain")

    @app.post("/api/v1/ssh-keys")
    def ssh_keys() -> tuple[Response, int]:
        user = tokens.user_of(bearer(request.headers.get("Authorization")))
        body = json_body()
        wanted = body.get("username", user)
        if wanted != user:
            raise Refused(403, f"the token is {user}'s, not {wanted!r}'s")
        lifetime = min(
            datetime.timedelta(seconds=parse_duration(body.get("duration", "1min"))), longest
        )
        key = ed25519.Ed25519PrivateKey.generate()
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        ).decode()
        line = certificate(user, key.public_key(), lifetime)
        answer = {"sshKey": {"privateKey": private.rstrip("\n"), "publicKey": line}}
        return jsonify(answer), 201

    return app


def json_body() -> dict[str, Any]:
    """The body as a JSON object, whatever its content type (v2's SSHCA
    client sends JSON text without declaring it)."""
    try:
        document = json.loads(request.get_data(cache=True) or b"null")
    except (ValueError, UnicodeDecodeError) as error:
        raise Refused(400, "the body is not JSON") from error
    if not isinstance(document, dict):
        raise Refused(400, "the body must be a JSON object")
    return document


def bearer(header: str | None) -> str:
    if not header:
        raise Refused(401, "no Authorization header given")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Refused(401, "the Authorization header is not 'Bearer <token>'")
    return token.strip()


def ed25519_key(text: object) -> ed25519.Ed25519PublicKey:
    if not isinstance(text, str) or not text.strip():
        raise Refused(400, "'PublicKey' must be an OpenSSH public key line")
    try:
        key = serialization.load_ssh_public_key(text.strip().encode())
    except (ValueError, UnsupportedAlgorithm) as error:
        raise Refused(400, "'PublicKey' is not an OpenSSH public key") from error
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise Refused(400, "only ssh-ed25519 keys are signed")
    return key
