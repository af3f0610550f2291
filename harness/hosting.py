"""Hosted implementations: each `implementations:` entry of the environment
file as a component, so that start order, labels, logs, readiness with log
tails and `down` are the environment's own (README: Hosting an implementation).

An entry runs from an image the engine has, or from a local source tree
mounted read-only at /src in an image whose virtual environment is built
from the tree's requirements file (images/venv/). Each process is a
container `<name>-<process>`; with a gateway, nginx in `<name>-gateway`
routes path prefixes to them. Its configuration files and the processes'
commands and environment are templates whose placeholders
(harness/templates.py) are filled from the other components' endpoints.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import requests

from firecrest_testbuild.harness import templates
from firecrest_testbuild.harness.archive import Files
from firecrest_testbuild.harness.components import Component, Context
from firecrest_testbuild.harness.config import (
    GATEWAY,
    EnvironmentConfig,
    Implementation,
    Process,
)
from firecrest_testbuild.harness.contracts import (
    ClusterEndpoints,
    KeycloakEndpoints,
    MinioEndpoints,
    RedisEndpoints,
    SshcaEndpoints,
)
from firecrest_testbuild.harness.endpoints import Endpoints
from firecrest_testbuild.harness.errors import TestbuildError
from firecrest_testbuild.harness.images import ContextFile, ImageSpec
from firecrest_testbuild.harness.readiness import Probe
from firecrest_testbuild.harness.runtime import ContainerSpec, Forward, PortBinding

SOURCE_MOUNT = "/src"
SOURCE_VERSION = "TESTBUILD_SOURCE_VERSION"  # the tree's digest, in each process's environment
CACHES = {"__pycache__", "node_modules"}
GATEWAY_PORT = 8080
# What the gateway (nginx) answers itself when a route's process does not
# take the request. (It answers 503 only when told to, which it is not: a
# 503 is the process's own answer.)
GATEWAY_UNREACHED = (502, 504)
VENV_IMAGE_FOLDER = "venv"


@dataclass(frozen=True)
class ImplementationEndpoints(Endpoints):
    name: str
    api: str  # v1 or v2
    url: str
    target: str  # the target file `up` wrote for it

    def summary(self) -> list[str]:
        return [
            f"implementation '{self.name}' (FirecREST {self.api}): {self.url}"
            f" (judge it: testbuild conformance --implementation {self.name})"
        ]


class HostedImplementation:
    """One `implementations:` entry, as a component of the environment."""

    # It may be configured with any of their endpoints (the placeholders).
    requires = ("cluster", "keycloak", "minio", "redis", "sshca")
    starts_after = requires
    volumes: tuple[str, ...] = ()
    endpoints_type = ImplementationEndpoints

    def __init__(self, entry: Implementation, index: int) -> None:
        self.entry = entry
        self.key = f"implementations[{index}]"  # where the environment file sets it

    @property
    def name(self) -> str:
        return self.entry.name

    def image(self, config: EnvironmentConfig) -> ImageSpec:
        source = self.entry.source
        if source is None:
            assert self.entry.image is not None  # the config has one or the other
            return ImageSpec(
                "",
                "",
                existing=self.entry.image,
                existing_missing=f"{self.key}.image of implementation '{self.name}'",
            )
        return ImageSpec(
            VENV_IMAGE_FOLDER,
            debian_release=source.debian_release,
            name=f"venv-{self.name}",
            files=(self._requirements(source.path, source.requirements),),
        )

    def _requirements(self, tree: Path, requirements: str) -> ContextFile:
        """The tree's requirements file, and what to say when it is not there."""
        if not tree.is_dir():
            missing = f"its source tree {tree} does not exist"
            fix = f"set {self.key}.source.path to the checkout of the implementation"
        else:
            missing = f"its source tree {tree} has no requirements file {requirements}"
            fix = f"set {self.key}.source.requirements to the file's path in the tree"
        return ContextFile("requirements.txt", tree / requirements, self.name, missing, fix)

    def port(self, context: Context) -> int:
        return context.port(f"implementations.{self.name}.port", self.entry.port)

    def url(self, context: Context) -> str:
        return f"http://{context.config.bind_address}:{self.port(context)}"

    def node(self, process: Process) -> str:
        return f"{self.name}-{process.name}"

    def forwards(self, context: Context) -> list[Forward]:
        return []

    def containers(self, context: Context) -> list[ContainerSpec]:
        # The images stage made sure the source tree is there.
        values = self.values(context)
        files = {
            file.path: (self._render(values, f"files[{index}].template", file.template), file.mode)
            for index, file in enumerate(self.entry.files)
        }
        image = context.images[self.image(context.config).repository]
        published = PortBinding(
            GATEWAY_PORT if self.entry.gateway else self.entry.processes[0].port,
            context.config.bind_address,
            self.port(context),
            f"{self.key}.port",
        )
        source = self.entry.source
        # Part of each process's spec: `up` restarts them after the tree changed.
        version = {SOURCE_VERSION: tree_version(source.path)} if source else {}
        specs = [
            self._process(values, index, process, image, files, published, version)
            for index, process in enumerate(self.entry.processes)
        ]
        if self.entry.gateway:
            specs.append(
                ContainerSpec(
                    component=self.name,
                    node=f"{self.name}-{GATEWAY}",
                    image=image,
                    command=["nginx", "-e", "stderr", "-c", "/etc/testbuild/gateway.conf"],
                    hostname=f"{self.name}-{GATEWAY}",
                    ports=(published,),
                    files={"gateway.conf": (self.gateway_conf().encode(), 0o644)},
                )
            )
        return specs

    def _process(
        self,
        values: templates.Values,
        index: int,
        process: Process,
        image: str,
        files: Files,
        published: PortBinding,
        version: dict[str, str],
    ) -> ContainerSpec:
        where = f"processes[{index}]"
        command = [
            self._render(values, f"{where}.command[{position}]", argument).decode()
            for position, argument in enumerate(process.command or ())
        ]
        environment = {
            variable: self._render(values, f"{where}.environment.{variable}", value).decode()
            for variable, value in process.environment.items()
        }
        source = self.entry.source
        return ContainerSpec(
            component=self.name,
            node=self.node(process),
            image=image,
            command=command,
            hostname=self.node(process),
            ports=(published,) if process == self.entry.published_process else (),
            environment=environment | version,
            files=files,
            mounts={str(source.path): SOURCE_MOUNT} if source else {},
        )

    def _render(self, values: templates.Values, key: str, template: str) -> bytes:
        try:
            return templates.render(template, values).encode()
        except templates.Unfilled as unfilled:
            raise TestbuildError(
                self.name,
                f"{self.key}.{key}: {{{{ {unfilled.name} }}}} cannot be filled: {unfilled.reason}",
                fix="change the environment so that it has it, or do without that placeholder",
            ) from unfilled

    def gateway_conf(self) -> str:
        """nginx routing each declared path prefix to its process, the request
        unchanged (path, query, headers, body streamed both ways)."""
        by_name = {process.name: process for process in self.entry.processes}
        locations = "".join(
            f"    location {route.path} {{\n"
            f"      set $process {self.node(by_name[route.process])}:"
            f"{by_name[route.process].port};\n"
            "      proxy_pass http://$process;\n"
            "    }\n"
            for route in self.entry.gateway
        )
        return (
            textwrap.dedent(f"""\
            daemon off;
            worker_processes 1;
            pid /tmp/nginx.pid;
            error_log stderr notice;
            events {{ worker_connections 1024; }}
            http {{
              access_log /dev/stdout;
              # The engine's DNS, asked again when a process's container is replaced.
              resolver 127.0.0.11 valid=5s ipv6=off;
              client_max_body_size 0;
              proxy_request_buffering off;
              proxy_buffering off;
              proxy_read_timeout 300s;
              proxy_http_version 1.1;
              proxy_set_header Host $http_host;
              proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
              proxy_set_header X-Forwarded-Proto $scheme;
              server {{
                listen {GATEWAY_PORT};
            """)
            + locations
            + "  }\n}\n"
        )

    def started(self, context: Context) -> list[Probe]:
        """Its health answer; behind a gateway, also every route reaching its
        process (the health path is one process's: another may still be
        starting, and the gateway answers 502 for it)."""
        health = self.entry.health
        healthy = self._probe(
            f"GET {health.path} answers HTTP {health.status} ({self.key}.health)",
            lambda: self._healthy(context),
        )
        routes = [
            self._probe(
                f"GET {route.path} reaches process {route.process} through the gateway"
                f" ({self.key}.gateway[{index}])",
                partial(self._reached, context, route.path),
            )
            for index, route in enumerate(self.entry.gateway)
        ]
        return [healthy, *routes]

    def _probe(self, description: str, check: Callable[[], str | None]) -> Probe:
        """A probe of the published port, as long as the entry's health allows."""
        return Probe(
            self.name,
            description,
            check,
            timeout=self.entry.health.timeout,
            interval=1.0,
            transient=(OSError, requests.RequestException),
        )

    def _reached(self, context: Context, path: str) -> str | None:
        """None once the gateway hands `path` to its process: any answer of
        the process (a 503 too), not the gateway's own for a process it
        cannot reach."""
        response = requests.get(f"{self.url(context)}{path}", timeout=10)
        if response.status_code in GATEWAY_UNREACHED:
            return f"HTTP {response.status_code} from the gateway"
        return None

    def _healthy(self, context: Context) -> str | None:
        health = self.entry.health
        headers = {}
        if health.token:
            headers["Authorization"] = f"Bearer {context.endpoints(KeycloakEndpoints).token()}"
        response = requests.get(f"{self.url(context)}{health.path}", headers=headers, timeout=10)
        if response.status_code != health.status:
            return f"HTTP {response.status_code}: {response.text[:200]}"
        return None

    def seed(self, context: Context) -> None:
        return None  # users, keys and tokens are the environment's

    def ready(self, context: Context) -> list[Probe]:
        return []  # healthy is all the harness can know; the suites judge the rest

    def endpoints(self, context: Context) -> ImplementationEndpoints:
        return ImplementationEndpoints(
            name=self.name,
            api=self.entry.api,
            url=self.url(context),
            target=str(context.state.implementation_target(self.name)),
        )

    def values(self, context: Context) -> templates.Values:
        """Each placeholder's value, computed when a template uses it."""
        config = context.config
        cluster = context.endpoints(ClusterEndpoints)
        keycloak = context.endpoints(KeycloakEndpoints)
        minio = context.endpoints(MinioEndpoints)
        redis = urlsplit(context.endpoints(RedisEndpoints).url)
        client = keycloak.clients[0] if keycloak.clients else None

        def fixed(value: object) -> Callable[[], str]:
            return lambda: str(value)

        def first_client(attribute: str) -> Callable[[], str]:
            def value() -> str:
                if client is None:
                    raise templates.Unfilled(f"client.{attribute}", "keycloak.clients is empty")
                return str(getattr(client, attribute))

            return value

        values: dict[str, Callable[[], str]] = {
            "environment.name": fixed(config.name),
            "implementation.name": fixed(self.name),
            "implementation.url": lambda: self.url(context),
            "implementation.port": lambda: str(self.port(context)),
            "keycloak.url": fixed(keycloak.url),
            "keycloak.realm": fixed(keycloak.realm),
            "keycloak.issuer": fixed(keycloak.issuer),
            "keycloak.tokenUrl": fixed(keycloak.network_token_url),
            "keycloak.publicTokenUrl": fixed(keycloak.token_url),
            "keycloak.jwksUrl": fixed(keycloak.network_jwks_url),
            "keycloak.realmPublicKey": lambda: realm_public_key(keycloak),
            "keycloak.realmPublicKeyPem": lambda: pem(realm_public_key(keycloak)),
            "keycloak.audience": fixed(config.keycloak.audience or ""),
            "client.id": first_client("client_id"),
            "client.secret": first_client("secret"),
            "cluster.name": fixed(cluster.system),
            "cluster.slurmVersion": fixed(config.cluster.slurm),
            "ssh.host": fixed(cluster.network_ssh_host),
            "ssh.port": fixed(cluster.network_ssh_port),
            "ssh.hostKey": fixed(cluster.ssh.host_key),
            "ssh.caPrivateKey": lambda: context.state.user_ca.private_path.read_text(),
            "ssh.caPublicKey": lambda: context.state.user_ca.public_line(),
            "sshca.url": lambda: context.endpoints(SshcaEndpoints).network_url,
            "slurmrestd.url": lambda: slurmrestd_url(cluster),
            "s3.privateUrl": fixed(minio.network_url),
            "s3.publicUrl": fixed(minio.url),
            "s3.accessKey": fixed(minio.access_key),
            "s3.secretKey": fixed(minio.secret_key),
            "s3.region": fixed(minio.region),
            "redis.url": fixed(redis.geturl()),
            "redis.host": fixed(redis.hostname),
            "redis.port": fixed(redis.port),
        }
        for user in config.users:
            values |= user_values(context, user.name, user.password)
        for process in self.entry.processes:
            values[f"processes.{process.name}.url"] = fixed(
                f"http://{self.node(process)}:{process.port}"
            )
        return values


