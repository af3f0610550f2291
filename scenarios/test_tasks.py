"""Tasks: a task's fields, a user's own tasks only, unknown ids refused."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests

from firecrest_testbuild.scenarios.client import Client
from firecrest_testbuild.scenarios.verdict import client as client_source
from firecrest_testbuild.scenarios.verdict import reference, should, spec

pytestmark = [pytest.mark.api(1), pytest.mark.requires("scheduler")]


@pytest.fixture(scope="module")
def task_id(client: Client) -> str:
    """A finished task of the first identity's: a partitions listing."""
    task_id = client.created_task(client.get("/compute/partitions"))
    client.wait_task(task_id)
    return task_id


@pytest.mark.source(
    spec(
        "GET /tasks/{taskid}",
        "Task-Compute-*-200: hash_id (the task_id), user, service 'compute', status '200',"
        " description 'Finished successfully', last_modify, data",
    )
)
@pytest.mark.covers("GET /tasks/{taskid}")
def test_a_task_has_its_fields(client: Client, task_id: str):
    task = client.task(task_id)
    assert task["hash_id"] == task_id, task
    assert task["user"] == client.user and task["service"] == "compute"
    assert task["status"] == "200" and task["description"] == "Finished successfully"
    for field in ("last_modify", "data"):
        assert field in task
    should(
        re.fullmatch(r"[0-9a-f]{16,64}", task["hash_id"]),
        f"task id {task['hash_id']!r} is not a hexadecimal hash",
        reference("tasks.py", "task ids are hexadecimal hashes"),
        about="GET /tasks/{taskid}",
    )
    should(
        str(task.get("task_url", "")).endswith(f"/tasks/{task_id}"),
        f"task_url {task.get('task_url')!r} does not name the task",
        reference("tasks.py", "a task carries its task_url, /tasks/<id>"),
        about="GET /tasks/{taskid}",
    )


def listed_ids(answer: requests.Response) -> list[str]:
    """The ids of the tasks GET /tasks answered: the description's Tasks (a
    list of Task) or the reference's {"tasks": {id: Task}} (pyfirecrest's)."""
    body: Any = answer.json()
    tasks = body.get("tasks", body) if isinstance(body, dict) else body
    if isinstance(tasks, dict):
        return list(tasks)
    return [task.get("hash_id") or task.get("task_id") for task in tasks]


@pytest.mark.source(
    spec("GET /tasks", "the user's tasks; `tasks` (a comma-separated list of ids): only those")
)
@pytest.mark.covers("GET /tasks")
def test_tasks_lists_one_users_tasks_only(client: Client, other: Client, task_id: str):
    mine = client.request("GET", "/tasks", machine=False)
    assert mine.status_code == 200
    assert task_id in listed_ids(mine)
    should(
        isinstance(mine.json().get("tasks"), dict),
        "the answer is not {'tasks': {id: task}}",
        client_source("pyfirecrest 3.x (v1 BasicClient._tasks)", "reads response['tasks'][id]"),
        about=mine,
    )
    chosen = client.request("GET", "/tasks", machine=False, params={"tasks": task_id})
    assert listed_ids(chosen) == [task_id]
    theirs = other.request("GET", "/tasks", machine=False)
    assert theirs.status_code == 200 and task_id not in listed_ids(theirs)


MALFORMED_LIST = reference(
    "tasks.py list_tasks (validate_input)",
    '`tasks` empty or with a forbidden character: 400 "\'tasks\' is empty" / "... has invalid'
    ' char"; unknown ids in a well-formed list are left out, no error',
)


@pytest.mark.source(MALFORMED_LIST)
@pytest.mark.covers("GET /tasks")
def test_a_malformed_task_list_is_refused(client: Client):
    for tasks, says in (("", "'tasks' is empty"), ("abc;def", "'tasks' has invalid char")):
        answer = client.request("GET", "/tasks", machine=False, params={"tasks": tasks})
        should(
            answer.status_code == 400 and says in answer.text,
            f"GET /tasks?tasks={tasks}: {answer.status_code} {answer.text[:200]}",
            MALFORMED_LIST,
            about=answer,
        )


@pytest.mark.source(
    spec(
        "GET /tasks/{taskid}",
        "200 is a task's status, for its owner: no task for an unknown id or another user's",
    )
)
@pytest.mark.covers("GET /tasks/{taskid}")
def test_unknown_and_foreign_tasks_are_not_shown(client: Client, other: Client, task_id: str):
    foreign = other.request("GET", f"/tasks/{task_id}", machine=False)
    assert 400 <= foreign.status_code < 500, foreign.status_code
    should(
        foreign.status_code == 403,
        f"another user's task: {foreign.status_code}",
        reference("tasks.py get_task", "403 'Operation not permitted. Invalid task owner.'"),
        about=foreign,
    )
    unknown = client.request("GET", "/tasks/0123456789abcdef0123456789abcdef", machine=False)
    assert 400 <= unknown.status_code < 500, unknown.status_code
    should(
        unknown.status_code == 404,
        f"an unknown task: {unknown.status_code}",
        reference("tasks.py get_task", "404 'Task <id> does not exist'"),
        about=unknown,
    )
