"""Tasks: hash ids and URLs, a user's own tasks only, unknown ids refused."""

from __future__ import annotations

import re

import pytest

from firecrest_testbuild.scenarios.client import Client

pytestmark = pytest.mark.requires("scheduler")


@pytest.fixture(scope="module")
def task_id(client: Client) -> str:
    """A finished task of the first identity's: a partitions listing."""
    task_id = client.created_task(client.get("/compute/partitions"))
    client.wait_task(task_id)
    return task_id


@pytest.mark.covers("GET /tasks/{taskid}")
def test_a_task_has_its_fields(client: Client, task_id: str):
    task = client.task(task_id)
    assert re.fullmatch(r"[0-9a-f]{16,64}", task["hash_id"]), task["hash_id"]
    assert task["user"] == client.user and task["service"] == "compute"
    assert task["status"] == "200" and task["description"] == "Finished successfully"
    assert task["task_url"].endswith(f"/tasks/{task_id}")
    for field in ("last_modify", "data"):
        assert field in task


@pytest.mark.covers("GET /tasks")
def test_tasks_lists_one_users_tasks_only(client: Client, other: Client, task_id: str):
    mine = client.request("GET", "/tasks", machine=False)
    assert mine.status_code == 200
    assert task_id in mine.json()["tasks"]
    chosen = client.request("GET", "/tasks", machine=False, params={"tasks": task_id})
    assert list(chosen.json()["tasks"]) == [task_id]
    theirs = other.request("GET", "/tasks", machine=False)
    assert theirs.status_code == 200 and task_id not in theirs.json()["tasks"]


@pytest.mark.covers("GET /tasks/{taskid}")
def test_unknown_and_foreign_tasks_are_not_shown(client: Client, other: Client, task_id: str):
    foreign = other.request("GET", f"/tasks/{task_id}", machine=False)
    assert foreign.status_code in (403, 404), foreign.status_code
    unknown = client.request("GET", "/tasks/0123456789abcdef0123456789abcdef", machine=False)
    assert unknown.status_code == 404
