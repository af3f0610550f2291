"""The service stack (stack/): FirecREST v1 on http://<bindAddress>:<port>
and FirecREST v2 on http://<bindAddress>:<v2.port>, each switched on or off
in the environment file.

Both check tokens against the environment's Keycloak and run commands on
the cluster's login node. v1 logs in per command with certificates signed
by the environment's CA and keeps tasks in Redis; v2 logs in as the user
over one pooled connection each, with certificates from the SSH CA service
or the users' static keys. Their configuration files are generated here
from the environment's and copied into their containers.
"""

from __future__ import annotations

from typing import Any

import requests
import yaml

from firecrest_testbuild.harness.components import Context
from firecrest_testbuild.harness.config import EnvironmentConfig
from firecrest_testbuild.harness.contracts import (
    ClusterEndpoints,
    KeycloakEndpoints,
    MinioEndpoints,
    RedisEndpoints,
    SshcaEndpoints,
    StackEndpoints,
)
from firecrest_testbuild.harness.images import ImageSpec
from firecrest_testbuild.harness.readiness import Probe
from firecrest_testbuild.harness.runtime import ContainerSpec, Forward, PortBinding

NAME = "stack"
NODE = "stack"
V2_NODE = "stack-v2"
HTTP_PORT = 8000
CA_KEY_IN_CONTAINER = "/run/stack/user_ca"
KEYS_IN_CONTAINER = "/run/stack/keys"  # v2's static keys, one file per user
V2_API_VERSION = "2.5.6"
# The split layout: a container per service behind the gateway.
SPLIT_SERVICES = ("status", "utilities", "compute", "storage", "tasks", "reservations")
# Served in-process beside a split service: the certificator signs where
# commands run (and the status service checks that it can).
COMPANIONS = {
    "status": ("certificator",),
    "utilities": ("certificator",),
    "compute": ("certificator",),
    "storage": ("certificator",),
    "reservations": ("certificator",),
}
EXPECTED_AVAILABLE = (
    "certificator",
    "compute",
    "reservations",
    "status",
    "storage",
    "tasks",
    "utilities",
)
FILESYSTEMS = (
    {"name": "HOME", "path": "/home", "description": "Users' home directories"},
    {"name": "SCRATCH", "path": "/scratch", "description": "Scratch space shared by all nodes"},
)

IMAGE = ImageSpec("stack", debian_release="trixie", sources=("stack", "common"))


