"""A loopback identity provider for unit tests of token checks: an RSA key
whose JWKS is served on 127.0.0.1, another key it does not publish, and
tokens signed with either."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "http://127.0.0.1:8080/auth/realms/kcrealm"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    """The URL of KEY's JWKS (kid k1), served while the module's tests run."""
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))
    body = json.dumps({"keys": [jwk | {"kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/certs"
    server.shutdown()


def token(key: Any = KEY, kid: str = "k1", **overrides: object) -> str:
    """A token of test1 valid for an hour (parametrized tests make theirs at
    collection, and the whole unit run may take minutes on a busy machine);
    an override of None drops the claim."""
    now = int(time.time())
    claims = {"iss": ISSUER, "exp": now + 3600, "iat": now, "preferred_username": "test1"}
    claims.update(overrides)
    return jwt.encode(
        {k: v for k, v in claims.items() if v is not None}, key, "RS256", headers={"kid": kid}
    )
