"""The error model (v2): every refusal is an error whose body is an
ApiResponseError (a client error, 4XX, as the reference answers: SHOULD):
an unknown system, a missing or forged token, a body that breaks its schema
and another user's private file."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from firecrest_testbuild.scenarios.v2.api import ERROR_MODEL, ApiV2, refused
from firecrest_testbuild.scenarios.verdict import reference, should, spec

pytestmark = pytest.mark.api(2)

UNKNOWN_SYSTEM = "no-such-system-x"
SYSTEM_NOT_FOUND = reference(
    "firecrest dependencies (system lookup)", "an unknown system answers 404 'System not found'"
)
# One operation of each area, with what it needs to be well-formed otherwise.
PER_AREA: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("GET", f"/status/{UNKNOWN_SYSTEM}/nodes", {}),
    ("GET", f"/filesystem/{UNKNOWN_SYSTEM}/ops/ls", {"params": {"path": "/"}}),
    (
        "POST",
        f"/filesystem/{UNKNOWN_SYSTEM}/transfer/cp",
        {"json": {"sourcePath": "/a", "targetPath": "/b"}},
    ),
    ("GET", f"/compute/{UNKNOWN_SYSTEM}/jobs", {}),
)


@pytest.mark.source(
    spec("every /{system_name} operation", "an error (ApiResponseError) for an unknown system")
)
@pytest.mark.covers(
    "GET /status/{system_name}/nodes",
    "GET /filesystem/{system_name}/ops/ls",
    "POST /filesystem/{system_name}/transfer/cp",
    "GET /compute/{system_name}/jobs",
)
def test_an_unknown_system_is_404(client: ApiV2):
    for method, path, kwargs in PER_AREA:
        answer = client.request(method, path, **kwargs)
        message = refused(answer)
        should(
            answer.status_code == 404 and "System not found" in message,
            f"{method} {path}: {answer.status_code} {message!r}",
            SYSTEM_NOT_FOUND,
            about=answer,
        )


@pytest.mark.source(ERROR_MODEL)
@pytest.mark.covers("GET /filesystem/{system_name}/ops/view")
def test_an_error_names_its_type_and_its_user(client: ApiV2, folder: str):
    answer = client.ops("GET", "view", params={"path": f"{folder}/missing"})
    refused(answer)
    body = answer.json()
    assert body.get("errorType", "error") in ("error", "validation"), body
    assert body.get("causedBy") is None or isinstance(body["causedBy"], list), body
    should(
        body.get("user") == client.user,
        f"the error's user is {body.get('user')!r}",
        reference("lib/handlers/api_response_handler.py", "an error's user is the caller"),
        about=answer,
    )


@pytest.mark.source(
    spec("security: HTTPBearer", "every operation but liveness needs a bearer token: 4XX without")
)
@pytest.mark.covers("GET /status/systems", "GET /filesystem/{system_name}/ops/ls")
def test_a_missing_or_forged_token_is_refused(client: ApiV2, workdir: str):
    bare = client.request("GET", "/status/systems", anonymous=True)
    assert 400 <= bare.status_code < 500, (bare.status_code, bare.text[:200])
    should(
        bare.status_code in (401, 403),
        f"no token: {bare.status_code}",
        reference("auth dependency (HTTPBearer)", "no token answers 401 or 403"),
        about=bare,
    )
    claims = jwt.decode(client.tokens.current(), options={"verify_signature": False})
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": "not-theirs"})
    answer = client.request(
        "GET", f"/filesystem/{client.system}/ops/ls", token=forged, params={"path": workdir}
    )
    refused(answer)


@pytest.mark.source(
    spec(
        "POST /filesystem/{system_name}/ops/mkdir",
        "sourcePath is required: a body without it is an error (ApiResponseError)",
    )
)
@pytest.mark.covers("POST /filesystem/{system_name}/ops/mkdir", "POST /compute/{system_name}/jobs")
def test_a_body_that_breaks_its_schema_is_a_client_error(client: ApiV2):
    refused(client.ops("POST", "mkdir", {"parent": True}))
    refused(client.jobs(method="POST", json={"job": {"script": "true"}}))


@pytest.mark.source(
    spec("GET /filesystem/{system_name}/ops/view", "an error for a file the caller may not read")
)
@pytest.mark.covers("GET /filesystem/{system_name}/ops/view")
def test_another_users_private_file_is_refused(client: ApiV2, other: ApiV2, folder: str):
    client.upload_small(folder, "secret", b"mine")
    client.ops("PUT", "chmod", {"sourcePath": f"{folder}/secret", "mode": "600"})
    answer = other.ops("GET", "view", params={"path": f"{folder}/secret"})
    refused(answer)
    should(
        answer.status_code == 403,
        f"a file the caller may not read: {answer.status_code}",
        reference("filesystem/ops/commands (error handling)", "'Permission denied' answers 403"),
        about=answer,
    )
