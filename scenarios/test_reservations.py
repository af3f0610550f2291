"""Reservations (/reservations, deprecated in 1.16): judged where the target
offers them (capabilities.optionalEndpoints: [reservations]). What the API
description states is MUST; the reference's validation and texts, where the
description is silent, SHOULD."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from firecrest_testbuild.scenarios.client import Client
from firecrest_testbuild.scenarios.expect import unknown_machine_refused
from firecrest_testbuild.scenarios.verdict import reference, should, spec

pytestmark = [pytest.mark.api(1), pytest.mark.requires("reservations")]

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"  # "(YYYY-MM-DDTHH:MM:SS)" in the description
REFERENCE = "reservations.py"


def when(days: float, hours: float = 0) -> str:
    moment = datetime.datetime.now() + datetime.timedelta(days=days, hours=hours)
    return moment.strftime(TIME_FORMAT)


def reservation_form(client: Client, name: str, **changes: str) -> dict[str, str]:
    """A reservation the target can make: its account and node type, one node,
    an hour two days from now. Without those in the target file, names of a
    valid form stand in (enough for the refusals, made before anything runs)."""
    form = {
        "reservation": name,
        "account": client.target.system.account or "conformance",
        "numberOfNodes": "1",
        "nodeType": client.target.system.reservation_node_type or "conformance",
        "starttime": when(2),
        "endtime": when(2, 1),
    }
    return form | changes


def listed_names(client: Client) -> list[str]:
    answer = client.request("GET", "/reservations")
    assert answer.status_code == 200, (answer.status_code, answer.text[:200])
    return [entry.get("reservationname") for entry in answer.json()["success"]]


def body(answer: requests.Response) -> dict[str, Any]:
    try:
        found = answer.json()
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


@pytest.mark.source(
    spec("GET /reservations", '200 {"success": Reservations}: each a Reservation of strings')
)
@pytest.mark.covers("GET /reservations")
def test_reservations_are_listed(client: Client):
    answer = client.request("GET", "/reservations")
    assert answer.status_code == 200, (answer.status_code, answer.text[:200])
    listed = answer.json()["success"]
    assert isinstance(listed, list), listed
    for entry in listed:
        assert isinstance(entry, dict) and all(isinstance(v, str) for v in entry.values()), entry


@pytest.fixture
def reservation_name(client: Client) -> Iterator[str]:
    """A name of this test's own (the reference takes lowercase letters, digits,
    '-', '_' and '$'); the reservation is deleted at the end, whatever happened."""
    if not (client.target.system.account and client.target.system.reservation_node_type):
        pytest.skip("the target names no system.account and system.reservationNodeType")
    name = f"conformance-{uuid.uuid4().hex[:8]}"
    yield name
    client.request("DELETE", f"/reservations/{name}")


@pytest.mark.source(
    spec(
        "POST /reservations, PUT and DELETE /reservations/{reservation}",
        'created: 201 {"success": text}; updated: 200 {"success": text}; deleted: 204;'
        " GET /reservations lists all active reservations",
    )
)
@pytest.mark.covers(
    "POST /reservations",
    "GET /reservations",
    "PUT /reservations/{reservation}",
    "DELETE /reservations/{reservation}",
)
def test_a_reservation_is_made_changed_and_removed(client: Client, reservation_name: str):
    form = reservation_form(client, reservation_name)
    made = client.request("POST", "/reservations", data=form)
    assert made.status_code == 201, (made.status_code, made.text[:300])
    assert isinstance(made.json()["success"], str), made.text[:200]
    assert reservation_name in listed_names(client)
    # PUT's form lists `reservation` as required too; the reference reads the path.
    changed = client.request(
        "PUT", f"/reservations/{reservation_name}", data=form | {"endtime": when(2, 2)}
    )
    assert changed.status_code == 200, (changed.status_code, changed.text[:300])
    assert isinstance(changed.json()["success"], str), changed.text[:200]
    removed = client.request("DELETE", f"/reservations/{reservation_name}")
    assert removed.status_code == 204, (removed.status_code, removed.text[:300])
    assert reservation_name not in listed_names(client)


# What the reference refuses before running anything, in its words.
REFUSALS = {
    "an upper-case name": (
        {"reservation": "Conformance"},
        "'reservation' parameter format is not valid",
    ),
    "no node": ({"numberOfNodes": "0"}, "'numberOfNodes' parameter is not valid"),
    "an end before the start": (
        {"starttime": when(2, 1), "endtime": when(2)},
        "'endtime' occurs before 'starttime'",
    ),
    "a start in the past": ({"starttime": when(-1), "endtime": when(2)}, "is in the pass"),
}


@pytest.mark.source(
    spec(
        "POST /reservations",
        "reservation, account, numberOfNodes, nodeType, starttime and endtime are required,"
        " times as YYYY-MM-DDTHH:MM:SS: otherwise 400 'Error creating reservation'",
    )
)
@pytest.mark.covers("POST /reservations")
def test_reservations_that_cannot_be_made_are_refused(client: Client):
    name = f"conformance-{uuid.uuid4().hex[:8]}"  # never made: every form below is refused
    form = reservation_form(client, name)
    for missing in ("reservation", "numberOfNodes", "starttime"):
        incomplete = {k: v for k, v in form.items() if k != missing}
        answer = client.request("POST", "/reservations", data=incomplete)
        assert answer.status_code == 400, (missing, answer.status_code, answer.text[:200])
    malformed = client.request("POST", "/reservations", data=form | {"starttime": "tomorrow"})
    assert malformed.status_code == 400, (malformed.status_code, malformed.text[:200])
    for what, (changes, says) in REFUSALS.items():
        attempt = form | changes
        answer = client.request("POST", "/reservations", data=attempt)
        if answer.ok:  # made after all: not to be left behind
            client.request("DELETE", f"/reservations/{attempt['reservation']}")
        should(
            answer.status_code == 400 and says in str(body(answer).get("description")),
            f"{what}: {answer.status_code} {answer.text[:200]}",
            reference(
                f"{REFERENCE} post (check_name, check_number, check_dateDiff, check_actualDate)",
                f"{what}: 400 'Error creating reservation', description \"{says}...\"",
            ),
            about=answer,
        )


@pytest.mark.source(
    spec(
        "GET /reservations",
        "X-Machine-Name is required; 400 with X-Machine-Does-Not-Exist for an unknown machine",
    )
)
@pytest.mark.covers("GET /reservations")
def test_reservations_check_the_machine(client: Client):
    missing = client.request("GET", "/reservations", machine=False)
    assert missing.status_code == 400, (missing.status_code, missing.text[:200])
    should(
        body(missing).get("description") == "No machine name given",
        f"no machine: {missing.text[:200]}",
        reference(
            REFERENCE,
            '400 {"error": "Error listing reservation", "description": "No machine name given"}',
        ),
        about=missing,
    )
    unknown_machine_refused(client, "GET", "/reservations")
