"""An environment: the components of one config, brought up and down as stages.

`up` brings an environment up from a config and saves that config in the
environment's state folder; commands that only read an environment open it
by name from there (`Environment.open`), its state read-only, and never
create one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import docker
from docker.models.containers import Container

from firecrest_testbuild.harness import compose, engine, hosting, target
from firecrest_testbuild.harness import config as config_module
from firecrest_testbuild.harness.components import (
    Component,
    Context,
    bring_up_steps,
    discover,
    start_order,
)
from firecrest_testbuild.harness.config import EnvironmentConfig, User
from firecrest_testbuild.harness.contracts import StackEndpoints
from firecrest_testbuild.harness.endpoints import EnvironmentEndpoints, UserEndpoints
from firecrest_testbuild.harness.errors import TestbuildError
from firecrest_testbuild.harness.images import ImageBuilder, ImageSpec
from firecrest_testbuild.harness.progress import Progress
from firecrest_testbuild.harness.readiness import Probe, wait_for
from firecrest_testbuild.harness.runtime import Runtime, environments_up, log_tail
from firecrest_testbuild.harness.state import EnvironmentState

LOG_TAIL = 25
SAVED_CONFIG_HEADER = (
    "# Saved by `testbuild up`: the validated config this environment runs with.\n"
)


class Environment:
    """Everything `up` makes for one config, found again by its labels."""

    def __init__(
        self,
        config: EnvironmentConfig,
        state_home: Path | None = None,
        progress: Progress | None = None,
        client: docker.DockerClient | None = None,
        read_only: bool = False,
    ) -> None:
        self.config = config
        self.progress = progress or Progress()
        self.state = EnvironmentState.of(config.name, state_home, writable=not read_only)
        found = discover()
        self.components = start_order([*found, *hosting.implementations(config, found)])
        self._client = client

    @classmethod
    def open(
        cls,
        name: str,
        state_home: Path | None = None,
        progress: Progress | None = None,
        client: docker.DockerClient | None = None,
    ) -> Environment:
        """Environment `name` as `up` left it, for commands that only read it."""
        client = client or engine.connect()
        state = EnvironmentState.of(name, state_home, writable=False)
        if not state.config_file.is_file() or not Runtime(client, name).containers():
            raise not_up(name, client, state_home)
        config = config_module.load(state.config_file)
        return cls(config, state_home, progress, client, read_only=True)

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = engine.connect()
        return self._client

    @property
    def runtime(self) -> Runtime:
        return Runtime(self.client, self.config.name)

    def up(self, retain_on_failure: bool = False) -> EnvironmentEndpoints:
        """Build what is missing, start every component, seed, wait until ready."""
        stage = self.progress.stage
        with stage("docker engine"):
            fresh = not self.runtime.leftovers()
        try:
            with stage("images"):
                images = self.build_images()
            context = self._context(images)
            with stage("network and volumes"):
                self._ensure_network_and_volumes()
            self.state.write(
                self.state.config_file, SAVED_CONFIG_HEADER + config_module.dump(self.config)
            )
            hosted = self.implementations
            own = [component for component in self.components if component not in hosted]
            # Every container first, so that slow starters (Keycloak's JVM)
            # boot while the others are started, seeded and waited for.
            with stage("containers"):
                for component in own:
                    self._start_containers(context.given_to(component), component)
            for step, component in bring_up_steps(own):
                if step == "start":
                    self._start(context.given_to(component), component)
                else:
                    self._make_ready(context.given_to(component), component)
            # Hosted implementations are configured from what the others
            # answer (the realm's key) and may not wait for them: they start
            # once the others are ready.
            for implementation in hosted:
                with stage(f"{implementation.name}: containers"):
                    self._start_containers(context.given_to(implementation), implementation)
                self._start(context.given_to(implementation), implementation)
                self._make_ready(context.given_to(implementation), implementation)
        except (TestbuildError, KeyboardInterrupt):
            if fresh and not retain_on_failure:
                self.progress.detail("removing what this run created (use --retain to keep it)")
                self.runtime.down()
            raise
        stack = context.endpoints(StackEndpoints)
        self._write_target(self.state.target_file, target.render(context) if stack.url else None)
        v2 = target.render_v2(context) if stack.v2_url else None
        self._write_target(self.state.v2_target_file, v2)
        for implementation in self.implementations:
            self.state.write(
                self.state.implementation_target(implementation.name),
                target.render_hosted(
                    context.given_to(implementation),
                    implementation.entry,
                    implementation.url(context),
                ),
            )
        return self.endpoints(context)

    @property
    def implementations(self) -> list[hosting.HostedImplementation]:
        """The hosted implementations (the config's `implementations:`), in order."""
        return [c for c in self.components if isinstance(c, hosting.HostedImplementation)]

    def implementation_target(self, name: str) -> Path:
        """The target file `up` wrote for hosted implementation `name`."""
        names = [implementation.name for implementation in self.implementations]
        if name not in names:
            raise TestbuildError(
                name,
                f"environment '{self.config.name}' hosts no implementation '{name}'",
                fix=f"name one of its implementations: {', '.join(names)}"
                if names
                else "declare it under implementations: in the environment file, then 'up'",
            )
        return self.state.implementation_target(name)

    def _start(self, context: Context, component: Component) -> None:
        with self.progress.stage(f"{component.name}: started"):
            self._wait(context, component, component.started(context))
        with self.progress.stage(f"{component.name}: seeded"):
            component.seed(context)

    def _make_ready(self, context: Context, component: Component) -> None:
        with self.progress.stage(f"{component.name}: ready"):
            self._wait(context, component, component.ready(context))

    def _write_target(self, path: Path, text: str | None) -> None:
        """A target file of an API the stack serves; none of one it does not."""
        if text is None:
            path.unlink(missing_ok=True)
        else:
            self.state.write(path, text)

    def state_has_target(self, api: str) -> bool:
        """Whether `up` wrote a target file for the stack's API of that generation."""
        return self.state.stack_target(api).exists()

    def target_file(self, api: str = "v1") -> Path:
        """The conformance target description `up` wrote for the stack's API of
        that generation (see harness/target.py)."""
        path = self.state.stack_target(api)
        if not path.exists():
            key = "stack.v2.enabled" if api == "v2" else "stack.v1Enabled"
            raise TestbuildError(
                "stack",
                f"environment '{self.config.name}' serves no FirecREST {api}",
                fix=f"set {key}: true in the environment file, then 'up'",
            )
        return path

    def down(self) -> list[str]:
        return down(self.config.name, self.client, self.state.home)

    def status(self) -> list[dict[str, str]]:
        return self.runtime.status()

    def endpoints(self, context: Context | None = None) -> EnvironmentEndpoints:
        context = context or self.context()
        return EnvironmentEndpoints(
            name=self.config.name,
            state_dir=str(self.state.root),
            users=tuple(self._user_endpoints(user) for user in self.config.users),
            components={c.name: c.endpoints(context.given_to(c)) for c in self.components},
        )

    def component(self, name: str) -> Component:
        return next(component for component in self.components if component.name == name)

    def context(self) -> Context:
        return self._context(self._existing_images())

    def _user_endpoints(self, user: User) -> UserEndpoints:
        static = self.config.cluster.ssh_auth == "static-key"
        key = str(self.state.user_key(user.name).private_path) if static else None
        return UserEndpoints(user.name, user.uid, user.password, user.account, key)

    def build_images(self) -> dict[str, str]:
        """Every image, the independent ones built at the same time."""
        builder = ImageBuilder(self.client, self.config.images, self.progress)
        return builder.ensure_all(self._image_groups())

    def _existing_images(self) -> dict[str, str]:
        return {spec.repository: spec.latest for group in self._image_groups() for spec in group}

    def _image_groups(self) -> list[list[ImageSpec]]:
        # Hosted implementations after the others: one may run an image a component builds.
        hosted = self.implementations
        first = [c.image(self.config) for c in self.components if c not in hosted]
        return [first, [implementation.image(self.config) for implementation in hosted]]

    def _context(
        self,
        images: dict[str, str],
        engine_cpus: int | None = None,
        config: EnvironmentConfig | None = None,
    ) -> Context:
        context = Context(
            config=config or self.config,
            state=self.state,
            runtime=Runtime(self._client, self.config.name) if engine_cpus else self.runtime,
            images=images,
            engine_cpus=engine_cpus or int(self.client.info().get("NCPU", 1)),
            components=tuple(self.components),
        )
        forwards = [forward for c in self.components for forward in c.forwards(context.given_to(c))]
        return dataclasses.replace(context, forwards=tuple(forwards))

    def compose_file(self, engine_cpus: int, node_files: Path | None = None) -> str:
        """The environment as a compose file; with node_files, also write there the
        node files it mounts (the folder TESTBUILD_NODE_FILES names when it runs).

        Without slurmrestd: its auth/jwt checks tokens of the realm the harness
        seeds after start, which a compose run does not."""
        config = self.config.model_copy(
            update={"cluster": self.config.cluster.without_slurmrestd()}
        )
        context = self._context(self._existing_images(), engine_cpus, config)
        specs = [spec for component in self.components for spec in component.containers(context)]
        if node_files is not None:
            table = self.component("cluster").users_table(context)  # type: ignore[attr-defined]
            compose.write_node_files(specs, node_files, table)
        return compose.render(self.config.name, specs)

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

    def _wait(self, context: Context, component: Component, probes: list[Probe]) -> None:
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
                f"{container.name}: {line}" for line in log_tail(container, LOG_TAIL).splitlines()
            ]
        return lines[-LOG_TAIL * 2 :]


def down(name: str, client: docker.DockerClient, state_home: Path | None = None) -> list[str]:
    """Remove what carries the environment's label, and its state folder: whatever
    is left of either, so that it works after a failed `up` or a lost state folder."""
    removed = Runtime(client, name).down()
    EnvironmentState.of(name, state_home).remove()
    return removed


def not_up(
    name: str, client: docker.DockerClient, state_home: Path | None = None
) -> TestbuildError:
    """Why environment `name` cannot be read: it is not up, or its saved config is gone."""
    state = EnvironmentState.of(name, state_home, writable=False)
    if Runtime(client, name).containers() and not state.config_file.is_file():
        return TestbuildError(
            "testbuild",
            f"environment '{name}' has containers but no saved config ({state.config_file})",
            fix=f"remove them with 'testbuild down --name {name}', then run 'testbuild up'",
        )
    others = [other for other in environments_up(client) if other != name]
    if others:
        fix = f"the environments up are {', '.join(others)}: name one with --name NAME"
    else:
        fix = "nothing is up"
    return TestbuildError(
        "testbuild",
        f"no environment '{name}' is up",
        fix=f"{fix}; 'testbuild up' brings up the one of ./testbuild.yaml or -c FILE",
    )
