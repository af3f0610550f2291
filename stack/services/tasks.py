"""Tasks: a user's asynchronous requests and how they ended."""

from __future__ import annotations

import re

from flask import Blueprint, jsonify

from firecrest_testbuild.stack import schemas
from firecrest_testbuild.stack.api import Call, Endpoint, Param, route
from firecrest_testbuild.stack.context import stack_context
from firecrest_testbuild.stack.errors import ApiError
from firecrest_testbuild.stack.services import Service

TASK_ID = re.compile(r"^[0-9a-f]{32}$")

blueprint = Blueprint("tasks", __name__, url_prefix="/tasks")
SERVICE = Service(name="tasks", blueprint=blueprint)
_route = lambda endpoint: route(blueprint, endpoint, SERVICE.endpoints)  # noqa: E731


@_route(
    Endpoint(
        "GET",
        "/tasks",
        "Returns all tasks (or a subset)",
        200,
        "Error listing tasks",
        machine=False,
        tag="Tasks",
        params=(
            # Screened as FirecREST v1 does: "" and its forbidden characters
            # are a 400; ids that are no task of the user's select nothing.
            Param(
                "tasks",
                "query",
                "list",
                description="Comma-separated list of task ids",
                forbid_chars=True,
                allow_empty=False,
            ),
        ),
        response=schemas.TASKS,
    )
)
def all_tasks(call: Call):
    wanted = call.params["tasks"]
    store = stack_context().store
    return jsonify({"tasks": store.of_user(call.user, wanted)})


@_route(
    Endpoint(
        "GET",
        "/tasks/{taskid}",
        "Task status information",
        200,
        "Task not found",
        machine=False,
        tag="Tasks",
        response=schemas.ONE_TASK,
        not_found=True,
        forbidden=True,
        params=(Param("taskid", "path", required=True),),
    )
)
def one_task(call: Call):
    task_id = call.params["taskid"]
    task = stack_context().store.find(task_id) if TASK_ID.match(task_id) else None
    if task is None:
        raise ApiError(
            404,
            f"Task {task_id} does not exist",
            body={"description": "Task not found", "error": f"Task {task_id} does not exist"},
        )
    if task["user"] != call.user:
        # As the reference: another user's task is named as such (403), not hidden.
        raise ApiError(
            403,
            "Operation not permitted. Invalid task owner.",
            body={"description": "Operation not permitted. Invalid task owner."},
        )
    return jsonify({"task": task})
