"""The endpoints components publish to each other and to the harness.

A component reads another's endpoints through its context
(`context.endpoints(KeycloakEndpoints)`), never by importing the other's
module; this module is the contract between them. A component whose
endpoints nobody else reads may keep its Endpoints class in its own module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import urllib3
from minio import Minio

from firecrest_testbuild.harness.config import User
from firecrest_testbuild.harness.endpoints import INTERNAL, Endpoints
from firecrest_testbuild.harness.errors import TestbuildError
from firecrest_testbuild.harness.keycloak_realm import token_request
from firecrest_testbuild.harness.keys import KeyPair
from firecrest_testbuild.harness.ssh import LoginNode

MINIO_HTTP_TIMEOUT = urllib3.Timeout(connect=5, read=60)


@dataclass(frozen=True)
class SshEndpoints:
    host: str
    port: int
    auth: str
    user_ca_private_key: str
    user_ca_public_key: str
    host_key: str


@dataclass(frozen=True)
class SlurmrestdEndpoints:
    """Slurm's REST API: a Keycloak access token as X-SLURM-USER-TOKEN, its
    user as X-SLURM-USER-NAME; `versions` are the API versions it serves
    (paths /slurm/<version>/..., /slurmdb/<version>/...)."""

    url: str
    versions: tuple[str, ...]

    def headers(self, user: str, token: str) -> dict[str, str]:
        return {"X-SLURM-USER-NAME": user, "X-SLURM-USER-TOKEN": token}


@dataclass(frozen=True)
class ClusterEndpoints(Endpoints):
    system: str
    ssh: SshEndpoints
    compute_nodes: tuple[str, ...]
    partitions: tuple[str, ...]
    # None when the cluster runs no slurmrestd (cluster.slurmrestd).
    slurmrestd: SlurmrestdEndpoints | None
    # The login node's sshd as the environment's containers reach it.
    network_ssh_host: str = field(metadata=INTERNAL)
    network_ssh_port: int = field(metadata=INTERNAL)
    # slurmrestd as the environment's containers reach it (None: not running).
    network_slurmrestd_url: str | None = field(default=None, metadata=INTERNAL)

    def login_node(self) -> LoginNode:
        """A client of the login node from the host, trusting only its host key."""
        ca = KeyPair(Path(self.ssh.user_ca_private_key))
        return LoginNode(self.ssh.host, self.ssh.port, self.ssh.host_key, ca)

    def summary(self) -> list[str]:
        return [
            f"cluster '{self.system}': login node ssh://{self.ssh.host}:{self.ssh.port}"
            f" ({self.ssh.auth} logins), compute nodes {', '.join(self.compute_nodes)}",
            f"partitions: {', '.join(self.partitions)}",
            f"SSH CA key: {self.ssh.user_ca_private_key}",
            *self._slurmrestd_summary(),
        ]

    def _slurmrestd_summary(self) -> list[str]:
        if self.slurmrestd is None:
            return []
        return [
            f"slurmrestd: {self.slurmrestd.url} (API {', '.join(self.slurmrestd.versions)};"
            " a Keycloak token as X-SLURM-USER-TOKEN, its user as X-SLURM-USER-NAME)"
        ]


@dataclass(frozen=True)
class AdminCredentials:
    user: str
    password: str


@dataclass(frozen=True)
class ClientSecret:
    client_id: str
    secret: str


@dataclass(frozen=True)
class KeycloakClient:
    client_id: str
    secret: str
    service_account: str


@dataclass(frozen=True)
class KeycloakEndpoints(Endpoints):
    url: str
    realm: str
    issuer: str
    token_url: str
    jwks_url: str
    admin: AdminCredentials
    clients: tuple[KeycloakClient, ...]
    # Tokens that expire after a few seconds, for expiry checks.
    expiry_probe: ClientSecret
    # The realm's keys over the network's direct route (tokens keep the public issuer).
    network_jwks_url: str = field(metadata=INTERNAL)
    # The realm's signing key as a JWKS document, known before Keycloak
    # starts (the harness makes the key): for verifiers that read keys once.
    signing_jwks: str = field(metadata=INTERNAL)

    @property
    def network_token_url(self) -> str:
        """The token endpoint over the network's direct route (beside its keys)."""
        return self.network_jwks_url.removesuffix("/certs") + "/token"

    def token(self, user: User | None = None, client: str | None = None) -> str:
        """An access token: a user's (password grant) or a client's (client credentials)."""
        chosen = self._client(client)
        form = (
            {"grant_type": "client_credentials"}
            if user is None
            else {"grant_type": "password", "username": user.name, "password": user.password}
        )
        return token_request(self.token_url, chosen.client_id, chosen.secret, form)

    def _client(self, client_id: str | None) -> KeycloakClient:
        """The named client, by default the first configured."""
        for client in self.clients:
            if client_id in (None, client.client_id):
                return client
        if not self.clients:
            raise TestbuildError(
                "keycloak", "no client is configured", fix="add one under keycloak.clients"
            )
        known = ", ".join(client.client_id for client in self.clients)
        raise TestbuildError(
            "keycloak", f"no client '{client_id}' is configured", fix=f"use one of: {known}"
        )

    def summary(self) -> list[str]:
        return [f"Keycloak: {self.url} (realm {self.realm}, token URL {self.token_url})"]


@dataclass(frozen=True)
class MinioEndpoints(Endpoints):
    url: str
    console_url: str
    access_key: str
    secret_key: str
    region: str
    buckets: tuple[str, ...]
    object_expiry_days: int
    # The S3 API as the environment's containers reach it directly.
    network_url: str = field(metadata=INTERNAL)

    def client(self) -> Minio:
        return Minio(
            urlsplit(self.url).netloc,
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=False,
            region=self.region,
            http_client=urllib3.PoolManager(timeout=MINIO_HTTP_TIMEOUT, retries=False),
        )

    def summary(self) -> list[str]:
        return [f"MinIO: {self.url} (console {self.console_url})"]


@dataclass(frozen=True)
class RedisEndpoints(Endpoints):
    url: str
    reachable_from: str


@dataclass(frozen=True)
class StackEndpoints(Endpoints):
    url: str  # FirecREST v1 (the tutorial's); "" when stack.v1Enabled is false
    api_version: str
    openapi: str
    machine: str
    # FirecREST v2 (None: stack.v2.enabled is false); systems are path segments.
    v2_url: str | None = None
    v2_api_version: str | None = None

    def summary(self) -> list[str]:
        lines = []
        if self.url:
            lines.append(
                f"FirecREST v1: {self.url} (machine {self.machine}, API description {self.openapi})"
            )
        if self.v2_url:
            lines.append(
                f"FirecREST v2: {self.v2_url} (API {self.v2_api_version}, system {self.machine},"
                f" e.g. {self.v2_url}/status/systems)"
            )
        return lines


@dataclass(frozen=True)
class SshcaEndpoints(Endpoints):
    url: str  # a v2 system's ssh_credentials url, for SSHCA and SSHService alike
    sign_url: str  # SSHCA: the DeiC SSH CA's POST /sign
    ssh_keys_url: str  # SSHService: POST /api/v1/ssh-keys
    certificate_lifetime: int  # seconds, at most
    # The service as the environment's containers reach it.
    network_url: str = field(metadata=INTERNAL)

    def summary(self) -> list[str]:
        return [
            f"SSH CA: {self.url} (SSHCA: POST /sign, SSHService: POST /api/v1/ssh-keys;"
            f" certificates valid {self.certificate_lifetime}s at most)"
        ]
