"""The environment file: defaults, the shipped example, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from firecrest_testbuild.harness.config import (
    DEFAULT_USERS,
    EnvironmentConfig,
    dump,
    load,
    parse,
    with_free_ports,
)
from firecrest_testbuild.harness.errors import ConfigError
from tests.repository import ROOT as REPOSITORY


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text, "env.yaml")
    return caught.value.problems


def test_the_shipped_testbuild_yaml_is_valid_and_equals_the_defaults():
    assert load(REPOSITORY / "testbuild.yaml") == EnvironmentConfig()


def test_a_dumped_config_reads_back_equal(tmp_path: Path):
    config = parse(
        "name: saved\ncluster: {sshPort: 0, sshAuth: static-key}\n"
        f"images: {{caCertificates: [{tmp_path / 'proxy.crt'}]}}\n"
        "keycloak: {clients: [{clientId: firecrest-sample, secret: a-long-secret}]}\n"
    )
    assert parse(dump(config)) == config


def test_state_dir_of_an_older_file_says_where_state_went(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("TESTBUILD_STATE_HOME", str(tmp_path / "states"))
    found = problems("name: old\nstateDir: .testbuild\ncluster: {computeNodes: 0}\n")
    assert found[0] == (
        f"env.yaml:2: stateDir was removed: state lives in {tmp_path / 'states' / 'old'};"
        " set TESTBUILD_STATE_HOME to move it (fix: delete the stateDir line)"
    )
    assert "cluster.computeNodes" in found[1]  # and every other problem at once


def test_defaults_match_the_upstream_test_build_users():
    config = parse("")
    assert [(u.name, u.password) for u in config.users] == [
        ("test1", "test11"),
        ("test2", "test22"),
        ("testuser", "testuser"),
        ("service-account-firecrest-sample", "firecrest-sample"),
    ]
    assert config.users == DEFAULT_USERS
    assert config.cluster.compute_node_names == ["c1", "c2"]
    assert config.bind_address == "127.0.0.1"


def test_a_single_compute_node_is_allowed():
    assert parse("cluster: {computeNodes: 1}").cluster.compute_node_names == ["c1"]


def test_unknown_key_names_file_line_key_and_a_close_match():
    [problem] = problems("name: a\ncluster:\n  computeNode: 3\n")
    assert problem.startswith("env.yaml:3: unknown key 'cluster.computeNode'")
    assert "did you mean 'computeNodes'?" in problem


def test_unknown_top_level_key():
    [problem] = problems("clustr: {}\n")
    assert "env.yaml:1: unknown key 'clustr'" in problem
    assert "did you mean 'cluster'?" in problem


def test_zero_compute_nodes_is_refused_with_a_fix():
    [problem] = problems("cluster:\n  computeNodes: 0\n")
    assert problem.startswith("env.yaml:2: cluster.computeNodes:")
    assert "greater than or equal to 1" in problem
    assert "fix: use a whole number from 1 to 16" in problem


@pytest.mark.parametrize("port", ["70000", "-1", "ssh"])
def test_bad_port_is_refused(port: str):
    [problem] = problems(f"cluster:\n  sshPort: {port}\n")
    assert problem.startswith("env.yaml:2: cluster.sshPort:")
    assert "fix: use a port from 1 to 65535, or 0 for any free port" in problem


def test_duplicate_user_name_points_at_the_second_entry():
    text = "users:\n  - {name: a, uid: 1001, password: x}\n  - {name: a, uid: 1002, password: y}\n"
    [problem] = problems(text + "keycloak: {clients: []}\n")
    assert problem == (
        "env.yaml:3: users[1].name: 'a' is already used by users[0]"
        " (fix: give every user a unique name)"
    )


def test_duplicate_uid_points_at_its_line():
    text = (
        "users:\n  - {name: a, uid: 1001, password: x}\n"
        "  - name: b\n    uid: 1001\n    password: y\n"
        "keycloak: {clients: []}\n"
    )
    [problem] = problems(text)
    assert problem.startswith("env.yaml:4: users[1].uid: 1001 is already used by users[0]")


def test_every_problem_is_reported_at_once():
    found = problems("cluster: {computeNodes: 0, sshPort: 99999}\nbindAddress: here\n")
    assert len(found) == 3


def test_bad_bind_address_and_auth_mode():
    [address] = problems("bindAddress: localhost\n")
    assert "bindAddress" in address and "fix: use an IP address such as 127.0.0.1" in address
    [mode] = problems("cluster: {sshAuth: password}\n")
    assert "fix: use 'certificate' or 'static-key'" in mode


def test_not_a_mapping_and_not_yaml():
    assert problems("- a\n- b\n") == ["the top level must be a mapping (key: value lines)"]
    assert problems("a: [\n")[0].startswith("not valid YAML")


def test_unreadable_file_names_the_file(tmp_path: Path):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path / "missing.yaml")
    assert caught.value.path.endswith("missing.yaml")
    assert "cannot read the file" in caught.value.problems[0]


def test_explanation_is_one_screen_without_traceback():
    with pytest.raises(ConfigError) as caught:
        parse("cluster: {computeNodes: 0}\n", "testbuild.yaml")
    text = caught.value.explain()
    assert text.splitlines()[0] == "✗ config: testbuild.yaml is not a valid testbuild environment"
    assert "Traceback" not in text and len(text.splitlines()) < 20


def test_unknown_user_lookup_lists_known_users():
    with pytest.raises(ConfigError) as caught:
        parse("").user("nobody")
    assert "known users: test1, test2" in caught.value.problems[0]


def test_a_client_needs_its_service_account_user():
    [problem] = problems(
        "users:\n  - {name: a, uid: 1001, password: x}\n"
        "keycloak:\n  clients:\n    - clientId: portal\n"
    )
    assert problem.startswith("env.yaml:5: keycloak.clients[0]: client 'portal' needs")
    assert "a user named 'service-account-portal'" in problem


def test_an_extra_token_audience_is_optional_and_checked():
    assert parse("").keycloak.audience is None
    assert parse("keycloak: {audience: Firecrest-v2}\n").keycloak.audience == "Firecrest-v2"
    [problem] = problems("keycloak: {audience: 'two words'}\n")
    assert "keycloak.audience" in problem and "Firecrest-v2" in problem


def _published_ports(model: object) -> dict[str, int]:
    """Every port field of a config, by its path."""
    found: dict[str, int] = {}
    for field, value in vars(model).items():
        if field.endswith("port") and isinstance(value, int):
            found[field] = value
        elif isinstance(value, BaseModel):
            found |= {f"{field}.{key}": port for key, port in _published_ports(value).items()}
    return found


def test_free_ports_leave_no_published_port_at_its_default():
    config = parse(yaml.safe_dump(with_free_ports({"name": "x"})))
    ports = _published_ports(config)
    assert len(ports) >= 7, ports
    assert set(ports.values()) == {0}, ports


def test_free_ports_keep_what_the_settings_name():
    settings = with_free_ports({"name": "x", "cluster": {"sshPort": 2299, "computeNodes": 1}})
    assert settings["cluster"] == {"sshPort": 2299, "computeNodes": 1, "slurmrestd": {"port": 0}}