def tree_version(tree: Path) -> str:
    """A digest of the tree's files (paths, sizes, modification times); hidden
    folders (.git, .venv) and caches are left out."""
    digest = hashlib.sha256()
    for folder, subfolders, files in os.walk(tree):
        subfolders[:] = sorted(
            name for name in subfolders if not name.startswith(".") and name not in CACHES
        )
        for name in sorted(files):
            path = Path(folder, name)
            with contextlib.suppress(OSError):  # a dangling link, or gone meanwhile
                found = path.stat()
                line = f"{path.relative_to(tree)}\0{found.st_size}\0{found.st_mtime_ns}\n"
                digest.update(line.encode())
    return digest.hexdigest()[:16]


def user_values(context: Context, user: str, password: str) -> dict[str, Callable[[], str]]:
    def static_key(public: bool) -> Callable[[], str]:
        def value() -> str:
            if context.config.cluster.ssh_auth != "static-key":
                raise templates.Unfilled(
                    f"users.{user}.ssh{'Public' if public else 'Private'}Key",
                    "users have static keys only with cluster.sshAuth: static-key",
                )
            pair = context.state.user_key(user)
            return pair.public_line() if public else pair.private_path.read_text()

        return value

    return {
        f"users.{user}.name": lambda: user,
        f"users.{user}.password": lambda: password,
        f"users.{user}.sshPrivateKey": static_key(public=False),
        f"users.{user}.sshPublicKey": static_key(public=True),
    }


