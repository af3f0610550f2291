"""Containers, networks and volumes of one environment, found by label.

Nothing is remembered between runs: every resource carries the environment's
label, so `down` (or the next `up` after a crash) finds what to remove by
asking the engine. Names derive from the environment name, never fixed, and
the engine picks the subnet, so two environments run side by side.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import docker
from docker.errors import APIError, NotFound
from docker.models.containers import Container

from firecrest_testbuild.harness.archive import Files, pack
from firecrest_testbuild.harness.errors import TestbuildError

ENVIRONMENT_LABEL = "org.testbuild.environment"
COMPONENT_LABEL = "org.testbuild.component"
NODE_LABEL = "org.testbuild.node"
SPEC_LABEL = "org.testbuild.spec"
FILES_FOLDER = "/etc/testbuild"


@dataclass(frozen=True)
class PortBinding:
    container_port: int
    host_ip: str
    host_port: int  # 0: the engine picks a free port
    config_key: str  # where the user sets it, for error messages


@dataclass(frozen=True)
class Forward:
    """A service published on the host at bind_address:port, made reachable at the
    same address inside containers, so one URL (and one S3v4 signature, one
    token issuer) works on both sides."""

    address: str
    port: int
    target_host: str
    target_port: int

    def line(self) -> str:
        return f"{self.address} {self.port} {self.target_host} {self.target_port}"


@dataclass(frozen=True)
class ContainerSpec:
    """Everything that defines one container; a change means recreating it."""

    component: str
    node: str
    image: str
    command: list[str]
    hostname: str
    volumes: dict[str, str] = field(default_factory=dict)  # volume purpose -> mount path
    ports: tuple[PortBinding, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)
    files: Files = field(default_factory=dict)  # copied under /etc/testbuild before start

    def fingerprint(self, image_id: str) -> str:
        content = {
            "image": image_id,
            "command": self.command,
            "hostname": self.hostname,
            "volumes": self.volumes,
            "environment": self.environment,
            "ports": [vars(port) for port in self.ports],
            "files": {
                name: hashlib.sha256(data).hexdigest() + oct(mode)
                for name, (data, mode) in self.files.items()
            },
        }
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


class Runtime:
    """The engine-side resources of the environment called `name`."""

    def __init__(self, client: docker.DockerClient | None, name: str) -> None:
        self.client = client
        self.name = name

    @property
    def network_name(self) -> str:
        return f"testbuild-{self.name}"

    def container_name(self, node: str) -> str:
        return f"testbuild-{self.name}-{node}"

    def volume_name(self, purpose: str) -> str:
        return f"testbuild-{self.name}-{purpose}"

    def labels(self, **extra: str) -> dict[str, str]:
        return {ENVIRONMENT_LABEL: self.name, **extra}

    def _filter(self, **extra: str) -> dict[str, list[str]]:
        return {"label": [f"{key}={value}" for key, value in self.labels(**extra).items()]}

    def ensure_network(self) -> None:
        if not self.client.networks.list(names=[self.network_name], filters=self._filter()):
            self.client.networks.create(self.network_name, driver="bridge", labels=self.labels())

    def ensure_volume(self, purpose: str) -> None:
        name = self.volume_name(purpose)
        try:
            self.client.volumes.get(name)
        except NotFound:
            self.client.volumes.create(name, labels=self.labels(**{COMPONENT_LABEL: purpose}))

    def containers(self, component: str | None = None) -> list[Container]:
        extra = {COMPONENT_LABEL: component} if component else {}
        return self.client.containers.list(all=True, filters=self._filter(**extra))

    def container(self, node: str) -> Container:
        found = self.client.containers.list(all=True, filters=self._filter(**{NODE_LABEL: node}))
        if not found:
            raise TestbuildError(
                node, f"environment '{self.name}' has no node '{node}'", fix="run 'testbuild up'"
            )
        return found[0]

    def ensure_container(self, spec: ContainerSpec) -> tuple[Container, bool]:
        """A running container for `spec`; True when it was (re)created."""
        fingerprint = spec.fingerprint(self.client.images.get(spec.image).id)
        existing = self.client.containers.list(
            all=True, filters=self._filter(**{NODE_LABEL: spec.node})
        )
        for container in existing:
            if container.labels.get(SPEC_LABEL) == fingerprint and container.status == "running":
                return container, False
            container.remove(force=True, v=False)
        return self._create(spec, fingerprint), True

    def remove_containers_except(self, component: str, keep: set[str]) -> None:
        for container in self.containers(component):
            if container.labels.get(NODE_LABEL) not in keep:
                container.remove(force=True)

    def _create(self, spec: ContainerSpec, fingerprint: str) -> Container:
        api = self.client.api
        host_config = api.create_host_config(
            init=True,
            binds={
                self.volume_name(purpose): {"bind": path, "mode": "rw"}
                for purpose, path in spec.volumes.items()
            },
            port_bindings={
                f"{port.container_port}/tcp": (port.host_ip, port.host_port) for port in spec.ports
            },
        )
        networking = api.create_networking_config(
            {self.network_name: api.create_endpoint_config(aliases=[spec.hostname])}
        )
        created = api.create_container(
            spec.image,
            command=spec.command,
            environment=spec.environment,
            name=self.container_name(spec.node),
            hostname=spec.hostname,
            labels=self.labels(
                **{COMPONENT_LABEL: spec.component, NODE_LABEL: spec.node, SPEC_LABEL: fingerprint}
            ),
            ports=[port.container_port for port in spec.ports],
            host_config=host_config,
            networking_config=networking,
        )
        container = self.client.containers.get(created["Id"])
        if spec.files:
            container.put_archive(FILES_FOLDER, pack(spec.files))
        try:
            container.start()
        except APIError as error:
            container.remove(force=True)
            raise _start_error(spec, error) from error
        return container

    def published_port(self, node: str, container_port: int) -> int:
        container = self.container(node)
        container.reload()
        bindings = container.attrs["NetworkSettings"]["Ports"].get(f"{container_port}/tcp") or []
        if not bindings:
            raise TestbuildError(node, f"port {container_port} is not published")
        return int(bindings[0]["HostPort"])

    def down(self) -> list[str]:
        """Remove every container, network and volume of the environment."""
        removed = []
        for kind, resource in self._resources():
            resource.remove(**_REMOVE_OPTIONS[kind])
            removed.append(f"{kind} {resource.name}")
        return removed

    def leftovers(self) -> list[str]:
        """What still carries the environment's label (empty after `down`)."""
        return [f"{kind} {resource.name}" for kind, resource in self._resources()]

    def _resources(self) -> list[tuple[str, Any]]:
        labelled = self._filter()
        return (
            [("container", c) for c in self.containers()]
            + [("network", n) for n in self.client.networks.list(filters=labelled)]
            + [("volume", v) for v in self.client.volumes.list(filters=labelled)]
        )


_REMOVE_OPTIONS: dict[str, dict[str, bool]] = {
    "container": {"force": True, "v": True},
    "network": {},
    "volume": {"force": True},
}


def _start_error(spec: ContainerSpec, error: APIError) -> TestbuildError:
    text = str(getattr(error, "explanation", None) or error)
    port_taken = "address already in use" in text or "port is already allocated" in text
    if port_taken and spec.ports:
        ports = ", ".join(f"{port.host_ip}:{port.host_port}" for port in spec.ports)
        keys = ", ".join(port.config_key for port in spec.ports)
        return TestbuildError(
            spec.component,
            f"{spec.node} cannot publish its ports: {ports} is already in use",
            fix=f"stop what uses it, or set {keys} to another port (0 picks a free one)",
        )
    return TestbuildError(spec.component, f"cannot start {spec.node}: {text[:300]}")
