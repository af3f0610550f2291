"""The split layout: a container per service behind the gateway, same API."""

from __future__ import annotations

import pytest
import requests

from firecrest_testbuild.harness.environment import Environment
from tests.integration.api import Api

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def split(split_environment: Environment) -> Environment:
    return split_environment


def test_each_service_runs_in_its_container_behind_one_address(split: Environment):
    nodes = {row["node"] for row in split.status()}
    assert {
        "stack",
        "stack-status",
        "stack-utilities",
        "stack-compute",
        "stack-tasks",
    } <= nodes
    api = Api.for_user(split, "test1")
    services = {
        s["service"]: s for s in api.request("GET", "/status/services", machine=False).json()["out"]
    }
    for name in ("compute", "storage", "tasks", "utilities"):
        assert services[name]["status"] == "available"
        assert f"stack-{name}:8000" in services[name]["description"]
    assert api.get("/utilities/whoami").json()["output"] == "test1"
    job = api.task_result(
        api.post("/compute/jobs/upload", files={"file": ("j.sh", b"#!/bin/bash\ntrue\n")})
    )
    assert job["result"] == "Job submitted"
    document = requests.get(f"{api.url}/openapi.json", timeout=10).json()
    assert sum(len(methods) for methods in document["paths"].values()) == 51


def test_a_stopped_service_is_reported_down_and_its_paths_answer_503(split: Environment):
    api = Api.for_user(split, "test1")
    compute = split.runtime.container("stack-compute")
    compute.stop(timeout=5)
    try:
        down = api.request("GET", "/status/services/compute", machine=False).json()
        assert down["status"] == "unavailable"
        refused = api.get("/compute/partitions")
        assert refused.status_code == 503
        assert refused.json()["description"] == "Service compute is not available"
        assert api.get("/utilities/whoami").status_code == 200
    finally:
        compute.start()