def slurmrestd_url(cluster: ClusterEndpoints) -> str:
    if cluster.network_slurmrestd_url is None:
        raise templates.Unfilled(
            "slurmrestd.url", 'the cluster runs no slurmrestd (set cluster.slurm: "24.11")'
        )
    return cluster.network_slurmrestd_url


def realm_public_key(keycloak: KeycloakEndpoints) -> str:
    """The realm's RSA signing key as Keycloak publishes it (base64 DER)."""
    response = requests.get(f"{keycloak.url}/realms/{keycloak.realm}", timeout=15)
    response.raise_for_status()
    key: str = response.json()["public_key"]
    return key


def pem(der_base64: str) -> str:
    lines = textwrap.wrap(base64.b64encode(base64.b64decode(der_base64)).decode(), 64)
    return "\n".join(["-----BEGIN PUBLIC KEY-----", *lines, "-----END PUBLIC KEY-----"])


def implementations(config: EnvironmentConfig, others: Sequence[Component]) -> list[Component]:
    """The config's implementations as components; none may take the name of another."""
    taken = {component.name for component in others}
    for index, entry in enumerate(config.implementations):
        if entry.name in taken:
            raise TestbuildError(
                "config",
                f"implementations[{index}].name: '{entry.name}' is the name of a component",
                fix=f"give it another name (not one of {', '.join(sorted(taken))})",
            )
    return [HostedImplementation(entry, i) for i, entry in enumerate(config.implementations)]
