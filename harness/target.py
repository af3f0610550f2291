"""The conformance target description of a running environment.

`up` writes it to .testbuild/<name>/target.yaml (mode 0600: it holds the
environment's test secrets), so that `testbuild conformance` and
`pytest scenarios/ --target` judge the local stack like any other.
"""

from __future__ import annotations

from typing import Any

import yaml

from firecrest_testbuild.harness.components import Context
from firecrest_testbuild.harness.components.cluster import ClusterComponent
from firecrest_testbuild.harness.components.keycloak import KeycloakComponent
from firecrest_testbuild.harness.components.minio import MinioComponent
from firecrest_testbuild.harness.components.stack import StackComponent


def describe(context: Context) -> dict[str, Any]:
    config = context.config
    keycloak = KeycloakComponent().endpoints(context)
    client = keycloak["clients"][0]
    people = config.people[:2]
    login = ClusterComponent().login_node(context)
    minio = MinioComponent().endpoints(context)
    return {
        "apiVersion": "testbuild/v1",
        "kind": "Target",
        "name": f"testbuild-{config.name}",
        "api": {"url": StackComponent().url(context), "version": "1.16.1"},
        "auth": {
            "tokenUrl": keycloak["token_url"],
            "clientId": client["client_id"],
            "clientSecret": client["secret"],
            "expiryProbe": {
                "clientId": keycloak["expiry_probe"]["client_id"],
                "clientSecret": keycloak["expiry_probe"]["secret"],
            },
        },
        "identities": [{"name": user.name, "password": user.password} for user in people],
        "system": {
            "name": config.cluster.name,
            "workDir": "/home/{user}",
            "filesystems": ["/home", "/scratch"],
            "account": people[0].account if people else None,
        },
        "capabilities": {
            "apiVersion": "1.16",
            "scheduler": True,
            "transfer": "s3",
            "internalTransfers": True,
            "sshAuth": config.cluster.ssh_auth,
        },
        "limits": {
            "uploadMaxMb": config.stack.max_file_size_mb,
            "commandTimeout": config.stack.utilities_timeout,
        },
        "groundTruth": {
            "ssh": {
                "host": login.host,
                "port": login.port,
                "hostKey": login.host_key_line,
                "caPrivateKey": str(context.state.user_ca.private_path),
            },
            "s3": {
                "url": minio["url"],
                "accessKey": minio["access_key"],
                "secretKey": minio["secret_key"],
            },
        },
    }


def render(context: Context) -> str:
    header = "# Written by `testbuild up`: the conformance target of this environment.\n"
    return header + yaml.safe_dump(describe(context), sort_keys=False)
