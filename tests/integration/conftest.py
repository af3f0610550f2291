"""Integration fixtures: real environments with unique names and free ports,
their state in temporary folders, never the user's state home."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from docker.models.containers import Container
from keycloak import KeycloakAdmin

from firecrest_testbuild.harness.components.keycloak import KeycloakComponent
from firecrest_testbuild.harness.components.minio import MinioComponent
from firecrest_testbuild.harness.config import (
    DEFAULT_SLURM,
    SLURM_RELEASES,
    parse,
    with_free_ports,
)
from firecrest_testbuild.harness.contracts import ClusterEndpoints, KeycloakEndpoints
from firecrest_testbuild.harness.environment import Environment
from firecrest_testbuild.harness.progress import Progress
from firecrest_testbuild.harness.runtime import run_in
from firecrest_testbuild.harness.ssh import LoginNode
from firecrest_testbuild.harness.state import STATE_HOME_VARIABLE
from tests.integration.suite_runs import SuiteRuns


@pytest.fixture(scope="session", autouse=True)
def state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's state home, for what does not name one (the CLI, the
    client-project fixture, processes the tests start)."""
    home = tmp_path_factory.mktemp("state-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(STATE_HOME_VARIABLE, str(home))
        yield home


V2_AUDIENCE = "Firecrest-v2"


def environment_for(
    state_home: Path,
    settings: str,
    stack: str = "{}",
    keycloak: str = "{}",
    name: str | None = None,
) -> Environment:
    """An environment of its own: unique name, free ports, state under state_home.
    With `name`, that environment's settings instead (its next `up` applies them)."""
    document = yaml.safe_load(settings) or {}
    document |= {"stack": yaml.safe_load(stack), "keycloak": yaml.safe_load(keycloak)}
    document["name"] = name or f"it-{uuid.uuid4().hex[:8]}"
    config = parse(yaml.safe_dump(with_free_ports(document), sort_keys=False))
    return Environment(config, state_home, Progress())


@pytest.fixture(scope="session")
def session_environment(state_home: Path) -> Iterator[Environment]:
    """The default environment (two compute nodes), up once for the session."""
    env = environment_for(state_home, "cluster: {computeNodes: 2}\n")
    env.up()
    yield env
    env.down()


@pytest.fixture(scope="session")
def environment(session_environment: Environment) -> Environment:
    """What most tests use. (tests/integration/cluster/ overrides it with one
    per Slurm generation; a parametrized override that requested this fixture
    would parametrize it too, and bring the session's environment up again.)"""
    return session_environment


@pytest.fixture(scope="session")
def suite_runs(
    session_environment: Environment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SuiteRuns]:
    """Both generations' conformance runs against the session's environment,
    clean and behind faults, side by side (tests/integration/suite_runs.py):
    test_conformance.py and test_conformance_v2.py read them."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        yield SuiteRuns(session_environment, tmp_path_factory.mktemp("suites"), pool)


@pytest.fixture(scope="session")
def older_slurm_environment(state_home: Path) -> Iterator[Environment]:
    """The Slurm generation that is not the default, two compute nodes like the
    session's: the cluster tests run on both generations."""
    [older] = set(SLURM_RELEASES) - {DEFAULT_SLURM}
    cluster = f"cluster: {{computeNodes: 2, slurm: '{older}'}}\n"
    env = environment_for(state_home, cluster)
    env.up()
    yield env
    env.down()


def keycloak(environment: Environment) -> KeycloakEndpoints:
    return environment.context().endpoints(KeycloakEndpoints)


# One compute node on Slurm 24.11 with slurmrestd, every way v2 and v1
# implementations log in (static keys in authorized_keys and certificates, the
# v1 command protocol and plain commands), tokens that live
# SHORT_TOKEN_LIFESPAN seconds (so that an expiry can be seen), the v2 stack
# through slurmrestd: test_cluster_v2_ssh.py and test_slurmrestd.py share it.
V2_LOGIN_CLUSTER = (
    "cluster: {slurm: '24.11', computeNodes: 1, sshAuth: static-key, sshCommands: both}\n"
)
SHORT_TOKEN_LIFESPAN = 10


def v2_login_environment_for(
    state_home: Path, connection_mode: str, name: str | None = None
) -> Environment:
    """That environment with the v2 stack's connection mode (rest, hybrid)."""
    return environment_for(
        state_home,
        V2_LOGIN_CLUSTER,
        stack=f"{{v2: {{connectionMode: {connection_mode}}}}}",
        keycloak=f"{{accessTokenLifespan: {SHORT_TOKEN_LIFESPAN}}}",
        name=name,
    )


@pytest.fixture(scope="session")
def v2_login_environment(state_home: Path) -> Iterator[Environment]:
    """See V2_LOGIN_CLUSTER. The test that takes it down is marked
    `ends_environment`; the one that switches its stack to hybrid
    `reconfigures_environment` (tests/conftest.py)."""
    env = v2_login_environment_for(state_home, "rest")
    env.up()
    yield env
    env.down()


def split_environment_for(
    state_home: Path, name: str | None = None, implementations: list[Any] | None = None
) -> Environment:
    """The split layout (a container per service behind the gateway), one
    compute node, the extra token audience FirecREST v2 deployments check;
    with `implementations`, those hosted beside it (test_hosting.py)."""
    settings: dict[str, Any] = {"cluster": {"computeNodes": 1}}
    if implementations:
        settings["implementations"] = implementations
    return environment_for(
        state_home,
        yaml.safe_dump(settings),
        stack="{layout: split}",
        keycloak=f"{{audience: {V2_AUDIENCE}}}",
        name=name,
    )


@pytest.fixture(scope="session")
def split_environment(state_home: Path) -> Iterator[Environment]:
    """See split_environment_for: shared by the split, reservations, Keycloak
    and hosting tests (the last of these takes it down: ends_environment)."""
    env = split_environment_for(state_home)
    env.up()
    yield env
    env.down()


def keycloak_of(environment: Environment) -> KeycloakComponent:
    keycloak = environment.component("keycloak")
    assert isinstance(keycloak, KeycloakComponent)
    return keycloak


def minio_of(environment: Environment) -> MinioComponent:
    minio = environment.component("minio")
    assert isinstance(minio, MinioComponent)
    return minio


def login_node(environment: Environment) -> LoginNode:
    return environment.context().endpoints(ClusterEndpoints).login_node()


@pytest.fixture(scope="session")
def login(environment: Environment) -> LoginNode:
    return login_node(environment)


@contextmanager
def short_lived_token(environment: Environment, lifespan: int = 2) -> Iterator[str]:
    """A real client-credentials token that expires after `lifespan` seconds.

    It comes from a client made for it (removed afterwards), so the realm's
    own lifespan stays as configured.
    """
    endpoints = keycloak(environment)
    admin = KeycloakAdmin(
        server_url=endpoints.url + "/",
        username=endpoints.admin.user,
        password=endpoints.admin.password,
        realm_name=endpoints.realm,
        user_realm_name="master",
    )
    client_id = f"short-lived-{uuid.uuid4().hex[:8]}"
    client = admin.create_client(
        {
            "clientId": client_id,
            "secret": "short-lived-secret",
            "publicClient": False,
            "serviceAccountsEnabled": True,
            "standardFlowEnabled": False,
            "attributes": {"access.token.lifespan": str(lifespan)},
        }
    )
    try:
        form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": "short-lived-secret",
        }
        yield requests.post(endpoints.token_url, data=form, timeout=15).json()["access_token"]
    finally:
        admin.delete_client(client)


def output_of(container: Container, command: list[str]) -> str:
    """The output of a command that must succeed, run in the container
    (harness.runtime.run_in: the output survives a loaded engine)."""
    result = run_in(container, command)
    assert result.exit_code == 0, f"{command} failed ({result.exit_code}): {result.output}"
    return result.output


def eventually(check: Callable[[], object], timeout: float = 60, interval: float = 0.5) -> object:
    """The first truthy result of `check`, or fail with the last one after `timeout`
    (at a fixed pace: the suites' one polling helper, scenarios.client.poll)."""
    from firecrest_testbuild.scenarios.client import poll

    return poll(
        check,
        deadline=time.monotonic() + timeout,
        what=f"a truthy result of {getattr(check, '__name__', 'the check')} ({timeout:g} s)",
        interval=interval,
        max_interval=interval,
    )
