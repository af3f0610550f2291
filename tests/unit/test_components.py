"""Components: discovered, ordered by their requirements, coupled through typed
endpoints whose JSON is what `testbuild env --json` has always printed."""

from __future__ import annotations

import json
import pkgutil
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from firecrest_testbuild.harness import components
from firecrest_testbuild.harness.cli import _summary
from firecrest_testbuild.harness.components import bring_up_steps, discover, start_order
from firecrest_testbuild.harness.config import parse
from firecrest_testbuild.harness.contracts import KeycloakEndpoints, MinioEndpoints
from firecrest_testbuild.harness.environment import Environment
from firecrest_testbuild.harness.errors import TestbuildError


@dataclass(frozen=True)
class Named:
    """All `start_order` and `bring_up_steps` read of a component."""

    name: str
    requires: tuple[str, ...] = ()
    starts_after: tuple[str, ...] | None = None  # None: all it requires

    def __post_init__(self) -> None:
        if self.starts_after is None:
            object.__setattr__(self, "starts_after", self.requires)


class NoEngine:
    def info(self) -> dict[str, int]:
        return {"NCPU": 2}


def names(components: list[Any]) -> list[str]:
    return [component.name for component in components]


def environment(tmp_path: Path, text: str = "") -> Environment:
    return Environment(parse(text), tmp_path / "state", client=NoEngine())  # type: ignore[arg-type]


def test_every_component_module_is_found_in_requirement_order():
    assert names(discover()) == ["keycloak", "cluster", "minio", "redis", "sshca", "stack"]


def test_a_module_without_its_component_is_named_with_the_fix(monkeypatch: pytest.MonkeyPatch):
    stray = types.ModuleType(f"{components.__name__}.stray")
    stray.__file__ = "harness/components/stray.py"
    monkeypatch.setitem(sys.modules, stray.__name__, stray)
    found = [pkgutil.ModuleInfo(None, "stray", False)]  # type: ignore[arg-type]
    monkeypatch.setattr(components.pkgutil, "iter_modules", lambda path: found)
    with pytest.raises(TestbuildError) as caught:
        discover()
    assert caught.value.message == "harness/components/stray.py defines no component named 'stray'"
    assert caught.value.fix == "define COMPONENT = <its class>() there, with name = 'stray'"


def test_a_component_starts_after_what_it_requires_and_ties_go_by_name():
    order = start_order(
        [Named("stack", ("keycloak", "cluster")), Named("keycloak"), Named("cluster"), Named("a")]
    )
    assert names(order) == ["a", "cluster", "keycloak", "stack"]
    assert names(start_order([Named("a", ("z",)), Named("z")])) == ["z", "a"]


def test_an_unknown_requirement_is_named_with_the_known_components():
    with pytest.raises(TestbuildError) as caught:
        start_order([Named("stack", ("cluster", "redis")), Named("cluster")])
    assert caught.value.message == "unknown requirement: 'stack' requires 'redis'"
    assert caught.value.fix == "require only components that exist: cluster, stack"


def steps(components: list[Any]) -> list[str]:
    return [f"{step} {component.name}" for step, component in bring_up_steps(components)]


def test_without_early_starters_each_component_is_started_and_made_ready_in_start_order():
    chain = [Named("stack", ("keycloak", "cluster")), Named("keycloak"), Named("cluster")]
    assert steps(chain) == [
        "start cluster",
        "start keycloak",
        "ready cluster",
        "ready keycloak",
        "start stack",
        "ready stack",
    ]


def test_a_component_that_starts_before_what_it_requires_is_started_first_and_ready_after_it():
    """The cluster (starts_after empty, requires keycloak) is started and seeded
    while Keycloak boots, and probed for readiness only once Keycloak is ready."""
    world = [
        Named("keycloak"),
        Named("cluster", ("keycloak",), starts_after=()),
        Named("minio"),
        Named("sshca", ("keycloak",)),
        Named("stack", ("cluster", "keycloak", "minio", "sshca")),
    ]
    assert steps(world) == [
        "start cluster",
        "start keycloak",
        "start minio",
        "ready keycloak",
        "start sshca",
        "ready cluster",
        "ready minio",
        "ready sshca",
        "start stack",
        "ready stack",
    ]


