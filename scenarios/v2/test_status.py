"""Status (v2): liveness without a token, the systems and their health, the
system's nodes, partitions and reservations, and who the caller is there."""

from __future__ import annotations

import pytest
from packaging.version import InvalidVersion, Version

from firecrest_testbuild.scenarios.truth import Truth
from firecrest_testbuild.scenarios.v2.api import PYFIRECREST, VERSION_HEADER, ApiV2
from firecrest_testbuild.scenarios.verdict import client as client_source
from firecrest_testbuild.scenarios.verdict import reference, should, spec

pytestmark = pytest.mark.api(2)

NODE_STATES = {
    "IDLE",
    "ALLOCATED",
    "MIXED",
    "DOWN",
    "DRAIN",
    "OFFLINE",
    "RESERVED",
    "COMPLETING",
    "BUSY",
    "POWERING_DOWN",
    "POWERING_UP",
    "UNKNOWN",
}
VERSION_READ = client_source(
    PYFIRECREST,
    f"reads the API version from the {VERSION_HEADER} header of every answer to adapt its"
    " request bodies (before 2.4.0 uploads sent other keys); 2.x.x means a development build",
)


@pytest.mark.source(
    spec("GET /status/liveness/", "no security: 200 with healthcheckRuns (object), lastUpdate")
)
@pytest.mark.covers("GET /status/liveness/")
def test_liveness_needs_no_token(client: ApiV2):
    answer = client.request("GET", "/status/liveness/", anonymous=True)
    assert answer.status_code == 200, (answer.status_code, answer.text[:200])
    body = answer.json()
    assert isinstance(body.get("healthcheckRuns", {}), dict), body
    assert isinstance(body.get("lastUpdate", 0), int), body


@pytest.mark.source(
    spec(
        "GET /status/systems",
        "200 with systems: HPCCluster (name, ssh {host, port}, scheduler {type slurm|pbs,"
        " version}, probing), fileSystems of {path, dataType}",
    )
)
@pytest.mark.covers("GET /status/systems")
def test_systems_name_the_system_its_scheduler_and_filesystems(client: ApiV2):
    answer = client.request("GET", "/status/systems")
    assert answer.status_code == 200, answer.text[:200]
    systems = {system["name"]: system for system in answer.json()["systems"]}
    assert client.system in systems, sorted(systems)
    system = systems[client.system]
    assert isinstance(system["ssh"]["host"], str) and isinstance(system["ssh"]["port"], int)
    assert system["scheduler"]["type"] in ("slurm", "pbs"), system["scheduler"]
    assert isinstance(system["scheduler"]["version"], str)
    assert isinstance(system["probing"], dict)
    declared = client.target.capabilities
    if getattr(declared, "scheduler", "none") != "none":
        # The target file declares the scheduler the suites judge: it must be this one.
        assert system["scheduler"]["type"] == declared.scheduler, system["scheduler"]
    paths = {fs["path"] for fs in system.get("fileSystems") or []}
    assert set(client.target.system.filesystems) <= paths, sorted(paths)
    version = answer.headers.get(VERSION_HEADER)
    should(
        version is not None and (version == "2.x.x" or _is_version(version)),
        f"{VERSION_HEADER} is {version!r}",
        VERSION_READ,
        about=answer,
    )


def _is_version(text: str) -> bool:
    try:
        Version(text)
    except InvalidVersion:
        return False
    return True


@pytest.mark.requires("scheduler")
@pytest.mark.source(
    spec(
        "GET /status/{system_name}/nodes",
        "200 with nodes: NodeModel (name, cpus, state: [NodeState])",
    )
)
@pytest.mark.covers("GET /status/{system_name}/nodes")
def test_nodes(client: ApiV2):
    answer = client.status("nodes")
    assert answer.status_code == 200, answer.text[:200]
    nodes = answer.json()["nodes"]
    assert nodes, "no node listed"
    for node in nodes:
        assert isinstance(node["name"], str) and isinstance(node["cpus"], int), node
        assert isinstance(node["state"], list) and set(node["state"]) <= NODE_STATES, node


@pytest.mark.requires("scheduler")
@pytest.mark.source(
    spec(
        "GET /status/{system_name}/partitions",
        "200 with partitions: PartitionModel (name, partition)",
    )
)
@pytest.mark.covers("GET /status/{system_name}/partitions")
def test_partitions(client: ApiV2):
    answer = client.status("partitions")
    assert answer.status_code == 200, answer.text[:200]
    partitions = answer.json()["partitions"]
    assert partitions and all(isinstance(p["name"], str) for p in partitions), partitions
    wanted = client.target.system.partition
    assert wanted is None or wanted in {p["name"] for p in partitions}, (wanted, partitions)


@pytest.mark.requires("scheduler")
@pytest.mark.source(
    spec(
        "GET /status/{system_name}/reservations",
        "200 with reservations: ReservationModel (name, nodeList, startTime, endTime)",
    )
)
@pytest.mark.covers("GET /status/{system_name}/reservations")
def test_reservations(client: ApiV2):
    answer = client.status("reservations")
    assert answer.status_code == 200, answer.text[:200]
    for reservation in answer.json()["reservations"]:
        assert isinstance(reservation["name"], str) and isinstance(reservation["nodeList"], str)
        assert isinstance(reservation["startTime"], int), reservation
        assert isinstance(reservation["endTime"], int), reservation


@pytest.mark.source(
    spec(
        "GET /status/{system_name}/userinfo",
        "200 with user, group (PosixIdentified: id, name) and groups of the caller",
    )
)
@pytest.mark.covers("GET /status/{system_name}/userinfo")
def test_userinfo_is_the_callers(client: ApiV2, truth: Truth):
    answer = client.status("userinfo")
    assert answer.status_code == 200, answer.text[:200]
    info = answer.json()
    assert info["user"]["name"] == client.user, info["user"]
    assert isinstance(info["group"]["name"], str) and isinstance(info["groups"], list)
    assert info["group"]["id"] in {group["id"] for group in info["groups"]} or not info["groups"]
    if (system := truth.system("the caller's ids on the system")) is not None:
        ids = system.run(client.user, "id -u; id -g").text.split()
        assert [str(info["user"]["id"]), str(info["group"]["id"])] == ids, (info, ids)
    should(
        answer.headers.get("F7T-AuthUsername", client.user) == client.user,
        f"F7T-AuthUsername is {answer.headers.get('F7T-AuthUsername')!r}",
        reference("lib/handlers/api_response_handler.py", "F7T-AuthUsername names the caller"),
        about=answer,
    )
