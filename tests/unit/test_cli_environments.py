"""Commands find environments by name and never create one (a fake engine, no Docker)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from firecrest_testbuild.harness import cli, engine
from firecrest_testbuild.harness.config import dump, parse
from firecrest_testbuild.harness.environment import Environment
from firecrest_testbuild.harness.runtime import COMPONENT_LABEL, ENVIRONMENT_LABEL, NODE_LABEL

READING_COMMANDS = [
    ["env"],
    ["env", "--json"],
    ["token", "test1"],
    ["ssh", "test1", "--", "true"],
    ["logs", "cluster"],
    ["conformance"],
]


@dataclass
class Resource:
    """A container, network or volume of the fake engine."""

    name: str
    labels: dict[str, str]
    engine: FakeEngine
    status: str = "running"
    image: Any = field(default_factory=lambda: SimpleNamespace(tags=["testbuild/x:1"]))

    def remove(self, **options: Any) -> None:
        self.engine.removed.append(self.name)

    def logs(self, tail: int) -> bytes:
        return b"a log line\n"


class Collection:
    def __init__(self, engine: FakeEngine, kind: str) -> None:
        self.engine, self.kind = engine, kind

    def list(self, filters: dict[str, Any] | None = None, **options: Any) -> list[Resource]:
        wanted = (filters or {}).get("label", [])
        wanted = [wanted] if isinstance(wanted, str) else wanted
        return [
            resource
            for resource in self.engine.resources[self.kind]
            if resource.name not in self.engine.removed
            and all(_has_label(resource.labels, label) for label in wanted)
        ]


def _has_label(labels: dict[str, str], label: str) -> bool:
    key, _, value = label.partition("=")
    return key in labels and (not value or labels[key] == value)


class FakeEngine:
    """What the harness asks of a Docker engine to find environments by label."""

    def __init__(self) -> None:
        self.resources: dict[str, list[Resource]] = {
            "containers": [],
            "networks": [],
            "volumes": [],
        }
        self.removed: list[str] = []
        self.containers = Collection(self, "containers")
        self.networks = Collection(self, "networks")
        self.volumes = Collection(self, "volumes")

    def info(self) -> dict[str, int]:
        return {"NCPU": 2}

    def run_environment(self, name: str) -> None:
        """The labelled resources `up` leaves for environment `name`."""
        labels = {ENVIRONMENT_LABEL: name}
        node = {**labels, NODE_LABEL: "controller", COMPONENT_LABEL: "cluster"}
        self.resources["containers"].append(Resource(f"testbuild-{name}-controller", node, self))
        self.resources["networks"].append(Resource(f"testbuild-{name}", labels, self))
        self.resources["volumes"].append(Resource(f"testbuild-{name}-home", labels, self))


@pytest.fixture
def fake_engine(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    fake = FakeEngine()
    monkeypatch.setattr(engine, "connect", lambda: fake)
    return fake


@pytest.fixture
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "state"
    monkeypatch.setenv("TESTBUILD_STATE_HOME", str(home))
    return home


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder without testbuild.yaml."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.delenv("TESTBUILD_CONFIG", raising=False)
    return folder


def files_under(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def brought_up(name: str, state_home: Path, fake_engine: FakeEngine) -> Environment:
    """What `up` leaves behind: saved config, keys and secrets, labelled containers."""
    environment = Environment(parse(f"name: {name}\n"), state_home, client=fake_engine)  # type: ignore[arg-type]
    environment.state.write(environment.state.config_file, dump(environment.config))
    environment.state.write(environment.state.target_file, "kind: Target\n")
    environment.endpoints()  # makes every key and secret
    fake_engine.run_environment(name)
    return environment


@pytest.mark.parametrize("command", READING_COMMANDS, ids=" ".join)
def test_reading_a_name_that_is_not_up_creates_nothing_and_says_so(
    command: list[str],
    fake_engine: FakeEngine,
    state_home: Path,
    elsewhere: Path,
    capsys: pytest.CaptureFixture[str],
):
    fake_engine.run_environment("other")
    assert cli.main([command[0], "--name", "ghost", *command[1:]]) == 1
    error = capsys.readouterr().err
    assert "✗ testbuild: no environment 'ghost' is up" in error
    assert "the environments up are other: name one with --name NAME" in error
    assert "Traceback" not in error
    assert not state_home.exists()
    assert files_under(elsewhere) == []


def test_status_of_a_name_that_is_not_up_says_so_and_exits_3(
    fake_engine: FakeEngine, state_home: Path, elsewhere: Path, capsys: pytest.CaptureFixture[str]
):
    assert cli.main(["status", "--name", "ghost"]) == 3
    error = capsys.readouterr().err
    assert "no environment 'ghost' is up" in error
    assert "nothing is up" in error
    assert not state_home.exists()


def test_the_name_comes_from_the_environment_file_else_testbuild(
    fake_engine: FakeEngine,
    state_home: Path,
    elsewhere: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    assert cli.main(["env"]) == 1
    assert "no environment 'testbuild' is up" in capsys.readouterr().err
    (elsewhere / "testbuild.yaml").write_text("name: local\n")
    assert cli.main(["env"]) == 1
    assert "no environment 'local' is up" in capsys.readouterr().err
    chosen = elsewhere / "chosen.yaml"
    chosen.write_text("name: chosen\n")
    monkeypatch.setenv("TESTBUILD_CONFIG", str(chosen))
    assert cli.main(["env"]) == 1
    assert "no environment 'chosen' is up" in capsys.readouterr().err
    assert cli.main(["env", "--name", "given"]) == 1
    assert "no environment 'given' is up" in capsys.readouterr().err
    assert not state_home.exists()


def test_an_environment_that_is_up_is_read_from_its_saved_config_without_writing(
    fake_engine: FakeEngine, state_home: Path, elsewhere: Path, capsys: pytest.CaptureFixture[str]
):
    environment = brought_up("alpha", state_home, fake_engine)
    before = files_under(state_home)
    assert cli.main(["env", "--json", "--name", "alpha"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(environment.endpoints().as_json()))
    assert cli.main(["logs", "--name", "alpha", "controller"]) == 0
    assert "a log line" in capsys.readouterr().out
    assert cli.main(["status", "--name", "alpha"]) == 0
    assert "controller" in capsys.readouterr().out
    assert files_under(state_home) == before
    assert files_under(elsewhere) == []


def test_a_lost_secret_is_an_error_not_a_new_secret(
    fake_engine: FakeEngine, state_home: Path, elsewhere: Path, capsys: pytest.CaptureFixture[str]
):
    environment = brought_up("alpha", state_home, fake_engine)
    lost = environment.state.root / "secrets" / "keycloak-admin"
    lost.unlink()
    assert cli.main(["env", "--name", "alpha"]) == 1
    error = capsys.readouterr().err
    assert f"{lost} is missing from the state of environment 'alpha'" in error
    assert "run 'testbuild up' for 'alpha' again" in error
    assert not lost.exists()


def test_containers_without_saved_config_are_explained(
    fake_engine: FakeEngine, state_home: Path, elsewhere: Path, capsys: pytest.CaptureFixture[str]
):
    fake_engine.run_environment("alpha")
    assert cli.main(["env", "--name", "alpha"]) == 1
    error = capsys.readouterr().err
    assert "environment 'alpha' has containers but no saved config" in error
    assert "testbuild down --name alpha" in error
    assert not state_home.exists()


def test_down_removes_what_is_labelled_even_without_a_state_folder(
    fake_engine: FakeEngine, state_home: Path, elsewhere: Path, capsys: pytest.CaptureFixture[str]
):
    fake_engine.run_environment("alpha")
    fake_engine.run_environment("other")
    assert cli.main(["down", "--name", "alpha"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "removed 3 resources of 'alpha'"
    assert fake_engine.removed == [
        "testbuild-alpha-controller",
        "testbuild-alpha",
        "testbuild-alpha-home",
    ]
    assert not state_home.exists()


def test_down_removes_the_state_folder(fake_engine: FakeEngine, state_home: Path, elsewhere: Path):
    environment = brought_up("alpha", state_home, fake_engine)
    assert cli.main(["down", "--name", "alpha"]) == 0
    assert not environment.state.root.exists()
