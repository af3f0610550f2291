"""Containers, networks and volumes of one environment, found by label.

Nothing is remembered between runs: every resource carries the environment's
label, so `down` (or the next `up` after a crash) finds what to remove by
asking the engine. Names derive from the environment name, never fixed, and
the engine picks the subnet, so two environments run side by side.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import docker
from docker.errors import APIError, NotFound
from docker.models.containers import Container
from docker.models.networks import Network
from docker.models.volumes import Volume

from firecrest_testbuild.harness.archive import Files, file_in, pack
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
    # Host folders mounted read-only (host path -> path in the container): a
    # hosted implementation's source tree.
    mounts: dict[str, str] = field(default_factory=dict)

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
        if self.mounts:  # only then: the fingerprints of other containers stay as they were
            content["mounts"] = self.mounts
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Executed:
    """A finished command in a container: its exit code and its output (both streams)."""

    exit_code: int | None
    output: str


# run_in's command line: the command's output (both streams) goes to a file
# ($0), which is then printed with the file's path after it as the end mark.
# Files older than a few minutes are removed by a later call in the same
# container: an exec of its own for that would double what a call costs
# (each exec is about 55 ms of CPU here).
EXEC_OUTPUT = "/tmp/testbuild-exec-"
_RUN_KEEPING_OUTPUT = (
    f"find /tmp -maxdepth 1 -name '{EXEC_OUTPUT.removeprefix('/tmp/')}*' -mmin +5 -delete"
    ' 2>/dev/null; "$@" >"$0" 2>&1; status=$?; cat "$0"; printf \'\\n%s\\n\' "$0"; exit $status'
)


def run_in(container: Container, command: Sequence[str]) -> Executed:
    """Run `command` in `container` and wait for it to finish.

    On a loaded machine Docker 20.10 now and then ends an exec's attached
    stream before the output is copied (exit code 0, no output: 5 of 1,760
    `stat` calls from four threads beside six busy loops on two cores), and
    tests and probes that read a command's answer failed. So the output is
    kept in a file in the container too: when the stream lacks the end mark,
    the output is read from that file through the engine's archive API.
    The container needs `sh` and a writable /tmp (every image here has both)."""
    output = f"{EXEC_OUTPUT}{uuid.uuid4().hex}"
    exit_code, streamed = container.exec_run(["sh", "-c", _RUN_KEEPING_OUTPUT, output, *command])
    text = streamed if isinstance(streamed, bytes) else b"".join(streamed)  # not streamed
    mark = f"\n{output}\n".encode()
    if text.endswith(mark):
        return Executed(exit_code, text.removesuffix(mark).decode(errors="replace"))
    # No file: sh could not write it, and what it said is in the stream.
    with contextlib.suppress(NotFound):
        text = file_in(container, output)
    return Executed(exit_code, text.decode(errors="replace"))


class Runtime:
    """The engine-side resources of the environment called `name`."""

    def __init__(self, client: docker.DockerClient | None, name: str) -> None:
        self._client = client  # None: names and labels only (a compose file needs no engine)
        self.name = name

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            raise RuntimeError(f"the runtime of '{self.name}' was made without an engine")
        return self._client

    @property
    def network_name(self) -> str:
        return f"testbuild-{self.name}"

    def container_name(self, node: str) -> str:
        return f"testbuild-{self.name}-{node}"

    def volume_name(self, purpose: str) -> str:
        return f"testbuild-{self.name}-{purpose}"

    def labels(self, **extra: str) -> dict[str, str]:
        return {ENVIRONMENT_LABEL: self.name, **extra}

    def _filter(self, **extra: str) -> dict[str, str | list[str] | bool]:
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
        # ignore_removed: another environment's `down` may remove a container
        # between the engine's list and its inspection (docker-py lists, then
        # inspects each); it is gone, not an error.
        extra = {COMPONENT_LABEL: component} if component else {}
        return self.client.containers.list(
            all=True, filters=self._filter(**extra), ignore_removed=True
        )

    def container(self, node: str) -> Container:
        found = self.client.containers.list(
            all=True, filters=self._filter(**{NODE_LABEL: node}), ignore_removed=True
        )
        if not found:
            raise TestbuildError(
                node, f"environment '{self.name}' has no node '{node}'", fix="run 'testbuild up'"
            )
        return found[0]

    def execute(self, node: str, command: list[str]) -> Executed:
        """Run `command` in the node's container and wait for it to finish (run_in)."""
        return run_in(self.container(node), command)

    def ensure_container(self, spec: ContainerSpec) -> tuple[Container, bool]:
        """A running container for `spec`; True when it was (re)created."""
        image_id: str = self.client.images.get(spec.image).attrs["Id"]
        fingerprint = spec.fingerprint(image_id)
        existing = self.client.containers.list(
            all=True, filters=self._filter(**{NODE_LABEL: spec.node}), ignore_removed=True
        )
        for container in existing:
            if container.labels.get(SPEC_LABEL) == fingerprint and container.status == "running":
                return container, False
            container.remove(force=True, v=False)
        return self._create(spec, fingerprint), True

    def status(self) -> list[dict[str, str]]:
        """One row per container: its node, name, state and image."""
        return [
            {
                "node": container.labels.get(NODE_LABEL, "?"),
                "container": container.name or "?",
                "state": container.status,
                "image": _image_name(container),
            }
            for container in sorted(self.containers(), key=lambda c: c.name or "")
        ]

    def logs(self, node_or_component: str, tail: int) -> str:
        """The last `tail` log lines of each container of a node or a component."""
        containers = [
            container
            for container in self.containers()
            if node_or_component
            in (container.labels.get(NODE_LABEL), container.labels.get(COMPONENT_LABEL))
        ]
        if not containers:
            known = sorted({c.labels.get(NODE_LABEL, "") for c in self.containers()})
            raise TestbuildError(
                node_or_component,
                f"no such component or node in environment '{self.name}'",
                fix=f"use one of: {', '.join(known) or '(nothing is up: run testbuild up)'}",
            )
        return "\n".join(f"==> {c.name} <==\n{log_tail(c, tail)}" for c in containers)

    def remove_containers_except(self, component: str, keep: set[str]) -> None:
        for container in self.containers(component):
            if container.labels.get(NODE_LABEL) not in keep:
                container.remove(force=True)

    def _create(self, spec: ContainerSpec, fingerprint: str) -> Container:
        api = self.client.api
        host_config = api.create_host_config(
            init=True,
            binds={
                **{
                    self.volume_name(purpose): {"bind": path, "mode": "rw"}
                    for purpose, path in spec.volumes.items()
                },
                **{host: {"bind": path, "mode": "ro"} for host, path in spec.mounts.items()},
            },
            port_bindings={
                f"{port.container_port}/tcp": (port.host_ip, port.host_port) for port in spec.ports
            },
        )
        # types-docker says one EndpointConfig; docker-py takes {network name: config}.
        networking = api.create_networking_config(
            {self.network_name: api.create_endpoint_config(aliases=[spec.hostname])}  # type: ignore[arg-type]
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
            # From the root, so that images without the folder (a hosted
            # implementation's) get it made, and nested paths their folders.
            folder = FILES_FOLDER.lstrip("/")
            container.put_archive(
                "/", pack({f"{folder}/{name}": file for name, file in spec.files.items()})
            )
        try:
            container.start()
        except APIError as error:
            container.remove(force=True)
            raise _start_error(spec, error) from error
        return container

    def down(self) -> list[str]:
        """Remove every container, network and volume of the environment."""
        containers, networks, volumes = self._labelled()
        for container in containers:
            container.remove(force=True, v=True)
        for network in networks:
            network.remove()
        for volume in volumes:
            volume.remove(force=True)
        return _described(containers, networks, volumes)

    def leftovers(self) -> list[str]:
        """What still carries the environment's label (empty after `down`)."""
        return _described(*self._labelled())

    def _labelled(self) -> tuple[list[Container], list[Network], list[Volume]]:
        labelled = self._filter()
        return (
            self.containers(),
            self.client.networks.list(filters=labelled),
            self.client.volumes.list(filters=labelled),
        )


def _described(
    containers: list[Container], networks: list[Network], volumes: list[Volume]
) -> list[str]:
    return (
        [f"container {container.name}" for container in containers]
        + [f"network {network.name}" for network in networks]
        + [f"volume {volume.name}" for volume in volumes]
    )


def environments_up(client: docker.DockerClient) -> list[str]:
    """The names of the environments that have containers, from their labels."""
    containers = client.containers.list(
        all=True, filters={"label": ENVIRONMENT_LABEL}, ignore_removed=True
    )
    return sorted({container.labels[ENVIRONMENT_LABEL] for container in containers})


def log_tail(container: Container, lines: int) -> str:
    return container.logs(tail=lines).decode(errors="replace").rstrip()


def _image_name(container: Container) -> str:
    image = container.image
    if image is None:
        return "?"
    return image.tags[0] if image.tags else image.short_id


def _start_error(spec: ContainerSpec, error: APIError) -> TestbuildError:
    text = str(getattr(error, "explanation", None) or error)
    port_taken = "address already in use" in text or "port is already allocated" in text
    if port_taken and spec.ports:
        # The engine names the address it could not bind; name its config key.
        taken = [p for p in spec.ports if f"{p.host_ip}:{p.host_port}" in text] or spec.ports
        ports = " or ".join(f"{port.host_ip}:{port.host_port}" for port in taken)
        keys = " or ".join(port.config_key for port in taken)
        return TestbuildError(
            spec.component,
            f"{spec.node} cannot publish its ports: {ports} is already in use",
            fix=f"stop what uses it, or set {keys} to another port (0 picks a free one)",
        )
    return TestbuildError(spec.component, f"cannot start {spec.node}: {text[:300]}")
