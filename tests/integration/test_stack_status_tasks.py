"""Status and tasks where the conformance suites (scenarios/test_status.py,
test_tasks.py, test_auth.py, run against the stack by test_conformance.py)
cannot look: status really probed (Redis and sshd stopped), tasks kept in
Redis with the configured expiry and across restarts of the API, and the
stack's own answers where the API description is silent."""

from __future__ import annotations

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from firecrest_testbuild.harness.environment import Environment
from firecrest_testbuild.scenarios.client import poll
from tests.integration.api import Api

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
        "reservations",
    }
    assert get(api, "/status/services/tasks").json()["status"] == "available"
    redis = container(environment, "redis")
    redis.stop(timeout=5)
    try:
        down = get(api, "/status/services/tasks").json()
        assert (down["status"], down["status_code"]) == ("unavailable", 400)
    finally:
        redis.start()
    poll(
        lambda: get(api, "/status/services/tasks").json()["status"],
        lambda status: status == "available",
        timeout=60,
        what="the tasks service available again",
        interval=0.5,
        max_interval=0.5,
    )


def test_a_cluster_whose_sshd_is_stopped_is_unavailable(api: Api, environment: Environment):
    # The environment's one system, ready, as the tutorial shows it.
    assert get(api, "/status/systems").json()["out"] == [
        {"system": "cluster", "status": "available", "description": "System ready"}
    ]
    controller = container(environment, "controller")
    controller.exec_run(["pkill", "-STOP", "-x", "sshd"])
    try:
        # Probes are shared for status.probeCacheSeconds (2 s): it shows within that.
        stopped = poll(
            lambda: get(api, "/status/systems/cluster").json()["out"],
            lambda out: out["status"] == "unavailable",
            timeout=15,
            what="the stopped system reported unavailable",
        )
        assert stopped["description"].startswith("Error on connection to system")
        command = api.get("/utilities/whoami")  # waits for the SSH banner, then gives up
        assert command.status_code == 400
        assert "X-Machine-Not-Available" in command.headers
    finally:
        controller.exec_run(["pkill", "-CONT", "-x", "sshd"])
    poll(
        lambda: get(api, "/status/systems/cluster").json()["out"]["status"],
        lambda status: status == "available",
        timeout=15,
        what="the system available again",
    )


def test_the_environments_filesystems_and_an_unknown_system(api: Api):
    filesystems = get(api, "/status/filesystems").json()["out"]["cluster"]
    assert {(f["name"], f["path"], f["status"]) for f in filesystems} == {
        ("HOME", "/home", "available"),
        ("SCRATCH", "/scratch", "available"),
    }
    # The document is silent; the reference answers 404 (stack/README.md, deviations).
    assert get(api, "/status/filesystems/nosuch").status_code == 404


def test_tasks_expire_as_configured(api: Api, environment: Environment):
    task_id = api.created_task(api.get("/compute/partitions"))
    ttl = environment.runtime.execute("redis", ["redis-cli", "ttl", f"task:{task_id}"])
    configured = environment.config.stack.task_expiry_seconds
    assert configured - 60 < int(ttl.output) <= configured


def test_tasks_survive_a_restart_of_the_api(api: Api, environment: Environment):
    finished = api.wait_task(api.created_task(api.get("/compute/partitions")))
    restart_api(api, environment)
    assert api.task(finished["task_id"]) == finished


def test_a_task_interrupted_by_a_restart_is_failed_not_left_in_progress(
    api: Api, environment: Environment
):
    controller = container(environment, "controller")
    controller.exec_run(["pkill", "-STOP", "-x", "sshd"])  # the task's SSH call hangs
    try:
        task_id = api.created_task(api.get("/compute/partitions"))
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


def test_a_forged_token_gets_the_answer_of_firecrests_gateway(api: Api):
    """Missing, malformed, tampered and expired tokens, and the tutorial's
    bodies, are the suites' (test_auth.py); this body is the stack's choice."""
    claims = jwt.decode(api.token, options={"verify_signature": False})
    header = jwt.get_unverified_header(api.token)
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, forger, algorithm="RS256", headers={"kid": header["kid"]})
    refused = requests.get(
        f"{api.url}/status/systems", headers={"Authorization": f"Bearer {forged}"}, timeout=10
    )
    assert (refused.status_code, refused.json()) == (401, {"message": "Invalid signature"})
