"""slurmrestd on the Slurm 24.11 controller, with auth/jwt checking Keycloak's
tokens against the realm's keys (cluster.slurmrestd): a user's real token
submits and lists that user's jobs, directly and through the v2 stack in its
`rest` and `hybrid` connection modes; a token whose user differs from
X-SLURM-USER-NAME, an expired one, one of another realm and one signed by
another key are refused.

The environment is conftest's V2_LOGIN_CLUSTER (shared with
test_cluster_v2_ssh.py): tokens live SHORT_TOKEN_LIFESPAN (10) seconds
there, so that the expiry check can show one token accepted and then, past
its expiry, refused."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from firecrest_testbuild.harness.contracts import (
    ClusterEndpoints,
    KeycloakEndpoints,
    SlurmrestdEndpoints,
)
from firecrest_testbuild.harness.environment import Environment
from tests.integration.conftest import (
    eventually,
    keycloak,
    login_node,
    v2_login_environment_for,
)
from tests.integration.test_stack_v2 import V2, wait_for_state

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def env(v2_login_environment: Environment) -> Environment:
    return v2_login_environment


@pytest.fixture(scope="module")
def rest(env: Environment) -> SlurmrestdEndpoints:
    endpoints = env.context().endpoints(ClusterEndpoints).slurmrestd
    assert endpoints is not None
    return endpoints


def token_of(env: Environment, name: str) -> str:
    return keycloak(env).token(user=env.config.user(name))


def get(rest: SlurmrestdEndpoints, path: str, user: str, token: str) -> requests.Response:
    version = rest.versions[-1]
    return requests.get(
        f"{rest.url}/slurm/{version}/{path}", headers=rest.headers(user, token), timeout=30
    )


def refused(response: requests.Response) -> bool:
    """Not served: an HTTP error, or (as slurmrestd answers a failed auth
    towards slurmctld) a body with errors and no jobs."""
    if response.status_code >= 400:
        return True
    body = response.json()
    return bool(body.get("errors")) and not body.get("jobs")


def says_why(env: Environment, reason: str) -> None:
    """slurmctld (or slurmdbd) logged why it refused a token: the refusal is for
    that reason, not another."""

    def logged() -> bool:
        return reason in env.runtime.container("controller").logs().decode(errors="replace")

    eventually(logged, timeout=10)


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def test_a_users_token_submits_and_lists_their_job_and_it_completes(
    env: Environment, rest: SlurmrestdEndpoints
):
    version = rest.versions[-1]
    script = "#!/bin/bash\nhostname\n"
    body = {
        "job": {
            "name": "rest-check",
            "script": script,
            "partition": "part01",
            "current_working_directory": "/home/test1",
            "environment": ["PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/home/test1"],
            "standard_output": "/dev/null",
        }
    }
    submitted = requests.post(
        f"{rest.url}/slurm/{version}/job/submit",
        headers=rest.headers("test1", token_of(env, "test1")),
        json=body,
        timeout=30,
    )
    assert submitted.status_code == 200, submitted.text
    job_id = submitted.json()["job_id"]

    listed = get(rest, "jobs", "test1", token_of(env, "test1"))
    assert listed.status_code == 200, listed.text
    mine = [job for job in listed.json()["jobs"] if job["job_id"] == job_id]
    assert [job["user_name"] for job in mine] == ["test1"]

    login = login_node(env)

    def completed() -> bool:
        result = login.run("test1", f"sacct -nP -X -j {job_id} --format=state,user,jobname")
        return result.stdout.strip() == "COMPLETED|test1|rest-check"

    eventually(completed, timeout=90)


def test_another_users_token_is_refused_for_test1(env: Environment, rest: SlurmrestdEndpoints):
    assert get(rest, "jobs", "test2", token_of(env, "test2")).status_code == 200
    assert refused(get(rest, "jobs", "test1", token_of(env, "test2")))
    says_why(env, "attempt to authenticate as alternate user test2 from non-SlurmUser test1")


def test_a_token_is_refused_once_expired(env: Environment, rest: SlurmrestdEndpoints):
    token = token_of(env, "test1")
    assert get(rest, "jobs", "test1", token).status_code == 200
    time.sleep(max(0.0, claims(token)["exp"] - time.time()) + 2)
    assert refused(get(rest, "jobs", "test1", token))
    says_why(env, "token expired")


def test_a_token_signed_by_another_key_is_refused(env: Environment, rest: SlurmrestdEndpoints):
    """The realm's own claims and key id, signed by a key that is not the realm's."""
    real = token_of(env, "test1")
    forged_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = jwt.get_unverified_header(real)["kid"]
    forged = jwt.encode(claims(real), forged_key, algorithm="RS256", headers={"kid": kid})
    assert refused(get(rest, "jobs", "test1", forged))
    says_why(env, "failed to verify jwt")


def test_a_token_of_another_realm_is_refused(env: Environment, rest: SlurmrestdEndpoints):
    """A real Keycloak token of the same server's master realm (other keys)."""
    endpoints: KeycloakEndpoints = keycloak(env)
    form = {
        "grant_type": "password",
        "client_id": "admin-cli",
        "username": endpoints.admin.user,
        "password": endpoints.admin.password,
    }
    answer = requests.post(
        f"{endpoints.url}/realms/master/protocol/openid-connect/token", data=form, timeout=30
    )
    assert answer.status_code == 200, answer.text
    other = answer.json()["access_token"]
    assert claims(other)["iss"] != endpoints.issuer
    assert (
        jwt.get_unverified_header(other)["kid"]
        != jwt.get_unverified_header(token_of(env, "test1"))["kid"]
    )
    assert refused(get(rest, "jobs", "test1", other))
    says_why(env, "could not find matching kid")


