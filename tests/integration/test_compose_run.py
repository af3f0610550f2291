"""The generated compose file, run: Debian's Compose v2 (the helper image of
harness/compose.py, against the host's engine) brings its services up from
the node files `compose --write` made, the cluster runs a job, Keycloak, MinIO
and Redis answer, and `down -v` leaves nothing labelled with the environment.

Every service but the stack is started (named on `up`'s command line): the
stack is of use only after the harness has seeded Keycloak's realm and
MinIO's buckets, which the compose file does not do.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml
from docker.models.containers import Container

from firecrest_testbuild.harness import compose
from firecrest_testbuild.harness.environment import Environment
from firecrest_testbuild.harness.errors import TestbuildError
from firecrest_testbuild.harness.images import ImageBuilder
from firecrest_testbuild.harness.progress import Progress
from firecrest_testbuild.harness.runtime import run_in
from tests.integration.conftest import environment_for, eventually, login_node, output_of

pytestmark = pytest.mark.integration

COMPONENTS = ("cluster", "keycloak", "minio", "redis")
SERVICES = ("controller", "c1", "keycloak", "minio", "redis")
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"


@dataclass(frozen=True)
class Composed:
    environment: Environment
    runner: compose.ComposeRunner


@pytest.fixture
def composed(tmp_path: Path) -> Iterator[Composed]:
    environment = environment_for(tmp_path / "state", "cluster: {computeNodes: 1}\n")
    client = environment.client
    builder = ImageBuilder(client, environment.config.images, Progress())
    for component in COMPONENTS:  # the file names each image's :latest
        builder.ensure(environment.component(component).image(environment.config))
    runner_image = builder.ensure(compose.runner_image())
    folder = tmp_path / "compose"
    folder.mkdir()
    compose_file = folder / "docker-compose.yml"
    node_files = tmp_path / "nodes"
    cpus = int(client.info().get("NCPU", 1))
    compose_file.write_text(environment.compose_file(engine_cpus=cpus, node_files=node_files))
    runner = compose.ComposeRunner(
        client,
        runner_image,
        compose_file,
        f"testbuild-{environment.config.name}",
        node_files=node_files,
    )
    yield Composed(environment, runner)
    # When the test failed before its own `down`: leave nothing behind either.
    with contextlib.suppress(TestbuildError):
        runner.down()
    environment.runtime.down()


def run(container: Container, command: list[str]) -> str:
    return output_of(container, command).strip()


def as_user(container: Container, user: str, command: str) -> str:
    return run(container, ["su", "-", user, "-c", command])


def until(
    what: str, check: Callable[[], str | None], environment: Environment, timeout: float
) -> None:
    """Wait until check() answers None; fail with its last answer and the logs
    after `timeout`, or at once when a container stopped."""
    deadline = time.monotonic() + timeout
    while True:
        containers = environment.runtime.containers()
        stopped = [c.name for c in containers if c.status != "running"]
        problem = "(not asked)" if stopped else check()
        if problem is None:
            return
        if stopped or time.monotonic() > deadline:
            logs = "\n".join(
                f"==> {c.name} ({c.status})\n{c.logs(tail=20).decode(errors='replace')}"
                for c in containers
            )
            why = f"{', '.join(stopped)} stopped" if stopped else f"{timeout:.0f}s passed"
            pytest.fail(f"{what}: still {problem!r} and {why}\n{logs}")
        time.sleep(0.5)


def nodes_not_idle(container: Container) -> str | None:
    """None once c1 is idle in every partition; else what sinfo says."""
    result = run_in(container, ["sinfo", "--noheader", "--Node", "--format=%N %t"])
    lines = set(result.output.strip().splitlines())
    return None if result.exit_code == 0 and lines == {"c1 idle"} else ", ".join(sorted(lines))


def job_state(container: Container, job: str) -> str | None:
    """None once the job is COMPLETED in accounting; else its state there."""
    state = as_user(container, "test1", f"sacct -n -X -P -j {job} -o State")
    return None if state == "COMPLETED" else state or "(not in sacct yet)"


def published(container: Container, port: int) -> str:
    """The host port Compose published the container's `port` on."""
    return str(container.attrs["NetworkSettings"]["Ports"][f"{port}/tcp"][0]["HostPort"])


