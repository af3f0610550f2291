"""How a v2 request is served: the token checked, the system in the path
resolved (404 when unknown), parameters and JSON bodies validated (422 with
the error model's `validation` type), commands run as the user over the
pool, and every refusal answered in the error model
`{"errorType", "message", "user", "data"}`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from flask import Blueprint, Response, current_app, g, jsonify, request
from pydantic import BaseModel, ValidationError

from firecrest_testbuild.common.sshexec import CommandTimeout, LoginRefused, Output, Unreachable
from firecrest_testbuild.stack import errors
from firecrest_testbuild.stack.auth import TokenVerifier
from firecrest_testbuild.stack.commands import REFUSED_BY_WRAPPER, TIMED_OUT, failure
from firecrest_testbuild.stack.config import System
from firecrest_testbuild.stack.errors import ApiError
from firecrest_testbuild.stack.staging import Staging
from firecrest_testbuild.stack.v2.config import V2Config
from firecrest_testbuild.stack.v2.pool import ConnectionPool, CredentialsUnavailable, PoolFull
from firecrest_testbuild.stack.v2.slurmrest import SlurmRest

if TYPE_CHECKING:
    from firecrest_testbuild.stack.v2.health import Health

EXTENSION = "stack-v2"
M = TypeVar("M", bound=BaseModel)

# What a v1 failure header means in v2, which answers with status codes
# (upstream's command error handling: missing 404, refused 403).
STATUS_OF_HEADER = {errors.INVALID_PATH: 404, errors.PERMISSION_DENIED: 403}


@dataclass
class V2Context:
    config: V2Config
    verifier: TokenVerifier
    pool: ConnectionPool
    staging: Staging | None
    health: Health


def v2_context() -> V2Context:
    context: V2Context = current_app.extensions[EXTENSION]
    return context


class ValidationFailed(ApiError):
    """A request that does not fit the API description: 422, errorType `validation`."""

    def __init__(self, message: str, problems: list[dict[str, Any]] | None = None) -> None:
        super().__init__(422, message)
        self.problems = problems or []


def error_body(error: ApiError) -> dict[str, Any]:
    """The description's ApiResponseError for `error`."""
    kind = "validation" if isinstance(error, ValidationFailed) else "error"
    data = {"errors": error.problems} if isinstance(error, ValidationFailed) else None
    return {"errorType": kind, "message": error.error, "user": g.get("user"), "data": data}


@dataclass
class Caller:
    """The user an authenticated request speaks for, and their token."""

    user: str
    token: str

    def on(self, system: System) -> Call:
        return Call(self.user, self.token, system)


@dataclass
class Call(Caller):
    """One authenticated request on a system."""

    system: System

    def slurmrest(self) -> SlurmRest | None:
        """slurmrestd, when the system's scheduler is reached that way (else SSH)."""
        context = v2_context()
        scheduler = context.config.scheduler(self.system)
        if scheduler.connection_mode == "ssh" or scheduler.api_url is None:
            return None
        return SlurmRest(scheduler.api_url, scheduler.api_version, context.config.scheduler_timeout)

    def scheduler_over_ssh(self, what: str) -> None:
        """For what slurmrestd cannot do: refused in the rest mode (no SSH for the
        scheduler), done over SSH in the others."""
        if v2_context().config.scheduler(self.system).connection_mode == "rest":
            raise ApiError(400, f"{what} is not offered in the rest connection mode")

    def run(self, command: str, stdin: bytes = b"", timeout: float | None = None) -> Output:
        """`command` as the user; SSH trouble becomes the client's error."""
        context = v2_context()
        limit = timeout or context.config.ssh.command_timeout + 10
        try:
            output = context.pool.run(self.user, self.token, self.system, command, stdin, limit)
        except (CredentialsUnavailable, LoginRefused) as error:
            raise ApiError(
                403, f"{self.user} cannot log in to {self.system.name}: {error}"
            ) from error
        except PoolFull as error:
            raise ApiError(503, str(error)) from error
        except Unreachable as error:
            raise ApiError(503, f"{self.system.name} is not reachable: {error}") from error
        except CommandTimeout as error:
            raise ApiError(408, f"The command has not finished in time: {error}") from error
        if output.exit_status == REFUSED_BY_WRAPPER:
            raise ApiError(403, f"The system refused the command: {output.stderr.strip()}")
        return output

    def check(self, command: str, path: str, stdin: bytes = b"", timed: bool = True) -> Output:
        """`command` under `timeout` (unless it sets its own: `timed`), which must
        succeed; a failure names `path`."""
        limit = v2_context().config.ssh.command_timeout
        output = self.run(f"timeout {limit} {command}" if timed else command, stdin)
        if output.exit_status == TIMED_OUT:
            raise ApiError(408, f"The command has not finished within {limit} s")
        if output.exit_status != 0:
            raise command_failure(output, path)
        return output


