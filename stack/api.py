"""Endpoints declared once: the declaration checks requests and documents them.

Each service module lists its endpoints with their parameters; `route`
turns a declaration and a handler into a Flask view that authenticates the
caller, resolves the system named by X-Machine-Name, parses and validates
every parameter (a bad one is a 400 naming it) and shapes errors the way
FirecREST v1 does. `openapi()` describes the same declarations.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from flask import Blueprint, Response, g, jsonify, request
from werkzeug.datastructures import FileStorage

from firecrest_testbuild.stack import errors
from firecrest_testbuild.stack.config import System
from firecrest_testbuild.stack.context import stack_context
from firecrest_testbuild.stack.errors import ApiError
from firecrest_testbuild.stack.schemas import ERROR, Schema

Location = Literal["query", "form", "path", "file"]
Kind = Literal["string", "boolean", "integer", "list"]

TRUE = {"true", "1", "yes", "on"}
FALSE = {"false", "0", "no", "off", ""}

# What FirecREST v1 refuses in user input (FORBIDDEN_INPUT_CHARS of its
# cscs_api_common.validate_input): < > | ; " ' & \ ( ), backtick and every
# control character. `$ * ? [ ] { } ! # ~`, space and non-ASCII pass.
FORBIDDEN_CHARS = re.compile(r"[<>|;\"'&\\()`\x00-\x1f]")


def has_forbidden_char(text: str) -> bool:
    return FORBIDDEN_CHARS.search(text) is not None


@dataclass(frozen=True)
class Param:
    name: str
    location: Location
    kind: Kind = "string"
    required: bool = False
    default: Any = None
    description: str = ""
    # As FirecREST v1's validate_input: a 400 "'<name>' has invalid char" for
    # a value holding one of FORBIDDEN_CHARS (paths above all: no file with
    # such a name is ever made), and "'<name>' is empty" for "" unless allowed.
    forbid_chars: bool = False
    allow_empty: bool = True


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # as in the API: /utilities/ls, /compute/jobs/{jobid}
    summary: str
    success: int
    failure: str  # the error body's description, e.g. "Error listing contents of path"
    params: tuple[Param, ...] = ()
    machine: bool = True  # needs X-Machine-Name
    tag: str = ""
    response: Schema | None = None  # the success body's schema; None: no body
    media: str = "application/json"
    not_found: bool = False  # answers 404 for an unknown thing it names
    forbidden: bool = False  # answers 403 for a thing of another user
    headers: tuple[str, ...] = ()  # required request headers besides X-Machine-Name


@dataclass
class Call:
    """One authenticated request, its parameters checked."""

    user: str
    system: System | None
    params: dict[str, Any]
    files: dict[str, FileStorage] = field(default_factory=dict)

    @property
    def machine(self) -> System:
        assert self.system is not None, "endpoint declared without machine"
        return self.system


Handler = Callable[[Call], Response | tuple[Any, int]]


def route(blueprint: Blueprint, endpoint: Endpoint, registry: list[Endpoint]) -> Callable:
    """Register `handler` for `endpoint` on `blueprint` (decorator)."""
    registry.append(endpoint)
    flask_path = re.sub(
        r"\{(\w+)\}", r"<\1>", endpoint.path.removeprefix(blueprint.url_prefix or "")
    )

    def decorate(handler: Handler) -> Handler:
        def view(**path_values: str):
            try:
                call = _prepare(endpoint, path_values)
                return handler(call)
            except ApiError as error:
                body = error.body or {"description": endpoint.failure, "error": error.error}
                return jsonify(body), error.status, error.headers

        view.__name__ = handler.__name__
        blueprint.add_url_rule(
            flask_path, view_func=view, methods=[endpoint.method], strict_slashes=False
        )
        return handler

    return decorate


def _prepare(endpoint: Endpoint, path_values: dict[str, str]) -> Call:
    user = stack_context().verifier.user_of(request.headers.get("Authorization"))
    g.user = user
    system = _system() if endpoint.machine else None
    for header in endpoint.headers:
        if not request.headers.get(header, "").strip():
            raise errors.bad_request(f"header '{header}' is required")
    params: dict[str, Any] = {}
    files: dict[str, FileStorage] = {}
    for param in endpoint.params:
        if param.location == "file":
            upload = request.files.get(param.name)
            if upload is None and param.required:
                raise errors.bad_request(f"'{param.name}' is required (a file in form data)")
            if upload is not None:
                files[param.name] = upload
            continue
        raw = _raw(param, path_values)
        if raw is None:
            if param.required:
                raise errors.bad_request(f"'{param.name}' is required ({param.location})")
            params[param.name] = param.default
        else:
            params[param.name] = _convert(param, raw)
    return Call(user=user, system=system, params=params, files=files)


def _system() -> System:
    name = request.headers.get("X-Machine-Name", "").strip()
    if not name:
        # FirecREST v1's answer: a plain 400, no header (the API is silent).
        raise errors.bad_request("No machine name given")
    system = stack_context().config.system(name)
    if system is None:
        raise errors.bad_request(f"Machine {name} does not exist", errors.MACHINE_DOES_NOT_EXIST)
    return system


def _raw(param: Param, path_values: dict[str, str]) -> str | list[str] | None:
    if param.location == "path":
        return path_values.get(param.name)
    source = request.args if param.location == "query" else request.form
    if param.kind == "list":
        values = source.getlist(param.name)
        return values or None
    return source.get(param.name)


def _screen(param: Param, raw: str) -> None:
    """FirecREST v1's validate_input, for the parameters declared with it."""
    if not param.allow_empty and raw == "":
        raise errors.bad_request(f"'{param.name}' is empty")
    if param.forbid_chars and has_forbidden_char(raw):
        raise errors.bad_request(f"'{param.name}' has invalid char")


