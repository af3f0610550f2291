"""Status: which services and systems answer, the filesystems, the parameters.

Systems are really probed: an SSH server that does not send its banner in
time makes its system unavailable. Filesystems are probed on the system as
the caller (stat on each mount path).
"""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from flask import Blueprint, jsonify

from firecrest_testbuild.common.certificates import issue_identity
from firecrest_testbuild.stack import API_VERSION, STACK_VERSION, schemas
from firecrest_testbuild.stack.api import Call, Endpoint, Param, route
from firecrest_testbuild.stack.config import SERVICES, System
from firecrest_testbuild.stack.context import stack_context
from firecrest_testbuild.stack.errors import ApiError
from firecrest_testbuild.stack.probecache import ProbeCache
from firecrest_testbuild.stack.services import Service

BANNER_TIMEOUT = 5.0
PEER_TIMEOUT = 5.0

blueprint = Blueprint("status", __name__, url_prefix="/status")
SERVICE = Service(name="status", blueprint=blueprint)
_route = lambda endpoint: route(blueprint, endpoint, SERVICE.endpoints)  # noqa: E731


@_route(
    Endpoint(
        "GET",
        "/status/services",
        "List of services",
        200,
        "Error listing services",
        machine=False,
        tag="Status",
        response=schemas.SERVICES,
    )
)
def services(call: Call):
    return jsonify(
        {
            "description": "List of services with status and description.",
            "out": [_service_status(name) for name in SERVICES],
        }
    )


@_route(
    Endpoint(
        "GET",
        "/status/services/{servicename}",
        "Get service information",
        200,
        "Service does not exists",
        machine=False,
        tag="Status",
        response=schemas.SERVICE,
        not_found=True,
        params=(Param("servicename", "path", required=True),),
    )
)
def service(call: Call):
    name = call.params["servicename"]
    if name not in SERVICES:
        raise ApiError(
            404,
            f"Service {name} does not exist",
            body={"description": "Service does not exists", "status_code": 404},  # FirecREST v1's
        )
    return jsonify(_service_status(name))


@_route(
    Endpoint(
        "GET",
        "/status/systems",
        "List of systems",
        200,
        "Error listing systems",
        machine=False,
        tag="Status",
        response=schemas.SYSTEMS,
    )
)
def systems(call: Call):
    context = stack_context()
    configured = context.config.systems
    with ThreadPoolExecutor(max_workers=len(configured)) as pool:
        out = list(pool.map(lambda s: _system_status(s, context.system_probes), configured))
    return jsonify({"description": "List of systems with status and description.", "out": out})


@_route(
    Endpoint(
        "GET",
        "/status/systems/{machinename}",
        "Get system information",
        200,
        "System does not exists",
        machine=False,
        tag="Status",
        response=schemas.ONE_SYSTEM,
        not_found=True,
        params=(Param("machinename", "path", required=True),),
    )
)
def system(call: Call):
    found = stack_context().config.system(call.params["machinename"])
    if found is None:
        raise ApiError(  # FirecREST v1's words
            404, "System does not exists.", body={"description": "System does not exists."}
        )
    status = _system_status(found, stack_context().system_probes)
    return jsonify({"description": "System information", "out": status})


@_route(
    Endpoint(
        "GET",
        "/status/filesystems",
        "List of filesystems",
        200,
        "Error listing filesystems",
        machine=False,
        tag="Status",
        response=schemas.FILESYSTEMS,
    )
)
def filesystems(call: Call):
    out = {
        system.name: _filesystems_of(call.user, system) for system in stack_context().config.systems
    }
    return jsonify({"description": "Filesystem information", "out": out})


@_route(
    Endpoint(
        "GET",
        "/status/filesystems/{machinename}",
        "List of filesystems of a system",
        200,
        "Error listing filesystems",
        machine=False,
        tag="Status",
        response=schemas.FILESYSTEMS_OF_SYSTEM,
        params=(Param("machinename", "path", required=True),),
    )
)
def filesystems_of_system(call: Call):
    name = call.params["machinename"]
    found = stack_context().config.system(name)
    if found is None:  # FirecREST v1's answer (the API is silent)
        raise ApiError(
            404,
            f"System '{name}' doesn't exist",
            body={
                "description": f"Filesystem information for system {name}",
                "out": f"System '{name}' doesn't exist",
            },
        )
    return jsonify(
        {"description": "Filesystem information", "out": _filesystems_of(call.user, found)}
    )