def command_failure(output: Output, path: str) -> ApiError:
    """A failed command as upstream answers it: exit status and message, status by cause."""
    reading = failure(output, path)
    status = STATUS_OF_HEADER.get(next(iter(reading.headers), ""), 400)
    message = f"Remote process failed with exit status:{output.exit_status}"
    if reading.detail:
        message += f" and error message:{reading.detail}"
    return ApiError(status, message)


Handler = Callable[..., Any]


def route(
    blueprint: Blueprint, method: str, path: str, status: int = 200, public: bool = False
) -> Callable:
    """Register a handler of `path`.

    The handler gets a `Call` when the path names a system (`{system_name}`),
    else a `Caller`, or nothing when `public` (no token needed). It returns
    the body (a JSON value; None: no body) or a Response.
    """
    flask_path = re.sub(r"\{(\w+)\}", r"<\1>", path)

    def decorate(handler: Handler) -> Handler:
        def view(**values: str) -> Any:
            if public:
                result = handler()
            else:
                caller = authenticate()
                if "system_name" in values:
                    system = system_named(values.pop("system_name"))
                    result = handler(caller.on(system), **values)
                else:
                    result = handler(caller, **values)
            if isinstance(result, Response):
                return result
            if result is None:
                return Response(status=status)
            return jsonify(result), status

        view.__name__ = f"{method.lower()}_{handler.__name__}"
        blueprint.add_url_rule(flask_path, view_func=view, methods=[method], strict_slashes=False)
        return handler

    return decorate


def authenticate() -> Caller:
    header = request.headers.get("Authorization")
    user = v2_context().verifier.user_of(header)
    g.user = user
    return Caller(user, (header or "").partition(" ")[2].strip())


def system_named(name: str) -> System:
    system = v2_context().config.system(name)
    if system is None:
        raise ApiError(404, "System not found")
    return system


def body(model: type[M]) -> M:
    """The JSON body as `model`; 422 when it is not JSON or does not fit."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationFailed("The request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ValidationFailed(
            "Request validation error", [_problem(item) for item in error.errors()]
        ) from None


def _problem(item: Any) -> dict[str, Any]:
    return {"loc": ["body", *item["loc"]], "msg": item["msg"], "type": item["type"]}


def query(name: str, required: bool = False, default: str | None = None) -> str | None:
    value = request.args.get(name)
    if value is None:
        if required:
            raise ValidationFailed(f"Query parameter '{name}' is required")
        return default
    if "\x00" in value:
        raise ValidationFailed(f"Query parameter '{name}' holds a NUL character")
    return value


def required_query(name: str) -> str:
    value = query(name, required=True)
    assert value is not None
    return value


TRUE = {"true", "1", "yes", "on", "t", "y"}
FALSE = {"false", "0", "no", "off", "f", "n"}


def query_bool(name: str, default: bool = False) -> bool:
    value = query(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered not in TRUE | FALSE:
        raise ValidationFailed(f"Query parameter '{name}' must be a boolean, got {value!r}")
    return lowered in TRUE


def query_int(name: str, default: int | None = None) -> int | None:
    value = query(name)
    if value is None:
        return default
    if not re.fullmatch(r"\s*-?\d{1,15}\s*", value):
        raise ValidationFailed(f"Query parameter '{name}' must be an integer, got {value!r}")
    return int(value)