def test_env_shows_the_url_and_the_api_versions(env: Environment, rest: SlurmrestdEndpoints):
    printed = env.endpoints().as_json()["cluster"]["slurmrestd"]
    assert printed == {"url": rest.url, "versions": list(rest.versions)}
    assert rest.url.startswith("http://127.0.0.1:")
    assert rest.versions == ("v0.0.40", "v0.0.41", "v0.0.42")


class FreshTokenV2(V2):
    """Tokens here live SHORT_TOKEN_LIFESPAN seconds: a fresh one for every request."""

    def __init__(self, environment: Environment, user: str) -> None:
        super().__init__(environment, user)
        self.environment = environment

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        self.token = token_of(self.environment, self.user)
        return super().request(method, path, **kwargs)


def test_the_v2_stack_in_rest_mode_runs_jobs_through_slurmrestd(env: Environment):
    api = FreshTokenV2(env, "test1")
    job = {"script": "#!/bin/bash\nhostname\n", "workingDirectory": "/home/test1"}
    submitted = api.ok(
        "POST", "/compute/cluster/jobs", 201, json={"job": {**job, "name": "v2-rest"}}
    )
    job_id = submitted["jobId"]
    finished = wait_for_state(api, job_id, {"COMPLETED", "FAILED", "CANCELLED"})
    assert (finished["status"]["state"], finished["name"]) == ("COMPLETED", "v2-rest")
    assert job_id in {listed["jobId"] for listed in api.ok("GET", "/compute/cluster/jobs")["jobs"]}
    # What only SSH could do is refused, which shows the mode is in effect.
    by_path = {"scriptPath": "/home/test1/job.sh", "workingDirectory": "/home/test1"}
    refused = api.request("POST", "/compute/cluster/jobs", json={"job": by_path})
    assert refused.status_code == 400, refused.text
    assert "rest connection mode" in refused.json()["message"]


def job_output(api: V2, submission: dict[str, Any], output: str) -> str:
    """Submit, wait for COMPLETED, and read the job's standard output file."""
    job = {"workingDirectory": "/home/test1", "standardOutput": output, **submission}
    job_id = api.ok("POST", "/compute/cluster/jobs", 201, json={"job": job})["jobId"]
    finished = wait_for_state(api, job_id, {"COMPLETED", "FAILED", "CANCELLED"})
    assert finished["status"]["state"] == "COMPLETED", finished
    path = {"path": output}
    return str(api.ok("GET", "/filesystem/cluster/ops/view", params=path)["output"])


@pytest.mark.reconfigures_environment
def test_the_v2_stack_in_hybrid_mode_sends_scripts_to_slurmrestd_and_the_rest_over_ssh(
    env: Environment, state_home: Path
):
    """Switches the environment's v2 stack to hybrid, so it runs after the
    tests that use it in rest mode (reconfigures_environment)."""
    hybrid = v2_login_environment_for(state_home, "hybrid", name=env.config.name)
    hybrid.up()
    api = FreshTokenV2(hybrid, "test1")
    script = "#!/bin/bash\necho ssh=${SSH_CONNECTION:-none}\n"
    # A script in the request goes to slurmrestd, which hands the job only the
    # environment it was given: no SSH login's variables.
    through_rest = job_output(api, {"script": script}, "/home/test1/hybrid-rest.out")
    assert through_rest.strip() == "ssh=none"
    # A script by its path, which slurmrestd cannot take, is sbatch'ed over the
    # user's SSH login (--export=ALL): the job sees that login.
    login_node(hybrid).run("test1", "cat > /home/test1/hybrid.sh", stdin=script.encode())
    by_path = {"scriptPath": "/home/test1/hybrid.sh"}
    over_ssh = job_output(api, by_path, "/home/test1/hybrid-ssh.out")
    assert over_ssh.startswith("ssh=") and over_ssh.strip() != "ssh=none"