def not_answering(url: str) -> str | None:
    """None once url answers 200."""
    try:
        status = requests.get(url, timeout=5).status_code
    except requests.RequestException as error:
        return type(error).__name__
    return None if status == 200 else f"HTTP {status}"


def test_compose_up_runs_a_job_and_down_leaves_nothing(composed: Composed):
    environment, runner = composed.environment, composed.runner
    runtime = environment.runtime

    # Without the node-files folder, Compose refuses the file and says what to do.
    unset = compose.ComposeRunner(
        runner.client, runner.image, runner.compose_file, runner.project
    ).call("config", "--quiet")
    assert unset.exit_code != 0
    assert "testbuild compose --write" in unset.output

    started = time.monotonic()
    runner.up(*SERVICES)
    up_took = time.monotonic() - started

    controller = runtime.container("controller")
    assert controller.labels[COMPOSE_PROJECT_LABEL] == runner.project  # Compose made it
    assert {c.labels["org.testbuild.node"] for c in runtime.containers()} == set(SERVICES)
    until("c1 idle in sinfo", lambda: nodes_not_idle(controller), environment, timeout=120)

    # A seeded user (users.tsv was in the node files) submits a job; accounting has it.
    job = as_user(
        controller,
        "test1",
        "sbatch --parsable --chdir=/home/test1 --output=compose-%j.out --wrap hostname",
    )
    assert job.isdigit(), job
    until(f"job {job} COMPLETED", lambda: job_state(controller, job), environment, timeout=60)
    assert run(controller, ["cat", f"/home/test1/compose-{job}.out"]) == "c1"
    assert run(controller, ["stat", "-c", "%U", f"/home/test1/compose-{job}.out"]) == "test1"

    # The published SSH port takes the environment's certificates, as after `testbuild up`.
    login = login_node(environment)
    eventually(lambda: login.run("test1", "id -un").stdout.strip() == "test1", timeout=30)

    # Keycloak and MinIO got their env_file (admin user, keys) and answer on their
    # published ports, from the host and through the cluster's forwards; Redis answers.
    assert runner.node_files is not None
    for node in ("keycloak", "minio"):
        written = (runner.node_files / f"{node}.env").read_text().splitlines()
        assert written
        assert set(written) <= set(runtime.container(node).attrs["Config"]["Env"])
    address = environment.config.bind_address
    ports = yaml.safe_load(runner.compose_file.read_text())["services"]["controller"]["ports"]
    assert ports == [f"{address}:{published(controller, 22)}:22"]  # the file's own port
    keycloak = (
        f"http://{address}:{published(runtime.container('keycloak'), 8080)}/auth/realms/master"
    )
    minio = f"http://{address}:{published(runtime.container('minio'), 9000)}/minio/health/ready"
    until("Keycloak answers", lambda: not_answering(keycloak), environment, timeout=120)
    until("MinIO answers", lambda: not_answering(minio), environment, timeout=60)
    curl = ["curl", "-fsS", "-o", "/dev/null", "-w", "%{http_code}"]
    assert run(runtime.container("c1"), [*curl, keycloak]) == "200"
    assert run(runtime.container("redis"), ["redis-cli", "ping"]) == "PONG"

    kinds = {item.split()[0] for item in runtime.leftovers()}
    assert kinds == {"container", "network", "volume"}, runtime.leftovers()

    started = time.monotonic()
    runner.down()
    down_took = time.monotonic() - started
    assert runtime.leftovers() == []
    for label in (COMPOSE_PROJECT_LABEL, compose.RUNNER_LABEL):
        selector = {"label": f"{label}={runner.project}"}
        assert not runner.client.containers.list(all=True, filters=selector)
    assert not runner.client.networks.list(filters={"name": runner.project})
    assert not runner.client.volumes.list(filters={"name": runner.project})
    print(f"compose {runner.project}: up {up_took:.1f}s, down {down_took:.1f}s")
