"""What `up` says when the engine cannot start a container; containers
another environment removes while this one lists them."""

from __future__ import annotations

from typing import Any

import pytest
from docker.errors import APIError, NotFound
from docker.models.containers import ContainerCollection

from firecrest_testbuild.harness.runtime import (
    ENVIRONMENT_LABEL,
    NODE_LABEL,
    ContainerSpec,
    PortBinding,
    Runtime,
    _start_error,
    environments_up,
)

CONTROLLER = ContainerSpec(
    component="cluster",
    node="controller",
    image="testbuild/cluster",
    command=[],
    hostname="cluster",
    ports=(
        PortBinding(22, "127.0.0.1", 2222, "cluster.sshPort"),
        PortBinding(6820, "127.0.0.1", 6820, "cluster.slurmrestd.port"),
    ),
)


@pytest.mark.parametrize(
    ("engine_says", "port", "key"),
    [
        ("Bind for 127.0.0.1:6820 failed: port is already allocated", "6820", "slurmrestd.port"),
        (
            "Error starting userland proxy: listen tcp4 127.0.0.1:2222: bind: address already in"
            " use",
            "2222",
            "cluster.sshPort",
        ),
    ],
)
def test_a_taken_port_is_named_with_its_key_and_no_other(engine_says: str, port: str, key: str):
    error = _start_error(CONTROLLER, APIError("500", explanation=engine_says))
    assert f"cannot publish its ports: 127.0.0.1:{port} is already in use" in str(error)
    assert key in str(error.fix)
    other = "2222" if port == "6820" else "6820"
    assert other not in str(error)


def test_when_the_engine_names_no_port_every_port_is_named():
    error = _start_error(CONTROLLER, APIError("500", explanation="port is already allocated"))
    assert "127.0.0.1:2222 or 127.0.0.1:6820 is already in use" in str(error)


class EngineApiWhereOneContainerVanishes:
    """An engine API that lists two containers and has removed one of them by
    the time it is inspected (as another environment's `down` does)."""

    def containers(self, **filters: object) -> list[dict[str, str]]:
        return [{"Id": "gone"}, {"Id": "kept"}]

    def inspect_container(self, container_id: str) -> dict[str, object]:
        if container_id == "gone":
            raise NotFound("No such container: gone")
        labels = {ENVIRONMENT_LABEL: "alpha", NODE_LABEL: "controller"}
        return {"Id": container_id, "Config": {"Labels": labels}}


class Engine:
    """docker-py's own container collection (it lists, then inspects each) over that API."""

    def __init__(self) -> None:
        self.api = EngineApiWhereOneContainerVanishes()
        self.containers = ContainerCollection(client=self)


def test_a_container_removed_while_listing_is_left_out_not_an_error():
    engine: Any = Engine()
    assert environments_up(engine) == ["alpha"]
    assert [container.id for container in Runtime(engine, "alpha").containers()] == ["kept"]
