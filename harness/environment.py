"""An environment: the components of one config, brought up and down as stages."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
from docker.models.containers import Container

from firecrest_testbuild.harness import compose, engine, target
from firecrest_testbuild.harness.components import Component, Context, all_components
from firecrest_testbuild.harness.config import EnvironmentConfig
from firecrest_testbuild.harness.errors import TestbuildError
from firecrest_testbuild.harness.images import ImageBuilder
from firecrest_testbuild.harness.progress import Progress
from firecrest_testbuild.harness.readiness import wait_for
from firecrest_testbuild.harness.runtime import NODE_LABEL, Runtime
from firecrest_testbuild.harness.state import EnvironmentState

LOG_TAIL = 25


class Environment:
    """Everything `up` makes for one config, found again by its labels."""

    def __init__(
        self,
        config: EnvironmentConfig,
        base_dir: Path,
        progress: Progress | None = None,
        client: docker.DockerClient | None = None,
    ) -> None:
        self.config = config
        self.progress = progress or Progress()
        self.state = EnvironmentState((base_dir / config.state_dir / config.name).resolve())
        self.components: list[Component] = all_components()
        self._client = client

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = engine.connect()
        return self._client

    @property
    def runtime(self) -> Runtime:
        return Runtime(self.client, self.config.name)

    def up(self, retain_on_failure: bool = False) -> dict[str, Any]:
        """Build what is missing, start every component, seed, wait until ready."""
        stage = self.progress.stage
        with stage("docker engine"):
            fresh = not self.runtime.leftovers()
        try:
            with stage("images"):
                images = self._build_images()
            context = self._context(images)
            with stage("network and volumes"):
                self._ensure_network_and_volumes()
            # Phase by phase across components, so that slow starters
            # (Keycloak's JVM) start while the others are being waited for.
            with stage("containers"):
                for component in self.components:
                    self._start_containers(context, component)
            for component in self.components:
                with stage(f"{component.name}: started"):
                    self._wait(context, component, component.started(context))
                with stage(f"{component.name}: seeded"):
                    component.seed(context)
                with stage(f"{component.name}: ready"):
                    self._wait(context, component, component.ready(context))
        except (TestbuildError, KeyboardInterrupt):
            if fresh and not retain_on_failure:
                self.progress.detail("removing what this run created (use --retain to keep it)")
                self.runtime.down()
            raise
        self._write_target(context)
        return self.endpoints(context)

    def target_file(self) -> Path:
        """The conformance target description `up` writes (see harness/target.py)."""
        return self.state.root / "target.yaml"

    def _write_target(self, context: Context) -> None:
        path = self.target_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(target.render(context))

    def down(self) -> list[str]:
        removed = self.runtime.down()
        self.state.remove()
        return removed

    def status(self) -> list[dict[str, str]]:
        rows = []
        for container in sorted(self.runtime.containers(), key=lambda c: c.name):
            rows.append(
                {
                    "node": container.labels.get(NODE_LABEL, "?"),
                    "container": container.name,
                    "state": container.status,
                    "image": container.image.tags[0]
                    if container.image.tags
                    else container.image.short_id,
                }
            )
        return rows

    def endpoints(self, context: Context | None = None) -> dict[str, Any]:
        context = context or self._context(self._existing_images())
        return {
            "name": self.config.name,
            "state_dir": str(self.state.root),
            "users": [
                {
                    "name": user.name,
                    "uid": user.uid,
                    "password": user.password,
                    "account": user.account,
                }
                | self._static_key(user.name)
                for user in self.config.users
            ],
            **{component.name: component.endpoints(context) for component in self.components},
        }

    def logs(self, node_or_component: str, tail: int = 100) -> str:
        containers = [
            container
            for container in self.runtime.containers()
            if node_or_component
            in (container.labels.get(NODE_LABEL), container.labels.get("org.testbuild.component"))
        ]
        if not containers:
            known = sorted({c.labels.get(NODE_LABEL, "") for c in self.runtime.containers()})
            raise TestbuildError(
                node_or_component,
                f"no such component or node in environment '{self.config.name}'",
                fix=f"use one of: {', '.join(known) or '(nothing is up: run testbuild up)'}",
            )
        return "\n".join(f"==> {c.name} <==\n{_tail(c, tail)}" for c in containers)

    def component(self, name: str) -> Component:
        return next(component for component in self.components if component.name == name)

    def context(self) -> Context:
        return self._context(self._existing_images())

    def _static_key(self, user: str) -> dict[str, str]:
        if self.config.cluster.ssh_auth != "static-key":
            return {}
        return {"ssh_private_key": str(self.state.user_key(user).private_path)}

    def _build_images(self) -> dict[str, str]:
        builder = ImageBuilder(self.client, self.config.images, self.progress)
        return {
            component.image.folder: builder.ensure(component.image) for component in self.components
        }

    def _existing_images(self) -> dict[str, str]:
        return {c.image.folder: f"{c.image.repository}:latest" for c in self.components}

    def _context(self, images: dict[str, str], engine_cpus: int | None = None) -> Context:
        context = Context(
            config=self.config,
            state=self.state,
            runtime=Runtime(self._client, self.config.name) if engine_cpus else self.runtime,
            images=images,
            engine_cpus=engine_cpus or int(self.client.info().get("NCPU", 1)),
        )
        forwards = [forward for c in self.components for forward in c.forwards(context)]
        return dataclasses.replace(context, forwards=tuple(forwards))

    def compose_file(self, engine_cpus: int, write_files: bool = False) -> str:
        """The environment as a compose file; optionally write the node files it mounts."""
        context = self._context(self._existing_images(), engine_cpus)
        specs = [spec for component in self.components for spec in component.containers(context)]
        if write_files:
            table = self.component("cluster").users_table(context)  # type: ignore[attr-defined]
            compose.write_node_files(specs, self.state.root / "nodes", table)
        state_dir = self.config.state_dir
        files_root = state_dir if state_dir.is_absolute() else Path("..") / state_dir
        return compose.render(self.config.name, specs, f"{files_root}/{self.config.name}/nodes")

    def _ensure_network_and_volumes(self) -> None:
        self.runtime.ensure_network()
        for component in self.components:
            for purpose in component.volumes:
                self.runtime.ensure_volume(purpose)

    def _start_containers(self, context: Context, component: Component) -> None:
        specs = component.containers(context)
        self.runtime.remove_containers_except(component.name, {spec.node for spec in specs})
        for spec in specs:
            _, created = self.runtime.ensure_container(spec)
            state = "started" if created else "already running"
            self.progress.detail(f"{component.name}/{spec.node}: {state}")

    def _wait(self, context: Context, component: Component, probes: list) -> None:
        containers = context.runtime.containers(component.name)
        for probe in probes:
            took = wait_for(probe, lambda: self._log_tail(containers), self._exited(containers))
            self.progress.detail(f"{probe.description} ({took:.1f}s)")

    def _exited(self, containers: list[Container]) -> Callable[[], str | None]:
        def check() -> str | None:
            for container in containers:
                container.reload()
                if container.status != "running":
                    code = container.attrs["State"].get("ExitCode")
                    return f"container {container.name} is {container.status} (exit code {code})"
            return None

        return check

    def _log_tail(self, containers: list[Container]) -> list[str]:
        lines = []
        for container in containers:
            lines += [
                f"{container.name}: {line}" for line in _tail(container, LOG_TAIL).splitlines()
            ]
        return lines[-LOG_TAIL * 2 :]


def _tail(container: Container, lines: int) -> str:
    return container.logs(tail=lines).decode(errors="replace").rstrip()
