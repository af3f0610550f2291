"""The conformance target description of a running environment.

`up` writes it to target.yaml (the stack's v1 API) and target-v2.yaml (its
v2 API) in the environment's state folder (mode 0600: they hold the
environment's test secrets), so that `testbuild conformance [--api v2]` and
`pytest scenarios/ --target` judge the local stack like any other.
"""

from __future__ import annotations

from typing import Any

import yaml

from firecrest_testbuild.harness.components import Context
from firecrest_testbuild.harness.config import Implementation, merged
from firecrest_testbuild.harness.contracts import (
    ClusterEndpoints,
    KeycloakEndpoints,
    MinioEndpoints,
    StackEndpoints,
)
from firecrest_testbuild.harness.errors import TestbuildError
from firecrest_testbuild.scenarios import target as scenarios_target

# What a hosted implementation of each generation is judged as, unless its
# entry's `target:` says otherwise.
API_VERSIONS = {"v1": "1.16.1", "v2": "2.5.6"}


def describe(context: Context) -> dict[str, Any]:
    """The target of the environment's own stack."""
    config = context.config
    return _describe(
        context,
        name=f"testbuild-{config.name}",
        api={"url": context.endpoints(StackEndpoints).url, "version": "1.16.1"},
        optional_endpoints=["reservations"],
        limits={
            "uploadMaxMb": config.stack.max_file_size_mb,
            "commandTimeout": config.stack.utilities_timeout,
        },
    )


def describe_v2(context: Context) -> dict[str, Any]:
    """The target of the stack's FirecREST v2 API (it offers every optional endpoint)."""
    stack = context.endpoints(StackEndpoints)
    assert stack.v2_url, "the stack serves no v2 API (stack.v2.enabled is false)"
    return _describe(
        context,
        name=f"testbuild-{context.config.name}-v2",
        api={"url": stack.v2_url, "version": stack.v2_api_version or API_VERSIONS["v2"]},
        optional_endpoints=["attach"],
        limits=None,
    )


def describe_hosted(context: Context, entry: Implementation, url: str) -> dict[str, Any]:
    """The target of a hosted implementation: the environment's users, system and
    ground truth, its URL, and what its entry's `target:` sets over them."""
    document = _describe(
        context,
        name=f"testbuild-{context.config.name}-{entry.name}",
        api={"url": url, "version": API_VERSIONS[entry.api]},
        optional_endpoints=[],
        limits=None,
    )
    return merged(document, entry.target)


def _describe(
    context: Context,
    name: str,
    api: dict[str, str],
    optional_endpoints: list[str],
    limits: dict[str, int] | None,
) -> dict[str, Any]:
    config = context.config
    keycloak = context.endpoints(KeycloakEndpoints)
    client = keycloak.clients[0]
    people = config.people[:2]
    ssh = context.endpoints(ClusterEndpoints).ssh
    minio = context.endpoints(MinioEndpoints)
    document: dict[str, Any] = {
        "apiVersion": "testbuild/v1",
        "kind": "Target",
        "name": name,
        "api": api,
        "auth": {
            "tokenUrl": keycloak.token_url,
            "clientId": client.client_id,
            "clientSecret": client.secret,
            "expiryProbe": {
                "clientId": keycloak.expiry_probe.client_id,
                "clientSecret": keycloak.expiry_probe.secret,
            },
        },
        "identities": [{"name": user.name, "password": user.password} for user in people],
        "system": {
            "name": config.cluster.name,
            "workDir": "/home/{user}",
            "filesystems": ["/home", "/scratch"],
            "account": people[0].account if people else None,
            # A partition: Slurm 22.05 refuses to update a reservation made by
            # node feature ("Requested operation not supported on this system").
            "reservationNodeType": "part01",
        },
        "capabilities": _capabilities(context, api["version"], optional_endpoints),
        "limits": limits,
        "groundTruth": {
            "ssh": {
                "host": ssh.host,
                "port": ssh.port,
                "hostKey": ssh.host_key,
                "caPrivateKey": ssh.user_ca_private_key,
            },
            "s3": {
                "url": minio.url,
                "accessKey": minio.access_key,
                "secretKey": minio.secret_key,
            },
        },
    }
    if limits is None:  # the suites' defaults, unless the entry's `target:` sets them
        del document["limits"]
    return document


def _capabilities(context: Context, version: str, optional: list[str]) -> dict[str, Any]:
    """What the environment offers, in the keys of the target's generation
    (the suites read a 2.x target's capabilities with v2's keys)."""
    if version.startswith("2."):
        return {"scheduler": "slurm", "transfer": "s3", "optionalEndpoints": optional}
    return {
        "apiVersion": ".".join(version.split(".")[:2]),
        "scheduler": True,
        "transfer": "s3",
        "internalTransfers": True,
        "sshAuth": context.config.cluster.ssh_auth,
        "optionalEndpoints": optional,
    }


def render(context: Context) -> str:
    header = "# Written by `testbuild up`: the conformance target of this environment.\n"
    return header + yaml.safe_dump(describe(context), sort_keys=False)


def render_v2(context: Context) -> str:
    header = "# Written by `testbuild up`: the conformance target of this environment's v2 API.\n"
    return header + yaml.safe_dump(describe_v2(context), sort_keys=False)


def render_hosted(context: Context, entry: Implementation, url: str) -> str:
    """Its target file, checked as the suites will read it: what the entry's
    `target:` sets is an error of `up`, not of the first conformance run."""
    header = (
        f"# Written by `testbuild up`: the conformance target of implementation '{entry.name}'.\n"
    )
    text = header + yaml.safe_dump(describe_hosted(context, entry, url), sort_keys=False)
    try:
        scenarios_target.parse(text, f"the target file of '{entry.name}'", environ={})
    except scenarios_target.TargetError as invalid:
        raise TestbuildError(
            entry.name,
            "its entry's `target:` makes an invalid target file",
            details=invalid.problems,
            fix="change those keys of its `target:` (scenarios/README.md describes the file)",
        ) from invalid
    return text
