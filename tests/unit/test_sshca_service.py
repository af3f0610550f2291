"""The SSH CA service (sshca/): both of FirecREST v2's protocols against a
loopback JWKS, its refusals, and the certificates it signs."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from flask.testing import FlaskClient

from firecrest_testbuild.sshca.app import Settings, create_app, parse_duration
from firecrest_testbuild.sshca.tokens import Refused
from tests.unit.identity_provider import ISSUER, OTHER_KEY, token

CA = ed25519.Ed25519PrivateKey.generate()
OTHER_CA = ed25519.Ed25519PrivateKey.generate()


@pytest.fixture
def client(jwks_url: str, tmp_path: Path) -> FlaskClient:
    ca_file = tmp_path / "user_ca"
    ca_file.write_bytes(
        CA.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    settings = Settings(jwks_url=jwks_url, issuer=ISSUER, ca_private_key=ca_file)
    return create_app(settings).test_client()


def public_line(key: Any = None) -> str:
    key = key or ed25519.Ed25519PrivateKey.generate()
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


def sign(client: FlaskClient, body: object) -> Any:
    # As v2's DeiC client sends it: json.dumps text, no JSON content type.
    return client.post("/sign", data=json.dumps(body), content_type="text/plain; charset=utf-8")


def ssh_keys(client: FlaskClient, authorization: str | None, body: object) -> Any:
    headers = {"Authorization": authorization} if authorization else {}
    return client.post("/api/v1/ssh-keys", data=json.dumps(body), headers=headers)


def parsed(line: str) -> serialization.SSHCertificate:
    certificate = serialization.load_ssh_public_identity(line.strip().encode())
    assert isinstance(certificate, serialization.SSHCertificate)
    certificate.verify_cert_signature()
    return certificate


def ca_line(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )


def assert_user_certificate(line: str, user: str, longest: int) -> serialization.SSHCertificate:
    certificate = parsed(line)
    signer = certificate.signature_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    assert signer == ca_line(CA) != ca_line(OTHER_CA)
    assert certificate.type == serialization.SSHCertificateType.USER
    assert certificate.valid_principals == [user.encode()]
    assert certificate.critical_options == {}  # no force-command
    now = time.time()
    assert certificate.valid_after <= now < certificate.valid_before <= now + longest + 2
    return certificate


def test_sshca_protocol_signs_the_tokens_user(client: FlaskClient):
    key = ed25519.Ed25519PrivateKey.generate()
    answer = sign(client, {"PublicKey": public_line(key), "OTT": token()})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.mimetype == "text/plain"
    text = answer.get_data(as_text=True)
    assert text.startswith("ssh-ed25519-cert-v01@openssh.com ") and text.endswith("\n")
    certificate = assert_user_certificate(text, "test1", longest=300)
    assert certificate.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    ) == key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def test_the_body_is_json_whatever_its_content_type(client: FlaskClient):
    body = json.dumps({"PublicKey": public_line(), "OTT": token()})
    for content_type in ("application/json", "application/x-www-form-urlencoded", None):
        answer = client.post("/sign", data=body, content_type=content_type)
        assert answer.status_code == 200, (content_type, answer.get_data(as_text=True))


def test_sshservice_protocol_makes_a_key_and_its_certificate(client: FlaskClient):
    answer = ssh_keys(client, f"Bearer {token()}", {"duration": "1min", "username": "test1"})
    assert answer.status_code == 201, answer.get_data(as_text=True)
    key = answer.get_json()["sshKey"]
    assert set(key) == {"privateKey", "publicKey"}
    # v2 appends a newline to each: neither ends with one.
    assert not key["privateKey"].endswith("\n") and not key["publicKey"].endswith("\n")
    private = serialization.load_ssh_private_key((key["privateKey"] + "\n").encode(), None)
    assert isinstance(private, ed25519.Ed25519PrivateKey)
    certificate = assert_user_certificate(key["publicKey"], "test1", longest=60)
    assert certificate.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    ) == private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def test_ssh_keygen_reads_the_certificate_as_the_login_node_does(
    client: FlaskClient, tmp_path: Path
):
    answer = sign(client, {"PublicKey": public_line(), "OTT": token()})
    listing = subprocess.run(
        ["ssh-keygen", "-L", "-f", "-"],
        input=answer.get_data(as_text=True),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Type: ssh-ed25519-cert-v01@openssh.com user certificate" in listing
    principals = listing.split("Principals:")[1].split("Critical Options:")[0].split()
    assert principals == ["test1"]
    assert "Critical Options: (none)" in listing
    assert "force-command" not in listing


def test_a_requested_duration_is_capped_by_the_lifetime(client: FlaskClient):
    answer = ssh_keys(client, f"Bearer {token()}", {"duration": "2h", "username": "test1"})
    assert answer.status_code == 201
    assert_user_certificate(answer.get_json()["sshKey"]["publicKey"], "test1", longest=300)


def test_durations():
    assert parse_duration("1min") == 60
    assert parse_duration("30s") == 30
    assert parse_duration("2h") == 7200
    assert parse_duration("1d") == 86400
    for bad in ("0min", "soon", "-1min", 60, None):
        with pytest.raises(Refused):
            parse_duration(bad)


EXPIRED = {"exp": int(time.time()) - 5}


@pytest.mark.parametrize(
    ("ott", "reason"),
    [
        (None, "no access token"),
        ("", "no access token"),
        ("not.a.jwt", "not a JWT"),
        (token(**EXPIRED), "expired"),
        (token(key=OTHER_KEY), "signature"),
        (token(kid="unknown"), "not signed by the realm"),
        (token(iss="http://elsewhere/realms/x"), "another issuer"),
        (token(preferred_username=None), "preferred_username"),
    ],
)
def test_sshca_protocol_refuses_bad_tokens_and_signs_nothing(
    client: FlaskClient, ott: str | None, reason: str
):
    answer = sign(client, {"PublicKey": public_line(), "OTT": ott})
    assert answer.status_code == 401
    assert reason in answer.get_json()["message"]
    assert "cert" not in answer.get_data(as_text=True)


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (None, "no Authorization header"),
        ("Basic dGVzdDE6dGVzdDEx", "Bearer <token>"),
        ("Bearer ", "Bearer <token>"),
        ("Bearer not.a.jwt", "not a JWT"),
        (f"Bearer {token(**EXPIRED)}", "expired"),
        (f"Bearer {token(key=OTHER_KEY)}", "signature"),
        (f"Bearer {token(iss='http://elsewhere/realms/x')}", "another issuer"),
    ],
)
def test_sshservice_protocol_refuses_bad_tokens_and_makes_nothing(
    client: FlaskClient, authorization: str | None, reason: str
):
    answer = ssh_keys(client, authorization, {"duration": "1min", "username": "test1"})
    assert answer.status_code == 401
    assert reason in answer.get_json()["message"]
    assert "sshKey" not in answer.get_json()


def test_a_username_other_than_the_tokens_is_forbidden(client: FlaskClient):
    answer = ssh_keys(client, f"Bearer {token(preferred_username='test2')}", {"username": "test1"})
    assert answer.status_code == 403
    assert answer.get_json() == {"message": "the token is test2's, not 'test1''s"}


@pytest.mark.parametrize(
    ("public_key", "reason"),
    [
        (None, "must be an OpenSSH public key"),
        ("", "must be an OpenSSH public key"),
        ("ssh-ed25519 AAAAnot-base64", "is not an OpenSSH public key"),
        ("hello world", "is not an OpenSSH public key"),
        (public_line(rsa.generate_private_key(65537, 2048)), "only ssh-ed25519"),
        (public_line(ec.generate_private_key(ec.SECP256R1())), "only ssh-ed25519"),
    ],
)
def test_bad_public_keys_are_refused(client: FlaskClient, public_key: str | None, reason: str):
    answer = sign(client, {"PublicKey": public_key, "OTT": token()})
    assert answer.status_code == 400
    assert reason in answer.get_json()["message"]


@pytest.mark.parametrize("body", ["{not json", "[1, 2]", '"text"'])
def test_bodies_that_are_not_json_objects_are_refused(client: FlaskClient, body: str):
    answer = client.post("/sign", data=body)
    assert answer.status_code == 400
    assert answer.get_json()["message"].startswith("the body")
    answer = client.post(
        "/api/v1/ssh-keys", data=body, headers={"Authorization": f"Bearer {token()}"}
    )
    assert answer.status_code == 400


def test_a_bad_duration_is_refused(client: FlaskClient):
    answer = ssh_keys(client, f"Bearer {token()}", {"duration": "forever", "username": "test1"})
    assert answer.status_code == 400
    assert "duration" in answer.get_json()["message"]


def test_health(client: FlaskClient):
    assert client.get("/_health").get_json() == {"status": "ok"}


def test_settings_are_read_from_the_harness_file(tmp_path: Path):
    path = tmp_path / "sshca.json"
    path.write_text(
        json.dumps(
            {
                "jwksUrl": "http://keycloak:8080/certs",
                "issuer": ISSUER,
                "caPrivateKey": "/run/sshca/user_ca",
                "certificateLifetime": 120,
            }
        )
    )
    settings = Settings.from_file(path)
    assert settings.certificate_lifetime == 120
    assert settings.ca_private_key == Path("/run/sshca/user_ca")
    assert settings.username_claim == "preferred_username" and settings.audience is None
