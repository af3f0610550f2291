"""Reservations: Slurm reservations a user makes, changes and removes.

As in upstream FirecREST v1, the work is done on the system by the site's
tool `rsvmgmt` (the testbuild's is on the login node: images/cluster/,
/usr/local/bin/rsvmgmt), run as the caller: `rsvmgmt -l`, `-a ACCOUNT NODES
TYPE START END NAME`, `-u NAME NODES TYPE START END`, `-d NAME`. The tool
enforces the site's policy; this service checks the form first, with
upstream's rules and messages, and answers at once (no tasks).

Errors have upstream's shape for this service: {"error": "Error creating
reservation", "description": <why>}, where the other services put the
endpoint's failure in "description".
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from firecrest_testbuild.common.sshexec import Output
from firecrest_testbuild.stack import errors, schemas
from firecrest_testbuild.stack.api import Endpoint, Param
from firecrest_testbuild.stack.commands import quote
from firecrest_testbuild.stack.config import System
from firecrest_testbuild.stack.context import stack_context
from firecrest_testbuild.stack.errors import ApiError
from firecrest_testbuild.stack.services import Service

blueprint = Blueprint("reservations", __name__, url_prefix="/reservations")
SERVICE = Service(name="reservations", blueprint=blueprint)

TOOL = "rsvmgmt"
NAME = re.compile(r"[a-z_$][-a-z_$0-9]*")  # upstream's check_name, for names, accounts, types
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
PREFIXES = ("timeout:", "rsvmgmt:", "Error:")  # what upstream strips off the tool's messages

Handler = Callable[[str, System, dict[str, str]], Response | tuple[Any, ...]]


def _serve(endpoint: Endpoint, verb: str) -> Callable[[Handler], Handler]:
    """Register `handler` for `endpoint`: the caller's token, then the machine
    (upstream's answers for a missing or unknown one), then the handler.
    The declaration feeds /openapi.json; parameters are checked by the
    handler, in upstream's order and words."""
    SERVICE.endpoints.append(endpoint)
    rule = endpoint.path.removeprefix("/reservations").replace("{reservation}", "<reservation>")
    failure = f"Error {verb} reservation"

    def decorate(handler: Handler) -> Handler:
        def view(**path_values: str) -> Any:
            try:
                user = stack_context().verifier.user_of(request.headers.get("Authorization"))
                g.user = user
                return handler(user, _machine(), path_values)
            except ApiError as error:
                body = error.body or {"error": failure, "description": error.error}
                return jsonify(body), error.status, error.headers

        view.__name__ = handler.__name__
        blueprint.add_url_rule(
            rule, view_func=view, methods=[endpoint.method], strict_slashes=False
        )
        return handler

    return decorate


def _endpoint(
    method: str,
    path: str,
    summary: str,
    success: int,
    failure: str,
    *params: Param,
    response: schemas.Schema | None,
) -> Endpoint:
    return Endpoint(
        method,
        path,
        summary,
        success,
        failure,
        params,
        tag="Reservations",
        response=response,
        not_found=True,  # 404 with X-Permission-Denied, as upstream
    )


def _machine() -> System:
    name = request.headers.get("X-Machine-Name", "").strip()
    if not name:
        raise ApiError(400, "No machine name given")
    system = stack_context().config.system(name)
    if system is None:
        raise ApiError(400, "Machine does not exist", errors.MACHINE_DOES_NOT_EXIST)
    return system


# Upstream's checks of the form, with its messages ---------------------------


def _missing(name: str) -> ApiError:
    return ApiError(400, f"'{name}' form data input missing")


def _field(name: str) -> str:
    value = request.form.get(name)
    if value is None:
        raise _missing(name)
    return value


def _name(name: str, value: str) -> str:
    if not NAME.fullmatch(value):
        raise ApiError(400, f"'{name}' parameter format is not valid (value entered:'{value}')")
    return value


def _nodes() -> str:
    value = _field("numberOfNodes")
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise ApiError(
            400,
            "'numberOfNodes' parameter is not valid. It should be an integer > 0"
            f" (value entered:'{value}')",
        )
    return str(count)


def _time(name: str) -> datetime.datetime:
    value = _field(name)
    try:
        return datetime.datetime.strptime(value, TIME_FORMAT)
    except ValueError:
        raise ApiError(
            400,
            f"'{name}' parameter format is not valid. It should be YYYY-MM-DDTHH:MM:SS"
            f" (value entered:'{value}')",
        ) from None


def _window() -> tuple[str, str]:
    """starttime and endtime, checked (end after start, start in the future)
    and written as the tool expects them."""
    start, end = _time("starttime"), _time("endtime")
    start_text, end_text = request.form["starttime"], request.form["endtime"]
    if start >= end:
        raise ApiError(
            400,
            f"'endtime' occurs before 'starttime' (values entered: endtime='{end_text}'"
            f" <= starttime='{start_text}')",
        )
    if start <= datetime.datetime.now():
        # Upstream's words, "pass" included.
        raise ApiError(
            400, f"'starttime' is in the pass (values entered: starttime='{start_text}')"
        )
    return start.strftime(TIME_FORMAT), end.strftime(TIME_FORMAT)


def _selection() -> str:
    """NODES TYPE START END of the tool's command line."""
    nodes = _nodes()
    node_type = _name("nodeType", _field("nodeType"))
    start, end = _window()
    return quote(nodes, node_type, start, end)


# Running the tool ----------------------------------------------------------


def _run(user: str, system: System, arguments: str, listing: bool = False) -> str:
    """The tool's output; its refusals become upstream's answers."""
    context = stack_context()
    try:
        output = context.shell.run(
            user, system, f"{TOOL} {arguments}", context.config.limits.compute_timeout
        )
    except ApiError as error:
        if errors.PERMISSION_DENIED in error.headers:
            raise _denied() from error
        raise
    if output.exit_status != 0:
        raise _refusal(output, listing)
    return output.text


def _denied() -> ApiError:
    return ApiError(404, errors.PERMISSION_DENIED_TEXT, errors.PERMISSION_DENIED)


def _refusal(output: Output, listing: bool) -> ApiError:
    message = " ".join((output.stderr.strip() or output.text.strip()).split())
    if "Permission" in message or "SystemAdministrator" in message:
        return _denied()
    if not message:
        message = f"{TOOL} failed with exit status {output.exit_status}"
    if listing:  # upstream passes the listing's error on as it is
        return ApiError(400, message)
    return ApiError(400, cleaned(message), errors.ERROR)


def cleaned(message: str) -> str:
    """The tool's message without its "timeout:", "rsvmgmt:" and "Error:" prefixes."""
    for prefix in PREFIXES:
        if message.startswith(prefix):
            message = message[len(prefix) :].strip()
    return message


def parse_listing(text: str) -> list[dict[str, str]]:
    """The reservations `rsvmgmt -l` prints (scontrol's one-line records
    between dashed lines): each Key=value word as key.lower() -> value;
    words with no '=' or more than one (TRES=cpu=2) are left out, as
    upstream does."""
    found = []
    for line in text.splitlines():
        if not line.startswith("ReservationName="):
            continue
        words = [word.split("=") for word in line.split() if word.count("=") == 1]
        found.append({key.lower(): value for key, value in words})
    return found


# The endpoints ---------------------------------------------------------------

PATH = Param("reservation", "path", required=True, description="reservation name")
SELECTION = (
    Param("numberOfNodes", "form", required=True, description="number of nodes"),
    Param("nodeType", "form", required=True, description="type of node: a partition here"),
    Param("starttime", "form", required=True, description="YYYY-MM-DDTHH:MM:SS"),
    Param("endtime", "form", required=True, description="YYYY-MM-DDTHH:MM:SS"),
)


@_serve(
    _endpoint(
        "GET",
        "/reservations",
        "Returns all reservations",
        200,
        "Error listing reservations",
        response=schemas.RESERVATIONS,
    ),
    "listing",
)
def all_reservations(user: str, system: System, path: dict[str, str]) -> Response:
    try:
        text = _run(user, system, "-l", listing=True)
    except ApiError as error:
        # Upstream says "reservation" for a missing or unknown machine, and
        # "reservations" for what went wrong on the system.
        error.body = {"error": "Error listing reservations", "description": error.error}
        raise
    return jsonify({"success": parse_listing(text)})


@_serve(
    _endpoint(
        "POST",
        "/reservations",
        "Creates a new reservation",
        201,
        "Error creating reservation",
        Param("reservation", "form", required=True, description="name of the reservation"),
        Param("account", "form", required=True, description="Slurm account it is made for"),
        *SELECTION,
        response=schemas.RESERVATION_CHANGED,
    ),
    "creating",
)
def create(user: str, system: System, path: dict[str, str]) -> tuple[Response, int]:
    name = _name("reservation", _field("reservation"))
    account = _name("account", _field("account"))
    selection = _selection()
    out = _run(user, system, f"-a {quote(account)} {selection} {quote(name)}")
    return jsonify({"success": out.strip()}), 201


@_serve(
    _endpoint(
        "PUT",
        "/reservations/{reservation}",
        "Updates a reservation",
        200,
        "Error updating reservation",
        PATH,
        Param("account", "form", description="not used (clients send it)"),
        *SELECTION,
        response=schemas.RESERVATION_CHANGED,
    ),
    "updating",
)
def update(user: str, system: System, path: dict[str, str]) -> Response:
    name = _name("reservation", path["reservation"])
    selection = _selection()
    out = _run(user, system, f"-u {quote(name)} {selection}")
    return jsonify({"success": out.strip()})


@_serve(
    _endpoint(
        "DELETE",
        "/reservations/{reservation}",
        "Deletes a reservation",
        204,
        "Error deleting reservation",
        PATH,
        response=None,
    ),
    "deleting",
)
def delete(user: str, system: System, path: dict[str, str]) -> tuple[str, int]:
    name = _name("reservation", path["reservation"])
    _run(user, system, f"-d {quote(name)}")
    return "", 204
