"""The reservations service in the application, on fakes: the system runs
the login node's own rsvmgmt logic (tests/unit/test_rsvmgmt.py's helper on a
fake Slurm), so the stack's command lines are read by the real parser. It
checks upstream's answers: codes, body keys, the form's checks and their
words, the tool's refusals, and the status service reporting it."""

from __future__ import annotations

import datetime
import io
import shlex
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from flask.testing import FlaskClient

from firecrest_testbuild.common.sshexec import Output
from firecrest_testbuild.stack import errors
from firecrest_testbuild.stack.app import create_app
from firecrest_testbuild.stack.config import System
from firecrest_testbuild.stack.errors import ApiError
from firecrest_testbuild.stack.services.reservations import cleaned, parse_listing
from tests.unit.test_rsvmgmt import FakeSlurm, rsv
from tests.unit.test_stack_fakes import FakeRedis, config

HEADERS = {"Authorization": "Bearer token", "X-Machine-Name": "cluster"}


def at(hours: float) -> str:
    moment = datetime.datetime.now().replace(microsecond=0) + datetime.timedelta(hours=hours)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


class ToolShell:
    """A system with rsvmgmt on it: the helper's logic on a fake Slurm, run
    as the command's user. `answer` replaces the tool's output when set (an
    Output, or an ApiError the shell raises)."""

    def __init__(self) -> None:
        self.slurm = FakeSlurm()
        self.calls: list[tuple[str, str, int]] = []
        self.answer: Output | ApiError | None = None

    def run(
        self,
        user: str,
        system: System,
        command: str,
        time_limit: int,
        stdin: bytes = b"",
        trace: str | None = None,
    ) -> Output:
        self.calls.append((user, command, time_limit))
        if isinstance(self.answer, ApiError):
            raise self.answer
        if self.answer is not None:
            return self.answer
        words = shlex.split(command)
        assert words[0] == "rsvmgmt", command
        out, err = io.StringIO(), io.StringIO()
        now = datetime.datetime.now()
        status = rsv.main(words[1:], user, rsv.Slurm(self.slurm), now, out, err)
        return Output(status, out.getvalue().encode(), err.getvalue())


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[SimpleNamespace]:
    key = tmp_path / "ca"
    key.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    stack_config = config(ssh={"caPrivateKey": str(key)}, services=["reservations", "status"])
    app = create_app(stack_config, FakeRedis())  # type: ignore[arg-type]
    context = app.extensions["stack"]
    caller = SimpleNamespace(name="test1")
    context.verifier = SimpleNamespace(user_of=lambda header: _user(header, caller.name))
    shell = ToolShell()
    context.shell = shell
    yield SimpleNamespace(client=app.test_client(), shell=shell, caller=caller)


def _user(header: str | None, name: str) -> str:
    if not header:
        raise errors.Unauthorized({"description": "No Authorization Header given"})
    return name


def form(**changes: str | None) -> dict[str, str]:
    fields: dict[str, str | None] = {
        "reservation": "r1",
        "account": "testbuild",
        "numberOfNodes": "1",
        "nodeType": "part01",
        "starttime": at(1),
        "endtime": at(2),
        **changes,
    }
    return {k: v for k, v in fields.items() if v is not None}


def create(client: FlaskClient, **changes: str | None) -> Any:
    return client.post("/reservations", data=form(**changes), headers=HEADERS)


