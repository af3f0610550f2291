"""Redis: the service stack's task store (Debian's redis-server).

Reachable only inside the environment's network (redis:6379); its
append-only file lives on a volume, so tasks outlive a restart of the API
and of Redis itself.
"""

from __future__ import annotations

from firecrest_testbuild.harness.components import Context
from firecrest_testbuild.harness.config import EnvironmentConfig
from firecrest_testbuild.harness.contracts import RedisEndpoints
from firecrest_testbuild.harness.images import ImageSpec
from firecrest_testbuild.harness.readiness import Probe
from firecrest_testbuild.harness.runtime import ContainerSpec, Forward

NAME = "redis"
NODE = "redis"
PORT = 6379

IMAGE = ImageSpec("redis", debian_release="trixie")


class RedisComponent:
    name = NAME
    requires: tuple[str, ...] = ()
    starts_after: tuple[str, ...] = ()

    def image(self, config: EnvironmentConfig) -> ImageSpec:
        return IMAGE

    volumes = ("redis-data",)
    endpoints_type = RedisEndpoints

    def forwards(self, context: Context) -> list[Forward]:
        return []

    def containers(self, context: Context) -> list[ContainerSpec]:
        return [
            ContainerSpec(
                component=NAME,
                node=NODE,
                image=context.images[IMAGE.repository],
                command=[],
                hostname=NODE,
                volumes={"redis-data": "/data"},
            )
        ]

    def started(self, context: Context) -> list[Probe]:
        return [Probe(NAME, "Redis answers PING", lambda: self._pong(context))]

    def seed(self, context: Context) -> None:
        return None  # the stack creates what it stores

    def ready(self, context: Context) -> list[Probe]:
        return []  # answering PING is all the stack needs

    def endpoints(self, context: Context) -> RedisEndpoints:
        return RedisEndpoints(f"redis://{NODE}:{PORT}/0", "the environment's network only")

    def _pong(self, context: Context) -> str | None:
        result = context.runtime.execute(NODE, ["redis-cli", "ping"])
        output = result.output.strip()
        return None if output == "PONG" else output or f"exit {result.exit_code}"


COMPONENT = RedisComponent()