@_route(
    Endpoint(
        "GET",
        "/status/parameters",
        "List of API parameters",
        200,
        "Error listing parameters",
        machine=False,
        tag="Status",
        response=schemas.PARAMETERS,
    )
)
def parameters(call: Call):
    config = stack_context().config
    filesystems = [
        {"system": s.name, "mounted": [f.path for f in s.filesystems]} for s in config.systems
    ]
    return jsonify(
        {
            "description": "Firecrest's parameters",
            "out": {
                "general": [
                    # Clients parse this as a version (pyfirecrest does): the API's.
                    _parameter("FIRECREST_VERSION", API_VERSION, "", "FirecREST API version"),
                    _parameter(
                        "FIRECREST_BUILD",
                        f"testbuild-stack {STACK_VERSION}",
                        "",
                        "The implementation serving it",
                    ),
                ],
                "utilities": [
                    _parameter(
                        "UTILITIES_MAX_FILE_SIZE",
                        config.limits.utilities_max_file_size_mb,
                        "MB",
                        "Largest file the blocking upload, download and view accept",
                    ),
                    _parameter(
                        "UTILITIES_TIMEOUT",
                        config.limits.utilities_timeout,
                        "seconds",
                        "Time limit of a command run by the utilities",
                    ),
                ],
                "compute": [
                    _parameter(
                        "COMPUTE_JOBS_FOLDER",
                        config.compute.jobs_folder,
                        "",
                        "Folder under $HOME where submitted job scripts are written",
                    ),
                ],
                "storage": [
                    _parameter("FILESYSTEMS", filesystems, "", "Filesystems of each system"),
                ],
            },
        }
    )


def _parameter(name: str, value: Any, unit: str, description: str) -> dict[str, Any]:
    return {"name": name, "value": value, "unit": unit, "description": description}


def _service_status(name: str) -> dict[str, Any]:
    available, description = _service_health(name)
    return {
        "service": name,
        "status": "available" if available else "unavailable",
        "status_code": 200 if available else 400,
        "description": description,
    }


def _service_health(name: str) -> tuple[bool, str]:
    config = stack_context().config
    if name in config.services:
        return _local_health(name)
    if name in config.peers:
        return _peer_health(name, config.peers[name])
    return False, "Not enabled in this stack's configuration"


def _local_health(name: str) -> tuple[bool, str]:
    context = stack_context()
    if name == "storage":
        if context.staging is None:
            return False, "No staging area configured ('storage' in the configuration)"
        if not context.staging.healthy():
            return False, "The staging area (S3) does not answer"
        return True, "server up & flask running"
    if name == "tasks" and not context.store.healthy():
        return False, "Task store (Redis) does not answer"
    if name == "certificator":
        try:
            issue_identity(context.shell.ca, "status-probe", "true")
        except Exception as error:  # any failure to sign means the service is down
            return False, f"Cannot sign certificates: {error}"
        return True, "Signs short-lived SSH certificates"
    return True, "server up & flask running"


def _peer_health(name: str, base: str) -> tuple[bool, str]:
    try:
        answer = requests.get(f"{base}/_health", timeout=PEER_TIMEOUT)
    except requests.RequestException as error:
        return False, f"Does not answer at {base}: {type(error).__name__}"
    if answer.status_code != 200:
        return False, f"Answers HTTP {answer.status_code} at {base}"
    if name in ("compute", "tasks") and answer.json().get("tasks") is False:
        return False, "Task store (Redis) does not answer"
    return True, f"server up at {base}"


def _system_status(system: System, probes: ProbeCache[dict[str, str]]) -> dict[str, str]:
    return probes.get(system.name, lambda: _probed_status(system))


def _probed_status(system: System) -> dict[str, str]:
    problem = _ssh_banner_problem(system)
    if problem:
        return {
            "system": system.name,
            "status": "unavailable",
            "description": f"Error on connection to system: {problem}",
        }
    return {"system": system.name, "status": "available", "description": system.description}


def _ssh_banner_problem(system: System) -> str | None:
    try:
        with socket.create_connection((system.host, system.port), timeout=BANNER_TIMEOUT) as sock:
            sock.settimeout(BANNER_TIMEOUT)
            banner = sock.recv(256)
    except OSError as error:
        return str(error) or type(error).__name__
    if not banner.startswith(b"SSH-"):
        return "no SSH server answers"
    return None


def _filesystems_of(user: str, system: System) -> list[dict[str, Any]]:
    paths = [fs.path for fs in system.filesystems]
    reachable: set[str] = set()
    if paths:
        try:
            output = stack_context().shell.run(
                user, system, "stat -c %n -- " + " ".join(paths), time_limit=5
            )
            reachable = set(output.text.split())
        except ApiError:
            reachable = set()
    return [
        {
            "name": fs.name,
            "path": fs.path,
            "description": fs.description,
            "status": "available" if fs.path in reachable else "down",
            "status_code": 200 if fs.path in reachable else 400,
        }
        for fs in system.filesystems
    ]
