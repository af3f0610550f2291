"""Components of an environment: one module each, all of the same shape.

A component names its image, the components it requires, the containers it
runs, the probes that say it has started and is ready, how it is seeded from
the users file, and its typed endpoints. Every module of this package is a
component: it defines `COMPONENT`, named like the module. The environment
starts them in the order their requirements give (see `start_order` and
`bring_up_steps`), and a
component reads what it needs of another through its context, never by
importing the other's module. The environment file's hosted
implementations (harness/hosting.py) are components too, made from its
`implementations:` entries and ordered with these.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from firecrest_testbuild.harness.config import EnvironmentConfig
from firecrest_testbuild.harness.endpoints import E, Endpoints
from firecrest_testbuild.harness.errors import TestbuildError
from firecrest_testbuild.harness.images import ImageSpec
from firecrest_testbuild.harness.readiness import Probe
from firecrest_testbuild.harness.runtime import ContainerSpec, Forward, Runtime
from firecrest_testbuild.harness.state import EnvironmentState


@runtime_checkable
class Component(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def requires(self) -> tuple[str, ...]:
        """Names of the components whose endpoints it reads, and which are ready
        before it is (see `starts_after` for before it starts)."""
        ...

    @property
    def starts_after(self) -> tuple[str, ...]:
        """Names of the required components that must be ready before it is
        probed and seeded: usually all it requires, fewer when what it needs of
        them at start is known before they run (see `bring_up_steps`)."""
        ...

    def image(self, config: EnvironmentConfig) -> ImageSpec:
        """The image its containers run, as the environment's config picks it."""
        ...

    @property
    def volumes(self) -> tuple[str, ...]: ...

    @property
    def endpoints_type(self) -> type[Endpoints]: ...

    def forwards(self, context: Context) -> list[Forward]: ...

    def containers(self, context: Context) -> list[ContainerSpec]: ...

    def started(self, context: Context) -> list[Probe]: ...

    def seed(self, context: Context) -> None: ...

    def ready(self, context: Context) -> list[Probe]: ...

    def endpoints(self, context: Context) -> Endpoints: ...


@dataclass(frozen=True)
class Context:
    """What every component step may use."""

    config: EnvironmentConfig
    state: EnvironmentState
    runtime: Runtime
    images: dict[str, str]  # image folder -> built tag
    engine_cpus: int
    components: tuple[Component, ...]  # in start order
    forwards: tuple[Forward, ...] = ()  # every component's host URLs, for inside containers
    # The component this context was given to: it may read only what it requires.
    reader: Component | None = None

    def port(self, key: str, configured: int) -> int:
        """The host port for a config key (0: a free one, picked once)."""
        return self.state.port(key, configured, self.config.bind_address)

    def given_to(self, component: Component) -> Context:
        return dataclasses.replace(self, reader=component)

    def endpoints(self, kind: type[E]) -> E:
        """The endpoints of the component that publishes `kind`."""
        provider = self._provider(kind)
        if self.reader is not None and provider.name not in self.reader.requires:
            raise TestbuildError(
                self.reader.name,
                f"reads the endpoints of '{provider.name}' without requiring it",
                fix=f"add '{provider.name}' to the requires of {type(self.reader).__name__}",
            )
        endpoints = provider.endpoints(self.given_to(provider))
        if not isinstance(endpoints, kind):
            raise TypeError(f"{provider.name} returned {type(endpoints).__name__}, not {kind}")
        return endpoints

    def _provider(self, kind: type[Endpoints]) -> Component:
        for component in self.components:
            if component.endpoints_type is kind:
                return component
        raise LookupError(f"no component publishes {kind.__name__}")


def discover() -> list[Component]:
    """Every component of this package, in start order."""
    found = []
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        component = getattr(module, "COMPONENT", None)
        if not isinstance(component, Component) or component.name != module_info.name:
            raise TestbuildError(
                "components",
                f"{module.__file__} defines no component named '{module_info.name}'",
                fix=f"define COMPONENT = <its class>() there, with name = '{module_info.name}'",
            )
        found.append(component)
    return start_order(found)


def start_order(components: Iterable[Component]) -> list[Component]:
    """Each component after those it requires; of those free to start, by name."""
    by_name = {component.name: component for component in components}
    _check_requirements_exist(by_name)
    ordered: list[Component] = []
    waiting = sorted(by_name)
    while waiting:
        placed = {component.name for component in ordered}
        free = [name for name in waiting if set(by_name[name].requires) <= placed]
        if not free:
            raise TestbuildError(
                "components",
                f"the requirements form a cycle: {' -> '.join(_cycle(by_name, waiting))}",
                fix="a component may not require, even indirectly, one that requires it",
            )
        ordered.append(by_name[free[0]])
        waiting.remove(free[0])
    return ordered


Step = Literal["start", "ready"]


def bring_up_steps(components: Iterable[Component]) -> list[tuple[Step, Component]]:
    """The order of each component's two steps: "start" (its started probes,
    then its seeding) once the components in its `starts_after` are ready, and
    "ready" (its ready probes) once all it requires are ready.

    A step that may be taken is taken before any "ready" step, and among
    those, components still waiting for what they require go first: they
    start while the components they require come up (the cluster while
    Keycloak boots). Otherwise start order."""
    ordered = start_order(components)
    ready: set[str] = set()
    started: list[Component] = []
    waiting = list(ordered)
    steps: list[tuple[Step, Component]] = []
    while waiting or started:
        startable = [c for c in waiting if set(c.starts_after) <= ready]
        if startable:
            component = min(startable, key=lambda c: set(c.requires) <= ready)
            waiting.remove(component)
            started.append(component)
            steps.append(("start", component))
            continue
        component = next(c for c in started if set(c.requires) <= ready)
        started.remove(component)
        ready.add(component.name)
        steps.append(("ready", component))
    return steps


def _check_requirements_exist(by_name: dict[str, Component]) -> None:
    unknown = [
        f"'{component.name}' requires '{required}'"
        for component in by_name.values()
        for required in component.requires
        if required not in by_name
    ]
    if unknown:
        raise TestbuildError(
            "components",
            f"unknown requirement: {', '.join(unknown)}",
            fix=f"require only components that exist: {', '.join(sorted(by_name))}",
        )
    unrequired = [
        f"'{component.name}' starts after '{other}'"
        for component in by_name.values()
        for other in component.starts_after
        if other not in component.requires
    ]
    if unrequired:
        raise TestbuildError(
            "components",
            f"a component starts after one it does not require: {', '.join(unrequired)}",
            fix="name in starts_after only components that are in requires",
        )


def _cycle(by_name: dict[str, Component], waiting: list[str]) -> list[str]:
    """Names along one cycle among the components that cannot start."""
    path = [waiting[0]]
    while path.count(path[-1]) < 2:
        path.append(next(r for r in sorted(by_name[path[-1]].requires) if r in waiting))
    return path[path.index(path[-1]) :]
