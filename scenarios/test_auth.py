"""Auth: tokens missing, malformed, forged, tampered or expired are refused;
one user cannot touch another user's files or jobs. Forged and tampered
tokens are made here, and only here."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from firecrest_testbuild.scenarios.client import Client, Tokens
from firecrest_testbuild.scenarios.expect import refused_at_once_or_by_task
from firecrest_testbuild.scenarios.target import Identity
from firecrest_testbuild.scenarios.verdict import must, spec, tutorial

pytestmark = pytest.mark.api(1)

PROBE = "/status/systems"
# The tutorial ("Obtain credentials"): "FirecREST API will return helpful
# messages in case the access token is invalid or has expired".
INVALID_TOKEN = {"message": "Bad token; invalid JSON"}
EXPIRED_TOKEN = {"exp": "token expired"}
HELPFUL_MESSAGES = tutorial(
    "Obtain credentials",
    'an invalid token: {"message": "Bad token; invalid JSON"}; an expired one:'
    ' {"exp": "token expired"}',
)
BEARER = spec("security: bearerAuth (JWT)", "a request without a valid bearer token: 401")


def refused(client: Client, token: str | None) -> requests.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    answer = requests.get(f"{client.base}{PROBE}", headers=headers, timeout=30)
    client.recorder.record(answer, PROBE)
    return answer


@pytest.mark.source(BEARER)
@pytest.mark.covers("GET /status/systems")
def test_a_missing_token_is_refused(client: Client):
    assert refused(client, None).status_code == 401


@pytest.mark.source(BEARER)
@pytest.mark.covers("GET /status/systems")
def test_a_malformed_token_is_refused(client: Client):
    for token in ("not-a-jwt", "a.b.c"):
        answer = refused(client, token)
        assert answer.status_code == 401
        must(answer.json() == INVALID_TOKEN, answer.text[:200], HELPFUL_MESSAGES, answer)


@pytest.mark.source(BEARER)
@pytest.mark.covers("GET /status/systems")
def test_a_token_signed_by_someone_else_is_refused(client: Client):
    real = client.tokens.current()
    claims = jwt.decode(real, options={"verify_signature": False})
    header = jwt.get_unverified_header(real)
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, forger, algorithm="RS256", headers={"kid": header.get("kid")})
    assert refused(client, forged).status_code == 401


@pytest.mark.source(BEARER)
@pytest.mark.covers("GET /status/systems")
def test_a_tampered_token_is_refused(client: Client, other: Client):
    head, payload, signature = client.tokens.current().split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    claims["preferred_username"] = other.user
    changed = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    assert refused(client, f"{head}.{changed}.{signature}").status_code == 401


@pytest.mark.source(BEARER)
@pytest.mark.covers("GET /status/systems")
def test_an_expired_token_is_refused(client: Client):
    probe = client.target.auth.expiry_probe
    if probe is None:
        pytest.skip("no short-lived client to get an expiring token from (auth.expiryProbe)")
    target = client.target.model_copy(
        update={
            "auth": client.target.auth.model_copy(
                update={"client_id": probe.client_id, "client_secret": probe.client_secret}
            )
        }
    )
    token = Tokens(target, Identity(name="expiry-probe")).fetch()
    expiry = jwt.decode(token, options={"verify_signature": False})["exp"]
    wait = expiry - time.time() + 1.5
    if wait > 60:
        pytest.skip(f"auth.expiryProbe's tokens live {wait:.0f} s; the suite waits 60 s at most")
    time.sleep(max(wait, 0))
    answer = refused(client, token)
    assert answer.status_code == 401
    must(answer.json() == EXPIRED_TOKEN, answer.text[:200], HELPFUL_MESSAGES, answer)


@pytest.mark.source(
    spec(
        "GET /utilities/ls, POST /utilities/mkdir, POST /utilities/upload",
        "400 with X-Permission-Denied where the user may not go",
    )
)
@pytest.mark.covers("GET /utilities/ls", "POST /utilities/mkdir", "POST /utilities/upload")
def test_a_user_cannot_touch_another_users_files(client: Client, other: Client, other_workdir: str):
    listing = client.get("/utilities/ls", targetPath=other_workdir)
    assert listing.status_code == 400 and "X-Permission-Denied" in listing.headers
    intrusion = client.post("/utilities/mkdir", targetPath=f"{other_workdir}/intruder")
    assert intrusion.status_code == 400 and "X-Permission-Denied" in intrusion.headers
    # POST /utilities/upload, 400 header X-Permission-Denied (API description).
    dropped = client.post(
        "/utilities/upload", targetPath=other_workdir, files={"file": ("intruder", b"x")}
    )
    assert dropped.status_code == 400 and "X-Permission-Denied" in dropped.headers


@pytest.mark.source(
    spec(
        "DELETE /compute/jobs/{jobid}",
        "400 'Task creation error', or a task ending 400 (Task-Compute-Delete-400), for a job"
        " of another user: the job runs on",
    )
)
@pytest.mark.requires("scheduler")
@pytest.mark.covers(
    "POST /compute/jobs/upload", "DELETE /compute/jobs/{jobid}", "GET /compute/jobs/{jobid}"
)
def test_a_user_cannot_cancel_another_users_job(
    client: Client, other: Client, cancel_at_end: Callable[[str], None]
):
    script = b"#!/bin/bash\n#SBATCH --time=5:00\nsleep 60\n"
    job = client.task_result(client.post("/compute/jobs/upload", files={"file": ("j.sh", script)}))
    jobid = str(job["jobid"])
    cancel_at_end(jobid)
    attempt = other.request("DELETE", f"/compute/jobs/{jobid}")
    refused_at_once_or_by_task(other, attempt, CANCEL_REFUSED)
    # Refused, so the job is still there for its owner.
    listed = list(client.task_result(client.get(f"/compute/jobs/{jobid}")).values())
    assert [row["jobid"] for row in listed] == [jobid], listed
    assert listed[0]["state"] in ("PENDING", "RUNNING"), listed


CANCEL_REFUSED = spec(
    "DELETE /compute/jobs/{jobid}", "400, or a task ending 400 (Task-Compute-Delete-400)"
)
