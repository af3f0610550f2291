"""The connection to the Docker engine, with a clear error when none answers."""

from __future__ import annotations

import os

import docker
from docker.errors import DockerException

from firecrest_testbuild.harness.errors import TestbuildError


def connect() -> docker.DockerClient:
    """A client for the engine named by DOCKER_HOST (default: the local socket)."""
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=300)
        client.ping()
    except DockerException as error:
        raise TestbuildError(
            "docker",
            f"no Docker engine answers at {where}",
            fix="run 'make engine' (as root on Debian/Ubuntu it installs and starts"
            " docker.io), or start your own Docker engine",
            details=[str(error).splitlines()[0][:200]],
        ) from error
    return client
