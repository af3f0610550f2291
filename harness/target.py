"""The conformance target description of a running environment.

`up` writes it to target.yaml in the environment's state folder (mode 0600:
it holds the environment's test secrets), so that `testbuild conformance` and
`pytest scenarios/ --target` judge the local stack like any other.
"""

from __future__ import annotations

from typing import Any

import yaml

from firecrest_testbuild.harness.components import Context
from firecrest_testbuild.harness.contracts import (
    ClusterEndpoints,
    KeycloakEndpoints,
    MinioEndpoints,
    StackEndpoints,
)


def describe(context: Context) -> dict[str, Any]:
    config = context.config
    keycloak = context.endpoints(KeycloakEndpoints)
    client = keycloak.clients[0]
    people = config.people[:2]
    ssh = context.endpoints(ClusterEndpoints).ssh
    minio = context.endpoints(MinioEndpoints)
    return {
        "apiVersion": "testbuild/v1",
        "kind": "Target",
        "name": f"testbuild-{config.name}",
        "api": {"url": context.endpoints(StackEndpoints).url, "version": "1.16.1"},
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
        "capabilities": {
            "apiVersion": "1.16",
            "scheduler": True,
            "transfer": "s3",
            "internalTransfers": True,
            "sshAuth": config.cluster.ssh_auth,
            "optionalEndpoints": ["reservations"],
        },
        "limits": {
            "uploadMaxMb": config.stack.max_file_size_mb,
            "commandTimeout": config.stack.utilities_timeout,
        },
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


def render(context: Context) -> str:
    header = "# Written by `testbuild up`: the conformance target of this environment.\n"
    return header + yaml.safe_dump(describe(context), sort_keys=False)
