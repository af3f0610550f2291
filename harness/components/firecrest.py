"""The FirecREST v1 service stack (stack/) on http://<bindAddress>:<port>.

It checks tokens against the environment's Keycloak, runs commands on the
cluster's login node over SSH with certificates signed by the environment's
CA, and keeps tasks in Redis. Its configuration file is generated here from
the environment's and copied into the container with the CA key.
"""

from __future__ import annotations

from typing import Any

import requests
import yaml

from harness.components import Context
from harness.components.cluster import SSH_PORT
from harness.components.keycloak import KeycloakComponent
from harness.components.redis import URL as REDIS_URL
from harness.images import ImageSpec
from harness.readiness import Probe
from harness.runtime import ContainerSpec, Forward, PortBinding

NAME = "firecrest"
NODE = "firecrest"
HTTP_PORT = 8000
CA_KEY_IN_CONTAINER = "/run/firecrest/user_ca"
FILESYSTEMS = (
    {"name": "HOME", "path": "/home", "description": "Users' home directories"},
    {"name": "SCRATCH", "path": "/scratch", "description": "Scratch space shared by all nodes"},
)


class FirecrestComponent:
    name = NAME
    image = ImageSpec("firecrest", debian_release="trixie", sources=("stack",))
    volumes: tuple[str, ...] = ()

    def port(self, context: Context) -> int:
        return context.port("firecrest.port", context.config.firecrest.port)

    def url(self, context: Context) -> str:
        return f"http://{context.config.bind_address}:{self.port(context)}"

    def forwards(self, context: Context) -> list[Forward]:
        return []

    def containers(self, context: Context) -> list[ContainerSpec]:
        return [
            ContainerSpec(
                component=NAME,
                node=NODE,
                image=context.images[self.image.folder],
                command=[],
                hostname=NODE,
                ports=(
                    PortBinding(
                        HTTP_PORT, context.config.bind_address, self.port(context), "firecrest.port"
                    ),
                ),
                files={
                    "stack.yaml": (self.stack_config(context).encode(), 0o644),
                    "user_ca": (context.state.user_ca.private_path.read_bytes(), 0o600),
                },
            )
        ]

    def stack_config(self, context: Context) -> str:
        """The stack's configuration file for this environment (see stack/config.py)."""
        settings = context.config.firecrest
        keycloak = KeycloakComponent()
        realm_path = f"/realms/{context.config.keycloak.realm}"
        jwks_path = f"{realm_path}/protocol/openid-connect/certs"
        document = {
            "publicUrl": self.url(context),
            "systems": [
                {
                    "name": context.config.cluster.name,
                    "host": context.config.cluster.name,
                    "port": SSH_PORT,
                    "hostKey": context.state.host_key.public_line(),
                    "filesystems": list(FILESYSTEMS),
                }
            ],
            "auth": {
                # Keys over the network's direct route; the issuer is the public URL.
                "jwksUrl": f"{keycloak.internal_base_url()}{jwks_path}",
                "issuer": f"{keycloak.base_url(context)}{realm_path}",
            },
            "ssh": {"caPrivateKey": CA_KEY_IN_CONTAINER},
            "tasks": {"redisUrl": REDIS_URL, "expirySeconds": settings.task_expiry_seconds},
            "limits": {
                "utilitiesMaxFileSizeMb": settings.max_file_size_mb,
                "utilitiesTimeout": settings.utilities_timeout,
            },
        }
        return yaml.safe_dump(document, sort_keys=False)

    def started(self, context: Context) -> list[Probe]:
        return [Probe(NAME, "the API answers /_health", lambda: self._healthy(context), timeout=30)]

    def seed(self, context: Context) -> None:
        return None  # nothing to seed: users, keys and tokens come from the others

    def ready(self, context: Context) -> list[Probe]:
        return [
            Probe(
                NAME,
                "GET /status/systems with a real token reports the cluster available",
                lambda: self._cluster_available(context),
                timeout=30,
                transient=(OSError, requests.RequestException),
            )
        ]

    def endpoints(self, context: Context) -> dict[str, Any]:
        return {
            "url": self.url(context),
            "api_version": "1.16.1",
            "openapi": f"{self.url(context)}/openapi.json",
            "machine": context.config.cluster.name,
        }

    def _healthy(self, context: Context) -> str | None:
        response = requests.get(f"{self.url(context)}/_health", timeout=5)
        if response.status_code != 200:
            return f"HTTP {response.status_code}"
        return None if response.json().get("tasks") else "the task store does not answer yet"

    def _cluster_available(self, context: Context) -> str | None:
        people = [u for u in context.config.users if not u.name.startswith("service-account-")]
        keycloak = KeycloakComponent()
        token = (
            keycloak.token(context, user=people[0].name)
            if people
            else keycloak.token(context, client=context.config.keycloak.clients[0].client_id)
        )
        response = requests.get(
            f"{self.url(context)}/status/systems",
            headers={"Authorization": f"Bearer {token}"},
            timeout=15,
        )
        if response.status_code != 200:
            return f"HTTP {response.status_code}: {response.text[:200]}"
        unavailable = [s for s in response.json()["out"] if s["status"] != "available"]
        return f"unavailable: {unavailable}" if unavailable else None
