"""Reservations through the API with real tokens, checked against Slurm on
the cluster; and the login node's rsvmgmt, run directly over SSH, held to its
policy. In the split layout (the reservations service in its container
behind the gateway), shared with the split layout's tests."""

from __future__ import annotations

import datetime
import uuid

import pytest
from firecrest.v1 import Firecrest

from firecrest_testbuild.harness.environment import Environment
from firecrest_testbuild.harness.ssh import LoginNode
from tests.integration.api import Api
from tests.integration.conftest import login_node

pytestmark = pytest.mark.integration

PARTITION = "part01"
NOT_OWNER = "You are not an owner of the {} reservation"


@pytest.fixture(scope="module")
def env(split_environment: Environment) -> Environment:
    return split_environment


@pytest.fixture(scope="module")
def api(env: Environment) -> Api:
    return Api.for_user(env, "test1")


@pytest.fixture(scope="module")
def api2(env: Environment) -> Api:
    return Api.for_user(env, "test2")


@pytest.fixture(scope="module")
def login(env: Environment) -> LoginNode:
    return login_node(env)


def at(hours: float) -> str:
    """A time as the API takes it, in the containers' clock (UTC)."""
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None, microsecond=0)
    return (now + datetime.timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def slurm_reservation(login: LoginNode, name: str) -> dict[str, str] | None:
    """The reservation as Slurm shows it (any user may look), or None."""
    shown = login.run("test2", f"scontrol -o show reservation {name}")
    if shown.exit_status != 0:
        assert "not found" in (shown.stderr + shown.stdout).lower(), shown
        return None
    return dict(word.split("=", 1) for word in shown.stdout.split() if "=" in word)


def all_slurm_reservations(login: LoginNode) -> str:
    shown = login.run("test1", "scontrol -o show reservation")
    assert shown.exit_status == 0, shown
    return shown.stdout


def form(name: str, **changes: str) -> dict[str, str]:
    return {
        "reservation": name,
        "account": "testbuild",
        "numberOfNodes": "1",
        "nodeType": PARTITION,
        "starttime": at(1),
        "endtime": at(2),
        **changes,
    }


def test_the_service_runs_in_its_container_and_status_reports_it(env: Environment, api: Api):
    assert "stack-reservations" in {row["node"] for row in env.status()}
    one = api.request("GET", "/status/services/reservations", machine=False).json()
    assert one["status"] == "available", one
    assert "stack-reservations:8000" in one["description"]


def test_create_list_update_delete_seen_in_slurm(api: Api, api2: Api, login: LoginNode):
    name = unique("rsv")
    start, end = at(1), at(2)
    made = api.post("/reservations", **form(name, starttime=start, endtime=end))
    assert (made.status_code, made.json()) == (201, {"success": f"Reservation created: {name}"})
    slurm = slurm_reservation(login, name)
    assert slurm is not None
    assert (slurm["Users"], slurm["Accounts"], slurm["NodeCnt"]) == ("test1", "testbuild", "1")
    assert (slurm["StartTime"], slurm["EndTime"]) == (start, end)
    assert slurm["PartitionName"] == PARTITION

    listed = api.get("/reservations")
    assert listed.status_code == 200
    mine = {r["reservationname"]: r for r in listed.json()["success"]}
    assert mine[name]["users"] == "test1" and mine[name]["starttime"] == start
    assert name not in {r["reservationname"] for r in api2.get("/reservations").json()["success"]}

    later = {"numberOfNodes": "1", "nodeType": PARTITION, "starttime": at(3), "endtime": at(5)}
    changed = api.put(f"/reservations/{name}", account="testbuild", **later)
    assert (changed.status_code, changed.json()) == (
        200,
        {"success": f"Reservation {name} updated"},
    )
    slurm = slurm_reservation(login, name)
    assert slurm is not None
    assert (slurm["StartTime"], slurm["EndTime"]) == (later["starttime"], later["endtime"])

    # test2 can neither change nor remove it, and Slurm keeps it as it was.
    for answer, error in (
        (api2.put(f"/reservations/{name}", **later), "Error updating reservation"),
        (api2.delete(f"/reservations/{name}"), "Error deleting reservation"),
    ):
        assert answer.status_code == 400
        assert answer.json() == {"error": error, "description": NOT_OWNER.format(name)}
    assert slurm_reservation(login, name) == slurm

    removed = api.delete(f"/reservations/{name}")
    assert (removed.status_code, removed.content) == (204, b"")
    assert slurm_reservation(login, name) is None


def test_pyfirecrest_round_trip(api: Api, login: LoginNode):
    class Tokens:
        def get_access_token(self) -> str:
            return api.token

    client = Firecrest(firecrest_url=api.url, authorization=Tokens())
    name = unique("pyf")
    client.create_reservation(api.machine, name, "testbuild", "1", PARTITION, at(1), at(2))
    assert name in [r["reservationname"] for r in client.all_reservations(api.machine)]
    start, end = at(2), at(3)
    client.update_reservation(api.machine, name, "testbuild", "1", PARTITION, start, end)
    slurm = slurm_reservation(login, name)
    assert slurm is not None and (slurm["StartTime"], slurm["EndTime"]) == (start, end)
    client.delete_reservation(api.machine, name)
    assert slurm_reservation(login, name) is None


def test_bad_requests_are_refused_with_upstreams_answers_and_slurm_is_unchanged(
    api: Api, login: LoginNode
):
    before = all_slurm_reservations(login)
    past, soon = at(-1), at(1)
    for changes, description in (
        (
            {"reservation": "Bad_Name"},
            "'reservation' parameter format is not valid (value entered:'Bad_Name')",
        ),
        (
            {"reservation": "x'; scontrol delete res=y"},
            "'reservation' parameter format is not valid"
            " (value entered:'x'; scontrol delete res=y')",
        ),
        (
            {"starttime": "2030-01-01 00:00"},
            "'starttime' parameter format is not valid. It should be YYYY-MM-DDTHH:MM:SS"
            " (value entered:'2030-01-01 00:00')",
        ),
        (
            {"starttime": past, "endtime": soon},
            f"'starttime' is in the pass (values entered: starttime='{past}')",
        ),
        (
            {"starttime": soon, "endtime": past},
            f"'endtime' occurs before 'starttime' (values entered: endtime='{past}'"
            f" <= starttime='{soon}')",
        ),
        (
            {"numberOfNodes": "0"},
            "'numberOfNodes' parameter is not valid. It should be an integer > 0"
            " (value entered:'0')",
        ),
        # Past the form, the tool's policy: an account that is not test1's,
        # more nodes than the partition has, a type the cluster lacks.
        ({"account": "root"}, "You are not a member of the root account (yours: testbuild)"),
        ({"numberOfNodes": "5"}, f"NodeCnt greater than 1 available {PARTITION} nodes"),
        ({"nodeType": "knl"}, "node type 'knl' is not a partition or node feature"),
        ({"endtime": at(1 + 24 * 8)}, "a reservation may last at most 7 days"),
    ):
        answer = api.post("/reservations", **form(unique("bad"), **changes))
        assert answer.status_code == 400, (changes, answer.text)
        body = answer.json()
        assert body["error"] == "Error creating reservation"
        assert body["description"].startswith(description), (changes, body)
    missing = api.request("POST", "/reservations", machine=False, data=form("r"))
    assert missing.json() == {
        "error": "Error creating reservation",
        "description": "No machine name given",
    }
    unknown = api.request(
        "GET", "/reservations", machine=False, headers={"X-Machine-Name": "nowhere"}
    )
    assert unknown.status_code == 400 and "X-Machine-Does-Not-Exist" in unknown.headers
    nosuch = api.delete("/reservations/nosuch")
    assert nosuch.json()["description"] == "nosuch doesn't seem to be a valid reservation"
    assert all_slurm_reservations(login) == before


def test_rsvmgmt_over_ssh_cannot_escape_the_policy(login: LoginNode):
    start, end = at(1), at(2)
    theirs = unique("theirs")
    made = login.run("test2", f"rsvmgmt -a testbuild 1 {PARTITION} {start} {end} {theirs}")
    # Success is quiet on stderr: clients that treat stderr as failure (upstream) work.
    assert (made.exit_status, made.stdout, made.stderr) == (
        0,
        f"Reservation created: {theirs}\n",
        "",
    )
    before = all_slurm_reservations(login)
    test2_uid = login.run("test2", "id -u").stdout.strip()
    try:
        for command, reason in (
            # Another user in Users=, smuggled in the name or the account.
            (f"rsvmgmt -a testbuild 1 {PARTITION} {start} {end} 'x Users=test2'", "not valid"),
            (f"rsvmgmt -a 'testbuild Users=test2' 1 {PARTITION} {start} {end} x", "not a member"),
            (f"rsvmgmt -a testbuild 1 {PARTITION} {start} {end} x Users=test2", "Wrong Number"),
            # An account that is not theirs.
            (f"rsvmgmt -a root 1 {PARTITION} {start} {end} mine", "not a member of the root"),
            # Someone else's reservation, even claiming to be them.
            (f"rsvmgmt -d {theirs}", NOT_OWNER.format(theirs)),
            (f"rsvmgmt -u {theirs} 1 {PARTITION} {start} {end}", NOT_OWNER.format(theirs)),
            (f"SUDO_UID={test2_uid} SUDO_USER=test2 rsvmgmt -d {theirs}", NOT_OWNER.format(theirs)),
        ):
            refused = login.run("test1", command)
            assert refused.exit_status in (1, 2), (command, refused)
            assert refused.stderr.startswith("rsvmgmt: Error: "), (command, refused)
            assert reason in refused.stderr, (command, refused)
        listed = login.run("test1", "rsvmgmt -l")
        assert listed.exit_status == 0 and theirs not in listed.stdout
        assert listed.stdout.startswith("rsvmgmt: Current Reservations\n---")
        # Without the helper Slurm says no, and the helper is reached only through rsvmgmt.
        direct = login.run(
            "test1",
            f"scontrol create reservation ReservationName=direct Users=test1 NodeCnt=1"
            f" StartTime={start} EndTime={end}",
        )
        assert direct.exit_status != 0
        for command in ("sudo -n /usr/local/sbin/rsvmgmt-priv -l", "/usr/local/sbin/rsvmgmt-priv"):
            assert login.run("test1", command).exit_status == 118  # the wrapper's refusal
        assert all_slurm_reservations(login) == before
    finally:
        gone = login.run("test2", f"rsvmgmt -d {theirs}")
        assert (gone.exit_status, gone.stdout) == (0, f"rsvmgmt: Reservation {theirs} removed\n")