def test_starting_after_a_component_that_is_not_required_is_refused():
    with pytest.raises(TestbuildError) as caught:
        bring_up_steps([Named("cluster", (), starts_after=("keycloak",)), Named("keycloak")])
    assert caught.value.message == (
        "a component starts after one it does not require: 'cluster' starts after 'keycloak'"
    )
    assert caught.value.fix == "name in starts_after only components that are in requires"


def test_the_components_start_the_cluster_before_keycloak_is_up():
    order = steps(discover())
    assert order.index("start cluster") < order.index("start keycloak")
    assert order.index("ready keycloak") < order.index("ready cluster")
    assert order.index("ready keycloak") < order.index("start sshca")
    assert order[-2:] == ["start stack", "ready stack"]


def test_a_cycle_is_named_along_its_path():
    with pytest.raises(TestbuildError) as caught:
        start_order([Named("a", ("b",)), Named("b", ("c",)), Named("c", ("a",)), Named("d")])
    assert caught.value.message == "the requirements form a cycle: a -> b -> c -> a"
    with pytest.raises(TestbuildError, match="cycle: a -> a"):
        start_order([Named("a", ("a",))])


def test_a_component_reads_only_the_endpoints_it_requires(tmp_path: Path):
    env = environment(tmp_path)
    context = env.context()
    stack = context.given_to(env.component("stack"))
    assert stack.endpoints(KeycloakEndpoints).realm == "kcrealm"
    cluster = context.given_to(env.component("cluster"))
    with pytest.raises(TestbuildError) as caught:
        cluster.endpoints(MinioEndpoints)
    assert caught.value.message == "reads the endpoints of 'minio' without requiring it"
    assert caught.value.fix == "add 'minio' to the requires of ClusterComponent"


