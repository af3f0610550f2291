"""Components of an environment: one module each, all of the same shape.

A component names its image, the containers it runs, the probes that say it
has started and is ready, how it is seeded from the users file, and the
endpoints a client needs. The environment drives them in that order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from firecrest_testbuild.harness.config import EnvironmentConfig
from firecrest_testbuild.harness.images import ImageSpec
from firecrest_testbuild.harness.readiness import Probe
from firecrest_testbuild.harness.runtime import ContainerSpec, Forward, Runtime
from firecrest_testbuild.harness.state import EnvironmentState


@dataclass(frozen=True)
class Context:
    """What every component step may use."""

    config: EnvironmentConfig
    state: EnvironmentState
    runtime: Runtime
    images: dict[str, str]  # image folder -> built tag
    engine_cpus: int
    forwards: tuple[Forward, ...] = ()  # every component's host URLs, for inside containers

    def port(self, key: str, configured: int) -> int:
        """The host port for a config key (0: a free one, picked once)."""
        return self.state.port(key, configured, self.config.bind_address)


class Component(Protocol):
    name: str
    image: ImageSpec
    volumes: tuple[str, ...]

    def forwards(self, context: Context) -> list[Forward]: ...

    def containers(self, context: Context) -> list[ContainerSpec]: ...

    def started(self, context: Context) -> list[Probe]: ...

    def seed(self, context: Context) -> None: ...

    def ready(self, context: Context) -> list[Probe]: ...

    def endpoints(self, context: Context) -> dict[str, Any]: ...


def all_components() -> list[Component]:
    from firecrest_testbuild.harness.components.cluster import ClusterComponent
    from firecrest_testbuild.harness.components.keycloak import KeycloakComponent
    from firecrest_testbuild.harness.components.minio import MinioComponent
    from firecrest_testbuild.harness.components.redis import RedisComponent
    from firecrest_testbuild.harness.components.stack import StackComponent

    # Order matters for readiness: the stack is ready only once the cluster,
    # Keycloak and Redis are.
    return [
        ClusterComponent(),
        KeycloakComponent(),
        MinioComponent(),
        RedisComponent(),
        StackComponent(),
    ]
