"""What storage's external and internal transfer endpoints share: their
declaration, and the look at a path they take before any task exists."""

from __future__ import annotations

from firecrest_testbuild.stack import errors, schemas
from firecrest_testbuild.stack.api import Call, Endpoint, Param
from firecrest_testbuild.stack.commands import PathState, probe
from firecrest_testbuild.stack.context import stack_context
from firecrest_testbuild.stack.errors import ApiError

CHECK_TIME_LIMIT = 10


def storage_endpoint(path: str, summary: str, *params: Param) -> Endpoint:
    """A POST under /storage answered with a new task."""
    return Endpoint(
        "POST",
        f"/storage/{path}",
        summary,
        201,
        "Task creation error",
        params,
        tag="Storage",
        response=schemas.TASK_CREATED,
    )


def probe_path(call: Call, path: str) -> PathState:
    return probe(stack_context().shell, call.user, call.machine, path, CHECK_TIME_LIMIT)


def require_readable(call: Call, path: str) -> PathState:
    """The path's state; a 400 unless it exists and the user may read it."""
    state = probe_path(call, path)
    if state.denied or (state.kind is not None and not state.readable):
        raise ApiError(400, errors.PERMISSION_DENIED_TEXT, errors.PERMISSION_DENIED)
    if state.kind is None:
        raise ApiError(400, f"{path} not found", errors.NOT_FOUND)
    return state