def test_the_four_operations_are_served_and_described(stack: SimpleNamespace):
    rules = {
        (rule.rule, method)
        for rule in stack.client.application.url_map.iter_rules()
        if rule.rule.startswith("/reservations")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert rules == {
        ("/reservations", "GET"),
        ("/reservations", "POST"),
        ("/reservations/<reservation>", "PUT"),
        ("/reservations/<reservation>", "DELETE"),
    }
    paths = stack.client.get("/openapi.json").get_json()["paths"]
    assert set(paths["/reservations"]) == {"get", "post"}
    assert set(paths["/reservations/{reservation}"]) == {"put", "delete"}
    post = paths["/reservations"]["post"]
    assert set(post["responses"]) >= {"201", "400", "404"}
    schema = post["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema["required"] == [
        "reservation",
        "account",
        "numberOfNodes",
        "nodeType",
        "starttime",
        "endtime",
    ]
    assert "content" not in paths["/reservations/{reservation}"]["delete"]["responses"]["204"]
    headers = [p["name"] for p in paths["/reservations"]["get"]["parameters"]]
    assert headers == ["X-Machine-Name"]


def test_create_list_update_delete_as_the_clients_expect(stack: SimpleNamespace):
    client = stack.client
    start, end = at(1), at(2)
    made = create(client, starttime=start, endtime=end)
    assert (made.status_code, made.get_json()) == (201, {"success": "Reservation created: r1"})
    user, command, limit = stack.shell.calls[-1]
    assert user == "test1" and limit == 30  # limits.computeTimeout, upstream's 30 s
    assert command == f"rsvmgmt -a testbuild 1 part01 {start} {end} r1"
    assert "Users=test1" in stack.shell.slurm.changes()[-1]

    listed = client.get("/reservations", headers=HEADERS)
    assert listed.status_code == 200
    [one] = listed.get_json()["success"]
    assert one["reservationname"] == "r1" and one["users"] == "test1"
    assert one["accounts"] == "testbuild" and one["partitionname"] == "part01"
    assert "tres" not in one  # TRES=cpu=2 has two '=': left out, as upstream
    assert stack.shell.calls[-1][1] == "rsvmgmt -l"

    later = {"numberOfNodes": "2", "nodeType": "part02", "starttime": at(3), "endtime": at(4)}
    changed = client.put("/reservations/r1", data={**later, "account": "x"}, headers=HEADERS)
    assert (changed.status_code, changed.get_json()) == (200, {"success": "Reservation r1 updated"})
    assert stack.shell.calls[-1][1] == (
        f"rsvmgmt -u r1 2 part02 {later['starttime']} {later['endtime']}"
    )
    removed = client.delete("/reservations/r1", headers=HEADERS)
    assert (removed.status_code, removed.data) == (204, b"")
    assert stack.shell.calls[-1][1] == "rsvmgmt -d r1"
    assert client.get("/reservations", headers=HEADERS).get_json() == {"success": []}


def test_dates_and_counts_reach_the_tool_in_its_format(stack: SimpleNamespace):
    start = datetime.datetime.now() + datetime.timedelta(days=1)
    loose = f"{start.year}-{start.month}-{start.day}T1:2:3"  # strptime's reading, as upstream
    made = create(stack.client, starttime=loose, endtime=at(30), numberOfNodes="+2")
    assert made.status_code == 201, made.get_json()
    words = stack.shell.calls[-1][1].split()
    assert words[3] == "2" and words[5] == f"{start:%Y-%m-%d}T01:02:03"


@pytest.mark.parametrize(
    ("changes", "description"),
    [
        ({"reservation": None}, "'reservation' form data input missing"),
        (
            {"reservation": "Upper"},
            "'reservation' parameter format is not valid (value entered:'Upper')",
        ),
        (
            {"reservation": "r1; id"},
            "'reservation' parameter format is not valid (value entered:'r1; id')",
        ),
        ({"reservation": ""}, "'reservation' parameter format is not valid (value entered:'')"),
        ({"account": None}, "'account' form data input missing"),
        (
            {"account": "test build"},
            "'account' parameter format is not valid (value entered:'test build')",
        ),
        ({"numberOfNodes": None}, "'numberOfNodes' form data input missing"),
        (
            {"numberOfNodes": "0"},
            "'numberOfNodes' parameter is not valid. It should be an integer > 0"
            " (value entered:'0')",
        ),
        (
            {"numberOfNodes": "abc"},
            "'numberOfNodes' parameter is not valid. It should be an integer > 0"
            " (value entered:'abc')",
        ),
        ({"nodeType": None}, "'nodeType' form data input missing"),
        ({"nodeType": "KNL"}, "'nodeType' parameter format is not valid (value entered:'KNL')"),
        ({"starttime": None}, "'starttime' form data input missing"),
        (
            {"starttime": "2030-01-01 10:00:00"},
            "'starttime' parameter format is not valid. It should be YYYY-MM-DDTHH:MM:SS"
            " (value entered:'2030-01-01 10:00:00')",
        ),
        ({"endtime": None}, "'endtime' form data input missing"),
        (
            {"endtime": "tomorrow"},
            "'endtime' parameter format is not valid. It should be YYYY-MM-DDTHH:MM:SS"
            " (value entered:'tomorrow')",
        ),
    ],
)
def test_the_form_is_checked_with_upstreams_words(
    stack: SimpleNamespace, changes: dict[str, str | None], description: str
):
    answer = create(stack.client, **changes)
    assert answer.status_code == 400
    assert answer.get_json() == {"error": "Error creating reservation", "description": description}
    assert stack.shell.calls == []


def test_the_window_is_checked_before_the_tool_runs(stack: SimpleNamespace):
    start, end = at(2), at(1)
    backwards = create(stack.client, starttime=start, endtime=end)
    assert backwards.get_json()["description"] == (
        f"'endtime' occurs before 'starttime' (values entered: endtime='{end}'"
        f" <= starttime='{start}')"
    )
    past, soon = at(-1), at(1)
    late = create(stack.client, starttime=past, endtime=soon)
    assert late.status_code == 400
    assert late.get_json()["description"] == (
        f"'starttime' is in the pass (values entered: starttime='{past}')"
    )
    assert stack.shell.calls == []


def test_an_update_is_checked_like_a_creation(stack: SimpleNamespace):
    client = stack.client
    fields = {"numberOfNodes": "1", "nodeType": "part01", "starttime": at(1), "endtime": at(2)}
    bad_name = client.put("/reservations/Bad", data=fields, headers=HEADERS)
    assert bad_name.get_json() == {
        "error": "Error updating reservation",
        "description": "'reservation' parameter format is not valid (value entered:'Bad')",
    }
    no_nodes = client.put(
        "/reservations/r1", data={**fields, "numberOfNodes": "-3"}, headers=HEADERS
    )
    assert no_nodes.status_code == 400 and "integer > 0" in no_nodes.get_json()["description"]
    bad_delete = client.delete("/reservations/a$b%20c", headers=HEADERS)
    assert bad_delete.get_json()["error"] == "Error deleting reservation"
    assert stack.shell.calls == []
    # No name: the method is not allowed on /reservations (upstream: 405 too).
    assert client.put("/reservations/", data=fields, headers=HEADERS).status_code == 405
    assert client.delete("/reservations", headers=HEADERS).status_code == 405


def test_the_machine_header_as_upstream(stack: SimpleNamespace):
    client = stack.client
    token = {"Authorization": "Bearer token"}
    missing = client.post("/reservations", data=form(), headers=token)
    assert missing.status_code == 400
    assert missing.get_json() == {
        "error": "Error creating reservation",
        "description": "No machine name given",
    }
    assert "X-Machine-Does-Not-Exist" not in missing.headers
    unknown = client.get("/reservations", headers={**token, "X-Machine-Name": "nowhere"})
    assert unknown.status_code == 400
    assert unknown.headers["X-Machine-Does-Not-Exist"] == "Machine does not exist"
    assert unknown.get_json()["error"] == "Error listing reservation"
    assert client.get("/reservations").status_code == 401
    assert stack.shell.calls == []


def test_the_tools_refusals_become_400_with_its_reason(stack: SimpleNamespace):
    client = stack.client
    assert create(client).status_code == 201
    stack.caller.name = "test2"
    for answer, error in (
        (client.delete("/reservations/r1", headers=HEADERS), "Error deleting reservation"),
        (
            client.put(
                "/reservations/r1",
                data={"numberOfNodes": "1", "nodeType": "part01", "starttime": at(1)}
                | {"endtime": at(2)},
                headers=HEADERS,
            ),
            "Error updating reservation",
        ),
    ):
        assert answer.status_code == 400
        assert answer.get_json() == {
            "error": error,
            "description": "You are not an owner of the r1 reservation",
        }
        assert answer.headers["X-Error"] == "You are not an owner of the r1 reservation"
    assert client.get("/reservations", headers=HEADERS).get_json() == {"success": []}
    foreign = create(client, reservation="r2", account="root")
    assert foreign.status_code == 400
    assert foreign.get_json()["description"].startswith("You are not a member of the root account")
    assert list(stack.shell.slurm.reservations) == ["r1"]


def test_failures_on_the_system(stack: SimpleNamespace):
    client = stack.client
    stack.shell.answer = Output(1, b"", "rsvmgmt: Error: Permission denied (publickey)\n")
    denied = create(client)
    assert denied.status_code == 404
    assert denied.headers["X-Permission-Denied"] == errors.PERMISSION_DENIED_TEXT
    assert denied.get_json()["error"] == "Error creating reservation"
    stack.shell.answer = ApiError(400, "refused", errors.PERMISSION_DENIED)  # a refused login
    assert client.delete("/reservations/r1", headers=HEADERS).status_code == 404
    stack.shell.answer = ApiError(400, "Command has finished with timeout signal", errors.TIMEOUT)
    slow = client.get("/reservations", headers=HEADERS)
    assert slow.status_code == 400 and "X-Timeout" in slow.headers
    assert slow.get_json()["error"] == "Error listing reservations"
    stack.shell.answer = Output(1, b"", "rsvmgmt: Error: Error creating the reservation: busy\n")
    listing = client.get("/reservations", headers=HEADERS)
    assert listing.get_json() == {
        "error": "Error listing reservations",
        "description": "rsvmgmt: Error: Error creating the reservation: busy",  # as it is
    }
    busy = create(client)
    assert busy.get_json()["description"] == "Error creating the reservation: busy"
    stack.shell.answer = Output(127, b"", "bash: line 1: rsvmgmt: command not found\n")
    assert "command not found" in create(client).get_json()["description"]


def test_status_reports_the_service(stack: SimpleNamespace):
    one = stack.client.get("/status/services/reservations", headers=HEADERS).get_json()
    assert one["service"] == "reservations" and one["status"] == "available"
    listed = stack.client.get("/status/services", headers=HEADERS).get_json()["out"]
    assert "reservations" in [service["service"] for service in listed]


def test_cleaned_and_parse_listing():
    assert cleaned("timeout: rsvmgmt: Error: nope") == "nope"
    assert cleaned("rsvmgmt: Reservation x removed") == "Reservation x removed"
    assert cleaned("Error creating the reservation: x") == "Error creating the reservation: x"
    text = (
        "rsvmgmt: Current Reservations\n-----\n"
        "ReservationName=a StartTime=2030-01-01T00:00:00 TRES=cpu=2 Flags= Users=test1\n"
        "-----\n"
    )
    assert parse_listing(text) == [
        {"reservationname": "a", "starttime": "2030-01-01T00:00:00", "flags": "", "users": "test1"}
    ]
    assert parse_listing("rsvmgmt: Current Reservations\n-----\n-----\n") == []
