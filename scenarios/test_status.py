"""Status: services, systems, filesystems and parameters, as the API describes them."""

from __future__ import annotations

import pytest
from packaging.version import InvalidVersion, Version

from firecrest_testbuild.scenarios.client import Client
from firecrest_testbuild.scenarios.verdict import client as client_source
from firecrest_testbuild.scenarios.verdict import reference, should, spec

pytestmark = pytest.mark.api(1)

# The description gives a Service's status no values; the reference's status.py
# says "available" or "not available" (the description's System says "unavailable").
SERVICE_STATES = {"available", "unavailable", "not available"}


def get(client: Client, path: str):
    return client.request("GET", path, machine=False)


@pytest.mark.source(
    spec(
        "GET /status/services, GET /status/services/{servicename}",
        "200 with the services (Service: service, status, description); 404 for an unknown one",
    )
)
@pytest.mark.covers("GET /status/services", "GET /status/services/{servicename}")
def test_services_and_one_service(client: Client):
    listed = get(client, "/status/services")
    assert listed.status_code == 200
    services = listed.json()["out"]
    assert services, "no service listed"
    for service in services:
        assert {"service", "status", "description"} <= set(service), service
        should(
            service["status"] in SERVICE_STATES,
            f"service status {service['status']!r} is none of {sorted(SERVICE_STATES)}",
            reference("status.py", "a service is 'available' or 'not available'"),
            about=listed,
        )
    first = services[0]["service"]
    one = get(client, f"/status/services/{first}")
    assert one.status_code == 200 and one.json()["service"] == first
    unknown = get(client, "/status/services/no-such-service")
    assert unknown.status_code == 404
    should(
        _json(unknown).get("description") == "Service does not exists",
        f"an unknown service's 404 body: {unknown.text[:200]}",
        reference("status.py", '404 {"description": "Service does not exists"} (sic)'),
        about=unknown,
    )


def _json(response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


@pytest.mark.source(
    spec(
        "GET /status/systems, GET /status/systems/{machinename}",
        "'List of systems with status and description.'; System: system, status"
        " (available/unavailable); 404 for an unknown system",
    )
)
@pytest.mark.covers("GET /status/systems", "GET /status/systems/{machinename}")
def test_the_target_system_is_available(client: Client):
    name = client.target.system.name
    listed = get(client, "/status/systems")
    assert listed.status_code == 200
    assert listed.json()["description"] == "List of systems with status and description."
    systems = {system["system"]: system for system in listed.json()["out"]}
    assert systems[name]["status"] == "available", systems[name]
    one = get(client, f"/status/systems/{name}")
    assert one.status_code == 200 and one.json()["out"]["system"] == name
    assert get(client, "/status/systems/no-such-system").status_code == 404


@pytest.mark.source(
    spec(
        "GET /status/filesystems, GET /status/filesystems/{machinename}",
        "each system's filesystems (Filesystem: name, path, status)",
    )
)
@pytest.mark.covers("GET /status/filesystems", "GET /status/filesystems/{machinename}")
def test_filesystems_of_the_system(client: Client):
    name = client.target.system.name
    every = get(client, "/status/filesystems")
    assert every.status_code == 200
    mounted = every.json()["out"][name]
    for filesystem in mounted:
        assert {"name", "path", "status"} <= set(filesystem), filesystem
    paths = {filesystem["path"]: filesystem for filesystem in mounted}
    for expected in client.target.system.filesystems:
        assert paths[expected]["status"] == "available", paths.get(expected)
    one = get(client, f"/status/filesystems/{name}")
    assert one.status_code == 200 and one.json()["out"] == mounted


PARAMETER_NAMES = reference(
    "status.py parameters",
    "utilities: UTILITIES_MAX_FILE_SIZE (unit MB) and UTILITIES_TIMEOUT, as configured",
)
VERSION_PARSED = client_source(
    "pyfirecrest 3.x (v1 BasicClient)",
    "reads the general group's FIRECREST_VERSION with packaging.version.parse on its first"
    " call; a value that is no version makes every call raise InvalidVersion",
)


@pytest.mark.source(
    spec("GET /status/parameters", "200 with out.utilities and out.storage: {name, value, unit}")
)
@pytest.mark.covers("GET /status/parameters")
def test_parameters_declare_the_utilities_limits(client: Client):
    answer = get(client, "/status/parameters")
    assert answer.status_code == 200
    out = answer.json()["out"]
    utilities = {entry["name"]: entry for entry in out["utilities"]}
    assert all({"name", "value", "unit"} <= set(entry) for entry in out["utilities"]), out
    size = utilities.get("UTILITIES_MAX_FILE_SIZE", {})
    limits = client.target.limits
    should(
        _number(size.get("value")) == limits.upload_max_mb and size.get("unit") == "MB",
        f"UTILITIES_MAX_FILE_SIZE {size} is not the declared {limits.upload_max_mb} MB",
        PARAMETER_NAMES,
        about=answer,
    )
    timeout = utilities.get("UTILITIES_TIMEOUT", {})
    should(
        _number(timeout.get("value")) == limits.command_timeout,
        f"UTILITIES_TIMEOUT {timeout} is not the declared {limits.command_timeout}",
        PARAMETER_NAMES,
        about=answer,
    )
    version = reported_version(out)
    should(
        version is None or is_version(version),
        f"FIRECREST_VERSION {version!r} is not a version: pyfirecrest cannot use this target",
        VERSION_PARSED,
        about=answer,
    )


def reported_version(out: dict) -> str | None:
    """FIRECREST_VERSION of the general group of /status/parameters, if there."""
    general = out.get("general", []) if isinstance(out, dict) else []
    found = [
        str(entry.get("value")) for entry in general if entry.get("name") == "FIRECREST_VERSION"
    ]
    return found[0] if found else None


def is_version(text: str) -> bool:
    try:
        Version(text)
    except InvalidVersion:
        return False
    return True


def _number(value: object) -> float | None:
    try:
        return float(str(value))
    except ValueError:
        return None
