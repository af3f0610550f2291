"""Status: services, systems, filesystems and parameters, as the API describes them."""

from __future__ import annotations

import pytest

from firecrest_testbuild.scenarios.client import Client

SERVICE_STATES = {"available", "unavailable", "not available"}


def get(client: Client, path: str):
    return client.request("GET", path, machine=False)


@pytest.mark.covers("GET /status/services", "GET /status/services/{servicename}")
def test_services_and_one_service(client: Client):
    listed = get(client, "/status/services")
    assert listed.status_code == 200
    services = listed.json()["out"]
    assert services, "no service listed"
    for service in services:
        assert {"service", "status", "description"} <= set(service), service
        assert service["status"] in SERVICE_STATES, service
    first = services[0]["service"]
    one = get(client, f"/status/services/{first}")
    assert one.status_code == 200 and one.json()["service"] == first
    assert get(client, "/status/services/no-such-service").status_code == 404


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


@pytest.mark.covers("GET /status/parameters")
def test_parameters_declare_the_utilities_limits(client: Client):
    answer = get(client, "/status/parameters")
    assert answer.status_code == 200
    out = answer.json()["out"]
    utilities = {entry["name"]: entry for entry in out["utilities"]}
    size = utilities["UTILITIES_MAX_FILE_SIZE"]
    assert float(size["value"]) == client.target.limits.upload_max_mb
    assert size["unit"] == "MB"
    assert float(utilities["UTILITIES_TIMEOUT"]["value"]) == client.target.limits.command_timeout
