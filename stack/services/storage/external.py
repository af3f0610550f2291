"""Storage's external transfers: each request is checked at once, on the
system as the user, then becomes a task that the transfer state machine
(`transfers.py`) moves through the staging area."""

from __future__ import annotations

import posixpath
import re

from flask import Blueprint, Response, jsonify, request

from firecrest_testbuild.stack import errors, schemas
from firecrest_testbuild.stack.api import Call, Endpoint, Param, has_forbidden_char, route
from firecrest_testbuild.stack.context import stack_context
from firecrest_testbuild.stack.errors import ApiError
from firecrest_testbuild.stack.jobs import task_created
from firecrest_testbuild.stack.services.storage.common import (
    probe_path,
    require_readable,
    storage_endpoint,
)
from firecrest_testbuild.stack.transfers import Transfers

blueprint = Blueprint("storage_external", __name__, url_prefix="/storage")
ENDPOINTS: list[Endpoint] = []
_route = lambda endpoint: route(blueprint, endpoint, ENDPOINTS)  # noqa: E731

TASK_ID = re.compile(r"[0-9a-f]{32}")


def _transfers() -> Transfers:
    transfers = stack_context().transfers
    assert transfers is not None, "the storage service starts them"
    return transfers


def _absolute(path: str) -> str:
    if not path.startswith("/"):
        raise ApiError(
            400, f"{path} is an invalid path (give an absolute path)", errors.INVALID_PATH
        )
    return path


@_route(
    storage_endpoint(
        "xfer-external/upload",
        "Upload a file",
        # The client's own path (C:\\... too): only the name it gives the file is screened.
        Param("sourcePath", "form", required=True),
        Param("targetPath", "form", required=True, forbid_chars=True),
    )
)
def external_upload(call: Call) -> tuple[Response, int]:
    source, target = call.params["sourcePath"], call.params["targetPath"]
    name = posixpath.basename(source.replace("\\", "/").rstrip("/"))
    if not name or any(char < " " for char in name):
        raise errors.bad_request("'sourcePath' names no file")
    if has_forbidden_char(name):
        raise errors.bad_request("'sourcePath' has invalid char")
    path = _upload_destination(call, target, name)
    task = stack_context().store.create(call.user, "storage", call.machine.name)
    _transfers().upload(
        task["task_id"],
        call.user,
        call.machine.name,
        name=name,
        path=path,
        source=source,
        target=target,
    )
    return task_created(task, 201)


def _upload_destination(call: Call, target: str, source_name: str) -> str:
    """The file an upload will become: inside targetPath if it is a directory."""
    state = probe_path(call, _absolute(target))
    if state.kind == "directory":
        folder, destination = target, posixpath.join(target, source_name)
    else:
        folder, destination = posixpath.dirname(target.rstrip("/")) or "/", target
        parent = probe_path(call, folder)
        if parent.denied or state.denied:
            raise ApiError(400, errors.PERMISSION_DENIED_TEXT, errors.PERMISSION_DENIED)
        if parent.kind is None:
            raise ApiError(400, f"{target} is an invalid path", errors.INVALID_PATH)
        if parent.kind != "directory":
            raise ApiError(400, f"{folder} is not a directory", errors.NOT_A_DIRECTORY)
        state = parent
    if not state.writable:
        raise ApiError(
            400,
            f"{errors.PERMISSION_DENIED_TEXT}: {folder} is not writable",
            errors.PERMISSION_DENIED,
        )
    return destination


@_route(
    storage_endpoint(
        "xfer-external/download",
        "Download a file",
        Param("sourcePath", "form", required=True, forbid_chars=True),
    )
)
def external_download(call: Call) -> tuple[Response, int]:
    path = _absolute(call.params["sourcePath"])
    if require_readable(call, path).kind == "directory":
        raise ApiError(400, f"{path} is a directory", errors.A_DIRECTORY)
    task = stack_context().store.create(call.user, "storage", call.machine.name)
    _transfers().download(task["task_id"], call.user, call.machine.name, path)
    return task_created(task, 201)


@_route(
    Endpoint(
        "POST",
        "/storage/xfer-external/invalidate",
        "Invalidate temporary URL",
        201,
        "Error invalidating URL",
        (),
        machine=False,
        tag="Storage",
        response=schemas.obj(["success"], success=schemas.STRING),
        headers=("X-Task-Id",),
    )
)
def invalidate(call: Call) -> tuple[Response, int]:
    task_id = request.headers.get("X-Task-Id", "").strip()
    store = stack_context().store
    task = store.get(call.user, task_id) if TASK_ID.fullmatch(task_id) else None
    if task is None or not _transfers().invalidate(task_id):
        raise errors.bad_request(f"Task {task_id!r} is no transfer of yours with a URL")
    return jsonify({"success": "URL invalidated successfully"}), 201