def shape(value: Any) -> Any:
    """The keys of a JSON value, with the type of each leaf."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return [shape(value[0])]
    return type(value).__name__


# The shape `testbuild env --json` printed before endpoints were typed.
PRINTED = {
    "name": "str",
    "state_dir": "str",
    "users": [{"name": "str", "uid": "int", "password": "str", "account": "str"}],
    "keycloak": {
        "url": "str",
        "realm": "str",
        "issuer": "str",
        "token_url": "str",
        "jwks_url": "str",
        "admin": {"user": "str", "password": "str"},
        "clients": [{"client_id": "str", "secret": "str", "service_account": "str"}],
        "expiry_probe": {"client_id": "str", "secret": "str"},
    },
    "cluster": {
        "system": "str",
        "ssh": {
            "host": "str",
            "port": "int",
            "auth": "str",
            "user_ca_private_key": "str",
            "user_ca_public_key": "str",
            "host_key": "str",
        },
        "compute_nodes": "list",
        "partitions": "list",
        "slurmrestd": {"url": "str", "versions": "list"},  # Slurm 24.11 (the default)
    },
    "minio": {
        "url": "str",
        "console_url": "str",
        "access_key": "str",
        "secret_key": "str",
        "region": "str",
        "buckets": "list",
        "object_expiry_days": "int",
    },
    "redis": {"url": "str", "reachable_from": "str"},
    "sshca": {
        "url": "str",
        "sign_url": "str",
        "ssh_keys_url": "str",
        "certificate_lifetime": "int",
    },
    "stack": {
        "url": "str",
        "api_version": "str",
        "openapi": "str",
        "machine": "str",
        "v2_url": "str",
        "v2_api_version": "str",
    },
}


def test_endpoints_print_as_they_always_have(tmp_path: Path):
    printed = json.loads(json.dumps(environment(tmp_path).endpoints().as_json()))
    assert shape(printed) == PRINTED
    assert list(printed) == list(PRINTED)
    assert printed["cluster"]["partitions"] == ["part01", "part02", "xfer"]
    assert printed["cluster"]["compute_nodes"] == ["c1", "c2"]
    assert printed["cluster"]["ssh"]["port"] == 2222
    assert printed["keycloak"]["token_url"] == (
        "http://127.0.0.1:8080/auth/realms/kcrealm/protocol/openid-connect/token"
    )
    assert printed["redis"]["url"] == "redis://redis:6379/0"
    assert printed["state_dir"] == str(tmp_path / "state" / "testbuild")


def test_static_keys_are_shown_only_in_static_key_mode(tmp_path: Path):
    printed = environment(tmp_path, "cluster: {sshAuth: static-key}").endpoints().as_json()
    assert shape(printed)["users"] == [{**PRINTED["users"][0], "ssh_private_key": "str"}]


def test_up_summary_has_each_components_lines(tmp_path: Path):
    text = _summary(environment(tmp_path).endpoints(), {"images": 1.5}, 12.0)
    lines = [line.strip() for line in text.splitlines()]
    assert "Environment 'testbuild' is ready (12.0s)." in lines
    assert (
        "cluster 'cluster': login node ssh://127.0.0.1:2222 (certificate logins),"
        " compute nodes c1, c2"
    ) in lines
    assert "partitions: part01, part02, xfer" in lines
    assert any(
        line.startswith("users (password): test1 (test11), test2 (test22)") for line in lines
    )
    assert any(line.startswith("SSH CA key: ") for line in lines)
    assert any(
        line.startswith("Keycloak: http://127.0.0.1:8080/auth (realm kcrealm,") for line in lines
    )
    assert "MinIO: http://127.0.0.1:9000 (console http://127.0.0.1:9001)" in lines
    assert (
        "FirecREST v1: http://127.0.0.1:8000 (machine cluster,"
        " API description http://127.0.0.1:8000/openapi.json)"
    ) in lines
    assert 'curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8000/status/systems' in lines
    assert lines[-1] == "stage times: images 1.5s"


def stack_containers(tmp_path: Path, text: str = "") -> dict[str, Any]:
    env = environment(tmp_path, text)
    context = env.context()
    stack = env.component("stack")
    return {spec.node: spec for spec in stack.containers(context.given_to(stack))}


def test_both_firecrest_generations_run_and_v2_logs_in_through_the_ssh_ca(tmp_path: Path):
    containers = stack_containers(tmp_path)
    assert set(containers) == {"stack", "stack-v2"}
    v2 = containers["stack-v2"]
    assert v2.command == ["--api", "v2"]
    assert [(port.host_port, port.config_key) for port in v2.ports] == [(8001, "stack.v2.port")]
    settings = yaml.safe_load(v2.files["stack.yaml"][0])
    assert settings["ssh"] == {"credentials": "sshca", "sshcaUrl": "http://sshca:8000"}
    assert "user_ca" not in v2.files  # v2 never holds the CA key
    text = _summary(environment(tmp_path).endpoints(), {}, 1.0)
    assert any(
        line.strip().startswith("FirecREST v2: http://127.0.0.1:8001") for line in text.splitlines()
    )


def test_the_key_service_mode_reaches_the_ssh_ca_too(tmp_path: Path):
    v2 = stack_containers(tmp_path, "stack: {v2: {sshCredentials: sshservice}}\n")["stack-v2"]
    settings = yaml.safe_load(v2.files["stack.yaml"][0])
    assert settings["ssh"] == {"credentials": "sshservice", "sshcaUrl": "http://sshca:8000"}
    assert not [name for name in v2.files if name.startswith("key-")]


def test_static_keys_go_to_v2_with_its_static_key_mode(tmp_path: Path):
    containers = stack_containers(
        tmp_path, "cluster: {sshAuth: static-key}\nstack: {v2: {sshCredentials: static-key}}\n"
    )
    v2 = containers["stack-v2"]
    assert yaml.safe_load(v2.files["stack.yaml"][0])["ssh"]["staticKeysFolder"] == "/run/stack/keys"
    assert {"key-test1", "key-test2"} <= set(v2.files)
    assert v2.files["key-test1"][1] == 0o600


def test_each_generation_can_be_switched_off(tmp_path: Path):
    assert set(stack_containers(tmp_path / "a", "stack: {v2: {enabled: false}}\n")) == {"stack"}
    assert set(stack_containers(tmp_path / "b", "stack: {v1Enabled: false}\n")) == {"stack-v2"}
    endpoints = environment(tmp_path / "c", "stack: {v1Enabled: false}\n").endpoints()
    assert [line for line in endpoints.summary() if "FirecREST v1" in line] == []
