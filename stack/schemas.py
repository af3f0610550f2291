"""JSON Schemas of the stack's answers, as the v1.16 API describes them (and
as the clients read them where the two differ; see README.md). They feed
/openapi.json, against which the fuzzing tests validate every answer."""

from __future__ import annotations

from typing import Any

from firecrest_testbuild.stack.taskstore import TaskStatus

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}


def obj(required: list[str], **properties: Schema) -> Schema:
    return {"type": "object", "required": required, "properties": properties}


def utilities(output: Schema) -> Schema:
    return obj(["description", "output"], description=STRING, output=output)


def same_type(kind: Schema, names: list[str]) -> Schema:
    """An object whose listed properties are all required and all of `kind`."""
    return obj(names, **{name: dict(kind) for name in names})


ERROR = obj(["description"], description=STRING, error=STRING)
UTILITIES_TEXT = utilities(STRING)
FILE_ENTRY = same_type(
    STRING,
    ["name", "type", "link_target", "user", "group", "permissions", "last_modified", "size"],
)
LISTING = utilities({"type": "array", "items": FILE_ENTRY})
STAT = utilities(
    same_type(
        {"type": "integer"},
        ["mode", "ino", "dev", "nlink", "uid", "gid", "size", "atime", "mtime", "ctime"],
    )
)
ID_NAME = obj(["id", "name"], id=STRING, name=STRING)
WHOAMI = utilities(
    {
        "oneOf": [
            STRING,
            obj(
                ["user", "group", "groups"],
                user=ID_NAME,
                group=ID_NAME,
                groups={"type": "array", "items": ID_NAME},
            ),
        ]
    }
)
TASK_CREATED = obj(
    ["success", "task_id", "task_url"], success=STRING, task_id=STRING, task_url=STRING
)
TASK_STATUSES = [status.value for status in TaskStatus]
TASK = obj(
    [
        "task_id",
        "hash_id",
        "user",
        "service",
        "status",
        "description",
        "data",
        "created_at",
        "updated_at",
        "last_modify",
        "task_url",
    ],
    task_id=STRING,
    hash_id=STRING,
    user=STRING,
    service=STRING,
    system=STRING,
    status={"type": "string", "enum": TASK_STATUSES},
    description=STRING,
    data={},
    created_at=STRING,
    updated_at=STRING,
    last_modify=STRING,
    task_url=STRING,
)
ONE_TASK = obj(["task"], task=TASK)
TASKS = obj(["tasks"], tasks={"type": "object", "additionalProperties": TASK})
SERVICE = obj(
    ["service", "status", "status_code", "description"],
    service=STRING,
    status={"type": "string", "enum": ["available", "unavailable"]},
    status_code={"type": "integer", "enum": [200, 400]},
    description=STRING,
)
SERVICES = obj(["description", "out"], description=STRING, out={"type": "array", "items": SERVICE})
SYSTEM = obj(
    ["system", "status", "description"],
    system=STRING,
    status={"type": "string", "enum": ["available", "unavailable"]},
    description=STRING,
)
SYSTEMS = obj(["description", "out"], description=STRING, out={"type": "array", "items": SYSTEM})
ONE_SYSTEM = obj(["description", "out"], description=STRING, out=SYSTEM)
FILESYSTEM = obj(
    ["name", "path", "description", "status", "status_code"],
    name=STRING,
    path=STRING,
    description=STRING,
    status={"type": "string", "enum": ["available", "down"]},
    status_code={"type": "integer", "enum": [200, 400]},
)
FILESYSTEM_LIST: Schema = {"type": "array", "items": FILESYSTEM}
FILESYSTEMS = obj(
    ["description", "out"],
    description=STRING,
    out={"type": "object", "additionalProperties": FILESYSTEM_LIST},
)
FILESYSTEMS_OF_SYSTEM = obj(["description", "out"], description=STRING, out=FILESYSTEM_LIST)
PARAMETER = obj(["name", "value", "unit"], name=STRING, value={}, unit=STRING, description=STRING)
PARAMETERS = obj(
    ["description", "out"],
    description=STRING,
    out={"type": "object", "additionalProperties": {"type": "array", "items": PARAMETER}},
)
BINARY: Schema = {"type": "string", "format": "binary"}
# Reservations: the lines of `rsvmgmt -l` (scontrol's Key=value), keys lowercased.
RESERVATION_KEYS = (
    "reservationname",
    "starttime",
    "endtime",
    "duration",
    "nodes",
    "nodecnt",
    "corecnt",
    "features",
    "partitionname",
    "flags",
    "users",
    "accounts",
    "licenses",
    "state",
    "burstbuffer",
    "watts",
)
RESERVATION: Schema = {
    "type": "object",
    "properties": {key: dict(STRING) for key in RESERVATION_KEYS},
    "additionalProperties": STRING,
}
RESERVATIONS = obj(["success"], success={"type": "array", "items": RESERVATION})
RESERVATION_CHANGED = obj(["success"], success=STRING)