class StackComponent:
    name = NAME
    # Its commands run on the cluster, its tokens come from Keycloak, its
    # staging area is MinIO, v1's tasks live in Redis and v2 gets its SSH
    # certificates from the SSH CA.
    requires = ("cluster", "keycloak", "minio", "redis", "sshca")
    starts_after = requires
    volumes: tuple[str, ...] = ()
    endpoints_type = StackEndpoints

    def image(self, config: EnvironmentConfig) -> ImageSpec:
        return IMAGE

    def port(self, context: Context) -> int:
        return context.port("stack.port", context.config.stack.port)

    def url(self, context: Context) -> str:
        return f"http://{context.config.bind_address}:{self.port(context)}"

    def v2_port(self, context: Context) -> int:
        return context.port("stack.v2.port", context.config.stack.v2.port)

    def v2_url(self, context: Context) -> str:
        return f"http://{context.config.bind_address}:{self.v2_port(context)}"

    def forwards(self, context: Context) -> list[Forward]:
        return []

    def containers(self, context: Context) -> list[ContainerSpec]:
        v2 = [self._v2_container(context)] if context.config.stack.v2.enabled else []
        return self._v1_containers(context) + v2

    def _v1_containers(self, context: Context) -> list[ContainerSpec]:
        if not context.config.stack.v1_enabled:
            return []
        if context.config.stack.layout == "single":
            return [self._container(context, NODE, services=None, peers={}, published=True)]
        peers = {service: f"http://{NODE}-{service}:{HTTP_PORT}" for service in SPLIT_SERVICES}
        gateway = self._container(context, NODE, services=[], peers=peers, published=True)
        return [gateway] + [
            self._container(
                context,
                f"{NODE}-{service}",
                services=[service, *COMPANIONS.get(service, ())],
                # The status service probes the others where they run.
                peers={k: v for k, v in peers.items() if k != service}
                if service == "status"
                else {},
                published=False,
            )
            for service in SPLIT_SERVICES
        ]

    def _container(
        self,
        context: Context,
        node: str,
        services: list[str] | None,
        peers: dict[str, str],
        published: bool,
    ) -> ContainerSpec:
        port = PortBinding(HTTP_PORT, context.config.bind_address, self.port(context), "stack.port")
        return ContainerSpec(
            component=NAME,
            node=node,
            image=context.images[IMAGE.repository],
            command=[],
            hostname=node,
            ports=(port,) if published else (),
            files={
                "stack.yaml": (self.stack_config(context, services, peers).encode(), 0o644),
                "user_ca": (context.state.user_ca.private_path.read_bytes(), 0o600),
            },
        )

    def _v2_container(self, context: Context) -> ContainerSpec:
        settings = context.config.stack.v2
        port = PortBinding(
            HTTP_PORT, context.config.bind_address, self.v2_port(context), "stack.v2.port"
        )
        files = {"stack.yaml": (self.v2_config(context).encode(), 0o644)}
        if settings.ssh_credentials == "static-key":
            for user in context.config.users:
                key = context.state.user_key(user.name).private_path.read_bytes()
                files[f"key-{user.name}"] = (key, 0o600)
        return ContainerSpec(
            component=NAME,
            node=V2_NODE,
            image=context.images[IMAGE.repository],
            command=["--api", "v2"],
            hostname=V2_NODE,
            ports=(port,),
            files=files,
        )

    def v2_config(self, context: Context) -> str:
        """The v2 stack's configuration file (see stack/README.md, FirecREST v2)."""
        settings = context.config.stack.v2
        ssh: dict[str, Any] = {"credentials": settings.ssh_credentials}
        if settings.ssh_credentials in ("sshca", "sshservice"):
            ssh["sshcaUrl"] = context.endpoints(SshcaEndpoints).network_url
        else:
            ssh["staticKeysFolder"] = KEYS_IN_CONTAINER
        document: dict[str, Any] = {
            "systems": self._systems(context),
            "auth": self._auth(context),
            "ssh": ssh,
            "transfer": {"maxOpsFileSize": settings.max_ops_file_size_mb * 1024 * 1024},
            "storage": self._storage(context.endpoints(MinioEndpoints)),
        }
        if settings.connection_mode != "ssh":
            cluster = context.endpoints(ClusterEndpoints)
            document["schedulers"] = {
                cluster.system: {
                    "connectionMode": settings.connection_mode,
                    "apiUrl": cluster.network_slurmrestd_url,
                }
            }
        return yaml.safe_dump(document, sort_keys=False)

    def _systems(self, context: Context) -> list[dict[str, Any]]:
        cluster = context.endpoints(ClusterEndpoints)
        return [
            {
                "name": cluster.system,
                "host": cluster.network_ssh_host,
                "port": cluster.network_ssh_port,
                "hostKey": cluster.ssh.host_key,
                "filesystems": list(FILESYSTEMS),
            }
        ]

    def _auth(self, context: Context) -> dict[str, Any]:
        keycloak = context.endpoints(KeycloakEndpoints)
        # Keys over the network's direct route; the issuer is the public URL.
        return {"jwksUrl": keycloak.network_jwks_url, "issuer": keycloak.issuer}

    def stack_config(
        self,
        context: Context,
        services: list[str] | None = None,
        peers: dict[str, str] | None = None,
    ) -> str:
        """The stack's configuration file of one process (see stack/README.md)."""
        settings = context.config.stack
        document: dict[str, Any] = {
            "publicUrl": self.url(context),
            "systems": self._systems(context),
            "auth": self._auth(context),
            "ssh": {"caPrivateKey": CA_KEY_IN_CONTAINER},
            "tasks": {
                "redisUrl": context.endpoints(RedisEndpoints).url,
                "expirySeconds": settings.task_expiry_seconds,
            },
            "limits": {
                "utilitiesMaxFileSizeMb": settings.max_file_size_mb,
                "utilitiesTimeout": settings.utilities_timeout,
            },
            "storage": self._storage(context.endpoints(MinioEndpoints)),
        }
        if services is not None:
            document["services"] = services
        if peers:
            document["peers"] = peers
        return yaml.safe_dump(document, sort_keys=False)

    def _storage(self, minio: MinioEndpoints) -> dict[str, Any]:
        """MinIO as the staging area: presigned URLs carry its public address."""
        return {
            "s3Url": minio.url,
            "s3InternalUrl": minio.network_url,
            "accessKey": minio.access_key,
            "secretKey": minio.secret_key,
            "objectExpiryDays": minio.object_expiry_days,
        }

    def started(self, context: Context) -> list[Probe]:
        probes = []
        if context.config.stack.v1_enabled:
            probes.append(
                Probe(NAME, "the API answers /_health", lambda: self._healthy(context), timeout=30)
            )
        if context.config.stack.v2.enabled:
            probes.append(
                Probe(
                    NAME,
                    "FirecREST v2 answers /status/liveness/",
                    lambda: self._v2_live(context),
                    timeout=30,
                    transient=(OSError, requests.RequestException),
                )
            )
        return probes

    def seed(self, context: Context) -> None:
        return None  # nothing to seed: users, keys and tokens come from the others

    def ready(self, context: Context) -> list[Probe]:
        v2 = [
            Probe(
                NAME,
                "FirecREST v2's GET /status/systems with a real token reports the cluster healthy",
                lambda: self._v2_cluster_healthy(context),
                timeout=30,
                transient=(OSError, requests.RequestException),
            )
        ]
        return (self._v1_ready(context) if context.config.stack.v1_enabled else []) + (
            v2 if context.config.stack.v2.enabled else []
        )

    def _v1_ready(self, context: Context) -> list[Probe]:
        return [
            Probe(
                NAME,
                f"GET /status/services reports {', '.join(EXPECTED_AVAILABLE)} available",
                lambda: self._services_available(context),
                timeout=30,
                transient=(OSError, requests.RequestException),
            ),
            Probe(
                NAME,
                "GET /status/systems with a real token reports the cluster available",
                lambda: self._cluster_available(context),
                timeout=30,
                transient=(OSError, requests.RequestException),
            ),
        ]

    def endpoints(self, context: Context) -> StackEndpoints:
        v1 = context.config.stack.v1_enabled
        v2 = context.config.stack.v2.enabled
        return StackEndpoints(
            url=self.url(context) if v1 else "",
            api_version="1.16.1",
            openapi=f"{self.url(context)}/openapi.json" if v1 else "",
            machine=context.config.cluster.name,
            v2_url=self.v2_url(context) if v2 else None,
            v2_api_version=V2_API_VERSION if v2 else None,
        )

    def _token(self, context: Context) -> str:
        people = context.config.people
        keycloak = context.endpoints(KeycloakEndpoints)
        return keycloak.token(user=people[0]) if people else keycloak.token()

    def _v2_live(self, context: Context) -> str | None:
        response = requests.get(f"{self.v2_url(context)}/status/liveness/", timeout=5)
        return None if response.status_code == 200 else f"HTTP {response.status_code}"

    def _v2_cluster_healthy(self, context: Context) -> str | None:
        response = requests.get(
            f"{self.v2_url(context)}/status/systems",
            headers={"Authorization": f"Bearer {self._token(context)}"},
            timeout=30,
        )
        if response.status_code != 200:
            return f"HTTP {response.status_code}: {response.text[:200]}"
        unhealthy = [
            f"{system['name']}: {health['serviceType']} ({health.get('message')})"
            for system in response.json()["systems"]
            for health in system.get("servicesHealth") or []
            if not health.get("healthy")
        ]
        return f"unhealthy: {', '.join(unhealthy)}" if unhealthy else None

    def _healthy(self, context: Context) -> str | None:
        response = requests.get(f"{self.url(context)}/_health", timeout=5)
        if response.status_code != 200:
            return f"HTTP {response.status_code}"
        return None if response.json().get("tasks") else "the task store does not answer yet"

    def _status(
        self, context: Context, path: str
    ) -> tuple[list[dict[str, Any]] | None, str | None]:
        """The `out` of a GET under /status with a real token, or what went wrong."""
        response = requests.get(
            f"{self.url(context)}/status/{path}",
            headers={"Authorization": f"Bearer {self._token(context)}"},
            timeout=15,
        )
        if response.status_code != 200:
            return None, f"HTTP {response.status_code}: {response.text[:200]}"
        out: list[dict[str, Any]] = response.json()["out"]
        return out, None

    def _cluster_available(self, context: Context) -> str | None:
        systems, problem = self._status(context, "systems")
        if systems is None:
            return problem
        unavailable = [s for s in systems if s["status"] != "available"]
        return f"unavailable: {unavailable}" if unavailable else None

    def _services_available(self, context: Context) -> str | None:
        services, problem = self._status(context, "services")
        if services is None:
            return problem
        down = [
            f"{s['service']} ({s['description']})"
            for s in services
            if s["service"] in EXPECTED_AVAILABLE and s["status"] != "available"
        ]
        return f"unavailable: {', '.join(down)}" if down else None


COMPONENT = StackComponent()