def _convert(param: Param, raw: str | list[str]) -> Any:
    for value in raw if isinstance(raw, list) else [raw]:
        _screen(param, value)
    if param.kind == "list":
        assert isinstance(raw, list)
        return [item.strip() for value in raw for item in value.split(",") if item.strip()]
    assert isinstance(raw, str)
    if "\x00" in raw:
        raise errors.bad_request(f"'{param.name}' contains a NUL character")
    if param.kind == "boolean":
        lowered = raw.strip().lower()
        if lowered in TRUE or lowered in FALSE:
            return lowered in TRUE
        raise errors.bad_request(f"'{param.name}' must be true or false, got {raw!r}")
    if param.kind == "integer":
        if not re.fullmatch(r"\s*\d{1,9}\s*", raw):
            raise errors.bad_request(f"'{param.name}' must be a whole number, got {raw!r}")
        return int(raw)
    return raw


def file_name(upload: FileStorage, what: str) -> str:
    """The base name an uploaded file is stored under; a 400 when it has none."""
    name = posixpath.basename((upload.filename or "").replace("\\", "/"))
    if name in ("", ".", "..") or any(char < " " for char in name):
        raise errors.bad_request(f"The {what} has no usable file name")
    return name


def openapi(endpoints: list[Endpoint], version: str) -> dict[str, Any]:
    """An OpenAPI 3 document of what this stack serves, from the declarations."""
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        operation: dict[str, Any] = {
            "summary": endpoint.summary,
            "tags": [endpoint.tag],
            "parameters": _openapi_parameters(endpoint),
            "responses": _openapi_responses(endpoint),
        }
        body = _openapi_body(endpoint)
        if body:
            operation["requestBody"] = body
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.0.3",
        "info": {"title": "FirecREST testbuild service stack", "version": version},
        "servers": [{"url": "/"}],
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearerAuth": []}],
        "paths": paths,
    }


def _openapi_responses(endpoint: Endpoint) -> dict[str, Any]:
    error = {"application/json": {"schema": ERROR}}
    success: dict[str, Any] = {"description": "Success"}
    if endpoint.response is not None:
        success["content"] = {endpoint.media: {"schema": endpoint.response}}
    responses = {
        str(endpoint.success): success,
        "400": {"description": endpoint.failure, "content": error},
        "401": {
            "description": "Missing, malformed, forged or expired token",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        "503": {"description": "The identity provider cannot be reached", "content": error},
    }
    has_path_params = any(param.location == "path" for param in endpoint.params)
    if endpoint.not_found or has_path_params:  # e.g. a path parameter holding a '/'
        responses["404"] = {"description": endpoint.failure, "content": error}
    if endpoint.forbidden:
        responses["403"] = {"description": "Owned by another user", "content": error}
    if any(param.location == "file" for param in endpoint.params):
        responses["413"] = {"description": "Request body too large", "content": error}
    return responses


def _openapi_parameters(endpoint: Endpoint) -> list[dict[str, Any]]:
    found = []
    if endpoint.machine:
        found.append(
            {
                "in": "header",
                "name": "X-Machine-Name",
                "required": True,
                "schema": {"type": "string"},
            }
        )
    for header in endpoint.headers:
        found.append(
            {"in": "header", "name": header, "required": True, "schema": {"type": "string"}}
        )
    for param in endpoint.params:
        if param.location in ("query", "path"):
            found.append(
                {
                    "in": param.location,
                    "name": param.name,
                    "required": param.required or param.location == "path",
                    "description": param.description,
                    "schema": _schema(param),
                }
            )
    return found


def _openapi_body(endpoint: Endpoint) -> dict[str, Any] | None:
    fields = [p for p in endpoint.params if p.location in ("form", "file")]
    if not fields:
        return None
    properties = {
        p.name: {"type": "string", "format": "binary"} if p.location == "file" else _schema(p)
        for p in fields
    }
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    required = [p.name for p in fields if p.required]
    if required:
        schema["required"] = required
    return {"content": {"multipart/form-data": {"schema": schema}}}


def _schema(param: Param) -> dict[str, Any]:
    if param.kind == "list":
        return {"type": "array", "items": {"type": "string"}}
    schema: dict[str, Any] = {"type": param.kind}
    if param.default is not None:
        schema["default"] = param.default
    return schema
