"""Status is really probed, tasks are private and survive an API restart, and
tokens are checked: missing, malformed, forged and expired ones are refused."""

from __future__ import annotations

import datetime
import json
import time

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from firecrest_testbuild.harness.environment import Environment
from tests.integration.api import Api
from tests.integration.conftest import eventually, short_lived_token

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(environment: Environment) -> Api:
    return Api.for_user(environment, "test1")


def container(environment: Environment, node: str):
    return environment.runtime.container(node)


def get(api: Api, path: str) -> requests.Response:
    return api.request("GET", path, machine=False)


def test_services_report_each_microservice_and_a_stopped_task_store(
    api: Api, environment: Environment
):
    services = get(api, "/status/services").json()["out"]
    assert {s["service"] for s in services} == {
        "certificator",
        "compute",
        "status",
        "storage",
        "tasks",
        "utilities",
    }
    assert get(api, "/status/services/tasks").json()["status"] == "available"
    assert get(api, "/status/services/nosuch").status_code == 404
    redis = container(environment, "redis")
    redis.stop(timeout=5)
    try:
        down = get(api, "/status/services/tasks").json()
        assert (down["status"], down["status_code"]) == ("unavailable", 400)
    finally:
        redis.start()
    eventually(lambda: get(api, "/status/services/tasks").json()["status"] == "available")


def test_a_cluster_whose_sshd_is_stopped_is_unavailable(api: Api, environment: Environment):
    system = get(api, "/status/systems/cluster").json()["out"]
    assert system["status"] == "available"
    controller = container(environment, "controller")
    controller.exec_run(["pkill", "-STOP", "-x", "sshd"])
    try:
        stopped = get(api, "/status/systems/cluster").json()["out"]
        assert stopped["status"] == "unavailable"
        assert stopped["description"].startswith("Error on connection to system")
        command = api.get("/utilities/whoami")  # waits for the SSH banner, then gives up
        assert command.status_code == 400
        assert "X-Machine-Not-Available" in command.headers
    finally:
        controller.exec_run(["pkill", "-CONT", "-x", "sshd"])
    assert get(api, "/status/systems/cluster").json()["out"]["status"] == "available"
    assert get(api, "/status/systems/nosuch").status_code == 404


def test_filesystems_and_parameters(api: Api):
    filesystems = get(api, "/status/filesystems").json()["out"]["cluster"]
    assert {(f["name"], f["path"], f["status"]) for f in filesystems} == {
        ("HOME", "/home", "available"),
        ("SCRATCH", "/scratch", "available"),
    }
    assert get(api, "/status/filesystems/cluster").json()["out"] == filesystems
    assert get(api, "/status/filesystems/nosuch").status_code == 400
    parameters = get(api, "/status/parameters").json()["out"]
    limits = {p["name"]: p for p in parameters["utilities"]}
    assert limits["UTILITIES_MAX_FILE_SIZE"]["value"] == 5
    assert limits["UTILITIES_MAX_FILE_SIZE"]["unit"] == "MB"


def test_tasks_are_private_and_listed(api: Api, environment: Environment):
    created = api.get("/utilities/whoami")  # no task: a blocking call
    assert created.status_code == 200
    task_id = api.get("/compute/partitions").json()["task_id"]
    other = Api.for_user(environment, "test2")
    assert other.request("GET", f"/tasks/{task_id}", machine=False).status_code == 404
    assert task_id not in get(other, "/tasks").json()["tasks"]
    mine = get(api, f"/tasks?tasks={task_id}").json()["tasks"]
    assert list(mine) == [task_id] and mine[task_id]["user"] == "test1"
    assert get(api, "/tasks/not-a-task-id").status_code == 404


def test_tasks_expire_as_configured(api: Api, environment: Environment):
    task_id = api.get("/compute/partitions").json()["task_id"]
    ttl = container(environment, "redis").exec_run(["redis-cli", "ttl", f"task:{task_id}"])
    configured = environment.config.stack.task_expiry_seconds
    assert configured - 60 < int(ttl.output) <= configured


def test_tasks_survive_a_restart_of_the_api(api: Api, environment: Environment):
    response = api.get("/compute/partitions")
    finished = api.finished_task(response)
    restart_api(api, environment)
    assert api.task(finished["task_id"]) == finished


def test_a_task_interrupted_by_a_restart_is_failed_not_left_in_progress(
    api: Api, environment: Environment
):
    controller = container(environment, "controller")
    controller.exec_run(["pkill", "-STOP", "-x", "sshd"])  # the task's SSH call hangs
    try:
        task_id = api.get("/compute/partitions").json()["task_id"]
        assert api.task(task_id)["status"] in ("100", "101")
        restart_api(api, environment, crash=True)
    finally:
        controller.exec_run(["pkill", "-CONT", "-x", "sshd"])
    task = api.task(task_id)
    assert task["status"] == "400"
    assert "restarted" in task["data"]


def restart_api(api: Api, environment: Environment, crash: bool = False) -> None:
    """Restart the API's container; a crash (SIGKILL) lets no task finish."""
    firecrest = container(environment, "stack")
    if crash:
        firecrest.kill()
        firecrest.start()
    else:
        firecrest.restart(timeout=10)
    api.wait_until_up()


def test_missing_malformed_and_forged_tokens_are_refused(api: Api):
    url = f"{api.url}/status/systems"
    missing = requests.get(url, timeout=10)
    assert missing.status_code == 401
    malformed = requests.get(url, headers={"Authorization": "Bearer abc"}, timeout=10)
    assert (malformed.status_code, malformed.json()) == (
        401,
        {"message": "Bad token; invalid JSON"},
    )
    claims = jwt.decode(api.token, options={"verify_signature": False})
    header = jwt.get_unverified_header(api.token)
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, forger, algorithm="RS256", headers={"kid": header["kid"]})
    refused = requests.get(url, headers={"Authorization": f"Bearer {forged}"}, timeout=10)
    assert (refused.status_code, refused.json()) == (401, {"message": "Invalid signature"})
    claims["preferred_username"] = "test2"  # tampered payload, original signature
    head, _, signature = api.token.split(".")
    payload = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    tampered = f"{head}.{payload}.{signature}"
    refused = requests.get(url, headers={"Authorization": f"Bearer {tampered}"}, timeout=10)
    assert refused.status_code == 401


def test_an_expired_token_is_refused(api: Api, environment: Environment):
    with short_lived_token(environment, lifespan=2) as token:
        expiry = jwt.decode(token, options={"verify_signature": False})["exp"]
        time.sleep(max(0.0, expiry - datetime.datetime.now().timestamp()) + 1.5)
        expired = requests.get(
            f"{api.url}/status/systems", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert (expired.status_code, expired.json()) == (401, {"exp": "token expired"})
