"""Status: liveness (no token), systems with their probed health, and each
system's nodes, partitions, reservations and the caller's user info."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint

from firecrest_testbuild.stack import slurm
from firecrest_testbuild.stack.commands import IDENTITY_COMMAND, parse_identity, quote
from firecrest_testbuild.stack.config import Filesystem, System
from firecrest_testbuild.stack.errors import ApiError
from firecrest_testbuild.stack.v2.api import Call, Caller, query_bool, route, v2_context

blueprint = Blueprint("v2-status", __name__, url_prefix="/status")

# v2's FileSystemDataType for the filesystem names sites use.
DATA_TYPES = {"home": "users", "users": "users", "scratch": "scratch", "store": "store",
              "project": "project", "apps": "apps", "archive": "archive"}  # fmt: skip


@route(blueprint, "GET", "/liveness/", public=True)
def liveness() -> dict[str, Any]:
    """When each system was last probed; no token needed."""
    return {"healthcheckRuns": v2_context().health.last_runs(), "lastUpdate": int(time.time())}


@route(blueprint, "GET", "/systems")
def systems(caller: Caller) -> dict[str, Any]:
    context = v2_context()
    return {
        "systems": [
            _cluster(system, context.health.of(caller.on(system)))
            for system in context.config.systems
        ]
    }


def _cluster(system: System, health: dict[str, Any]) -> dict[str, Any]:
    config = v2_context().config
    ssh = config.ssh
    return {
        "name": system.name,
        "ssh": {
            "host": system.host,
            "port": system.port,
            "maxClients": ssh.max_connections,
            "timeout": {
                "connection": int(ssh.connect_timeout),
                "login": int(ssh.connect_timeout),
                "commandExecution": ssh.command_timeout,
                "idleTimeout": int(ssh.idle_timeout),
                "keepAlive": 5,
            },
        },
        "scheduler": {
            "type": "slurm",
            "version": health.get("schedulerVersion", ""),
            "connectionMode": "ssh",
            "timeout": config.scheduler_timeout,
        },
        "probing": {"intervalCheck": int(health["interval"]), "timeout": 10},
        "servicesHealth": health["services"],
        "lastHealthCheck": health["lastChecked"],
        "fileSystems": [_filesystem(fs, index == 0) for index, fs in enumerate(system.filesystems)],
        "dataOperation": {
            "maxOpsFileSize": config.transfer.max_ops_file_size,
            "dataTransfer": _data_transfer(),
        },
    }


def _filesystem(filesystem: Filesystem, first: bool) -> dict[str, Any]:
    return {
        "path": filesystem.path,
        "dataType": DATA_TYPES.get(filesystem.name.lower(), "store"),
        "defaultWorkDir": first,
    }


def _data_transfer() -> dict[str, Any] | None:
    storage = v2_context().config.storage
    if storage is None:
        return None
    transfer = v2_context().config.transfer
    return {
        "serviceType": "s3",
        "name": "s3",
        "publicUrl": storage.s3_url,
        "region": storage.region,
        "ttl": storage.url_expiry_seconds,
        "multipart": {"maxPartSize": transfer.max_part_size, "parallelRuns": 3, "useSplit": False},
        "bucketLifecycleConfiguration": {"days": storage.object_expiry_days},
    }


def _records(call: Call, command: str, env: str = "") -> list[dict[str, str]]:
    """Records of a `scontrol -o show` command; `env`: VAR=value words, which go first."""
    limit = v2_context().config.scheduler_timeout
    output = call.run(f"{env}timeout {limit} {command}", timeout=limit + 10)
    if output.exit_status != 0:
        raise ApiError(400, f"The scheduler failed: {output.stderr.strip() or output.text.strip()}")
    # With nothing to show, scontrol says "No <kind> in the system".
    return [] if "in the system" in output.text else slurm.parse_records(output.text)


@route(blueprint, "GET", "/{system_name}/nodes")
def nodes(call: Call) -> dict[str, Any]:
    rest = call.slurmrest()
    if rest is not None:
        return {"nodes": rest.nodes(call.user, call.token)}
    return {"nodes": [slurm.node_model(r) for r in _records(call, "scontrol -o show nodes")]}


@route(blueprint, "GET", "/{system_name}/partitions")
def partitions(call: Call) -> dict[str, Any]:
    hidden = query_bool("show_hidden")
    rest = call.slurmrest()
    if rest is not None:
        return {"partitions": rest.partitions(call.user, call.token, hidden)}
    # Hidden partitions are shown with -a (scontrol's --all).
    every = "-a " if hidden else ""
    records = _records(call, f"scontrol {every}-o show partitions")
    return {"partitions": [slurm.partition_model(record) for record in records]}


@route(blueprint, "GET", "/{system_name}/reservations")
def reservations(call: Call) -> dict[str, Any]:
    rest = call.slurmrest()
    if rest is not None:
        return {"reservations": rest.reservations(call.user, call.token)}
    records = _records(call, "scontrol -o show reservations", env="SLURM_TIME_FORMAT=%s ")
    return {"reservations": [slurm.reservation_model(record) for record in records]}


@route(blueprint, "GET", "/{system_name}/userinfo")
def userinfo(call: Call) -> dict[str, Any]:
    identity = parse_identity(call.check(IDENTITY_COMMAND, "").text)
    return {**identity, "accounts": _accounts(call, identity["user"]["name"])}


def _accounts(call: Call, user: str) -> list[dict[str, Any]]:
    """The user's Slurm associations, the default one marked."""
    output = call.run(
        "sacctmgr -n -P show user withassoc format=defaultaccount,account where name=" + quote(user)
    )
    rows = [line.split("|") for line in output.text.splitlines() if line.count("|") == 1]
    return [
        {"name": account, "default": account == default}
        for default, account in dict.fromkeys((d, a) for d, a in rows if a)
    ]
