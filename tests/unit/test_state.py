"""Where environments' state lives, and that reading it never makes any."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from firecrest_testbuild.harness.errors import TestbuildError
from firecrest_testbuild.harness.state import EnvironmentState, state_home


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No state variables set; HOME in the test's folder."""
    monkeypatch.delenv("TESTBUILD_STATE_HOME", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def test_state_home_defaults_to_the_users_local_state(clean_environment: Path):
    assert state_home() == clean_environment / "home" / ".local" / "state" / "testbuild"


def test_xdg_state_home_is_used_when_set(clean_environment: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(clean_environment / "xdg"))
    assert state_home() == clean_environment / "xdg" / "testbuild"


def test_a_relative_xdg_state_home_is_ignored_as_the_spec_says(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("XDG_STATE_HOME", "relative/state")
    assert state_home() == clean_environment / "home" / ".local" / "state" / "testbuild"


def test_testbuild_state_home_wins_and_is_made_absolute(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("XDG_STATE_HOME", str(clean_environment / "xdg"))
    monkeypatch.setenv("TESTBUILD_STATE_HOME", str(clean_environment / "mine"))
    assert state_home() == clean_environment / "mine"
    monkeypatch.chdir(clean_environment)
    monkeypatch.setenv("TESTBUILD_STATE_HOME", "relative")
    assert state_home() == clean_environment / "relative"


def test_one_folder_per_environment_name(tmp_path: Path):
    state = EnvironmentState.of("alpha", tmp_path)
    assert (state.root, state.home, state.name) == (tmp_path / "alpha", tmp_path, "alpha")
    assert state.config_file == tmp_path / "alpha" / "config.yaml"
    assert state.target_file == tmp_path / "alpha" / "target.yaml"


def test_read_only_state_refuses_to_make_what_is_missing(tmp_path: Path):
    state = EnvironmentState.of("alpha", tmp_path, writable=False)
    attempts = [
        lambda: state.user_ca,
        lambda: state.host_key,
        lambda: state.keycloak_key("realm-signing"),
        lambda: state.user_key("test1"),
        lambda: state.secret("munge.key", 1024),
        lambda: state.password("keycloak-admin"),
        lambda: state.port("keycloak.port", 0, "127.0.0.1"),
        lambda: state.write(state.config_file, "name: alpha\n"),
    ]
    for attempt in attempts:
        with pytest.raises(TestbuildError) as caught:
            attempt()
        assert "is missing from the state of environment 'alpha'" in caught.value.message
        assert "testbuild up" in (caught.value.fix or "")
    assert not tmp_path.joinpath("alpha").exists()


def test_read_only_state_reads_what_up_made(tmp_path: Path):
    made = EnvironmentState.of("alpha", tmp_path)
    secret = made.secret("munge.key", 16)
    port = made.port("keycloak.port", 0, "127.0.0.1")
    public = made.user_ca.public_line()
    signing = made.keycloak_key("realm-signing").private_numbers()
    read = EnvironmentState.of("alpha", tmp_path, writable=False)
    assert read.keycloak_key("realm-signing").private_numbers() == signing
    assert (tmp_path / "alpha" / "keycloak" / "realm-signing.pem").stat().st_mode & 0o777 == 0o600
    assert read.secret("munge.key", 16) == secret
    assert read.port("keycloak.port", 0, "127.0.0.1") == port
    assert read.user_ca.public_line() == public
    assert read.port("keycloak.port", 8080, "127.0.0.1") == 8080  # configured: nothing to read


def test_a_damaged_keycloak_key_is_named_with_the_fix(tmp_path: Path):
    state = EnvironmentState.of("alpha", tmp_path)
    stored = tmp_path / "alpha" / "keycloak" / "realm-signing.pem"
    stored.parent.mkdir(parents=True)
    stored.write_text("-----BEGIN PRIVATE KEY-----\n")  # an interrupted write of old
    with pytest.raises(TestbuildError) as caught:
        state.keycloak_key("realm-signing")
    assert caught.value.message.startswith(f"{stored} is not a readable RSA private key")
    assert "testbuild down" in (caught.value.fix or "")


def test_a_keycloak_key_is_parsed_once_per_version_of_its_file(tmp_path: Path):
    state = EnvironmentState.of("alpha", tmp_path)
    first = state.keycloak_key("realm-signing")
    assert state.keycloak_key("realm-signing") is first
    stored = tmp_path / "alpha" / "keycloak" / "realm-signing.pem"
    other = EnvironmentState.of("beta", tmp_path).keycloak_key("realm-signing")
    stored.write_bytes((tmp_path / "beta" / "keycloak" / "realm-signing.pem").read_bytes())
    os.utime(stored, ns=(1, 1))
    assert state.keycloak_key("realm-signing").private_numbers() == other.private_numbers()
    assert not list(stored.parent.glob("*.partial"))
