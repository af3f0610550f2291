"""compose/docker-compose.yml is derived from the harness and must not drift;
it names no machine's paths; its node files and its runner (no Docker here)."""

from __future__ import annotations

import re
import shlex
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from firecrest_testbuild.harness import cli, compose
from firecrest_testbuild.harness.config import parse
from firecrest_testbuild.harness.environment import Environment
from firecrest_testbuild.harness.errors import TestbuildError
from tests.repository import COMPOSE
from tests.repository import ROOT as REPOSITORY

COMMITTED = COMPOSE / "docker-compose.yml"
SHIPPED = REPOSITORY / "testbuild.yaml"


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Environments' state (keys, secrets) in the test's folder, never the user's."""
    home = tmp_path / "state-home"
    monkeypatch.setenv("TESTBUILD_STATE_HOME", str(home))
    return home


def rendered(config_text: str | None, base_dir: Path, node_files: Path | None = None) -> str:
    config = parse(SHIPPED.read_text() if config_text is None else config_text)
    return Environment(config, base_dir).compose_file(engine_cpus=2, node_files=node_files)


def bind_sources(document: dict[str, Any]) -> list[str]:
    """Every host path a service mounts or reads (bind sources and env files)."""
    sources = []
    for service in document["services"].values():
        sources += [v.rsplit(":", 2)[0] for v in service["volumes"] if v.startswith("$")]
        sources += service.get("env_file", [])
    return sources


def test_committed_compose_file_equals_what_the_harness_renders(tmp_path: Path):
    assert COMMITTED.read_text() == rendered(None, tmp_path), (
        "compose/docker-compose.yml drifted from the harness: regenerate it with"
        " 'testbuild compose > compose/docker-compose.yml'"
    )


def test_committed_compose_file_names_no_path_of_one_machine():
    text = COMMITTED.read_text()
    document = yaml.safe_load(text)
    assert "../" not in text
    assert "/.testbuild/" not in text
    sources = bind_sources(document)
    assert len(sources) == len(document["services"]) + 2  # + keycloak.env, minio.env
    assert all(source.startswith(compose.NODE_FILES + "/") for source in sources)
    named = {v.rsplit(":", 2)[0] for s in document["services"].values() for v in s["volumes"]}
    assert named - set(sources) == set(document["volumes"])


def test_the_node_files_folder_is_a_required_compose_variable():
    # Compose's ${VAR:?message}: without the variable it refuses the file and says why.
    match = re.fullmatch(r"\$\{(\w+):\?([^}]+)\}", compose.NODE_FILES)
    assert match is not None
    assert match.group(1) == compose.NODE_FILES_VARIABLE == "TESTBUILD_NODE_FILES"
    assert "testbuild compose --write" in match.group(2)


def test_compose_follows_the_config(tmp_path: Path):
    document = yaml.safe_load(
        rendered("name: other\ncluster: {computeNodes: 3, sshPort: 2300}\n", tmp_path)
    )
    assert document["name"] == "testbuild-other"
    assert list(document["services"]) == [
        "keycloak",  # the cluster requires it (slurmrestd's keys)
        "controller",
        "c1",
        "c2",
        "c3",
        "minio",
        "redis",
        "sshca",
        "stack",
        "stack-v2",
    ]
    controller = document["services"]["controller"]
    assert controller["ports"] == ["127.0.0.1:2300:22"]  # no slurmrestd: Environment.compose_file
    assert controller["hostname"] == "cluster"
    assert controller["labels"]["org.testbuild.environment"] == "other"
    assert f"{compose.NODE_FILES}/controller:/etc/testbuild:ro" in controller["volumes"]
    assert all("ports" not in document["services"][node] for node in ("c1", "c2", "c3"))
    assert document["services"]["keycloak"]["env_file"] == [f"{compose.NODE_FILES}/keycloak.env"]
    assert "KC_BOOTSTRAP_ADMIN_PASSWORD" not in yaml.safe_dump(document)
    labelled = [document["networks"]["default"], *document["volumes"].values()]
    assert all(item["labels"] == {"org.testbuild.environment": "other"} for item in labelled)


def test_compose_runs_no_slurmrestd_whose_keys_only_the_harness_seeds(tmp_path: Path):
    document = yaml.safe_load(rendered("cluster: {slurm: '24.11'}\n", tmp_path))
    assert "6820" not in yaml.safe_dump(document)
    assert "jwks" not in yaml.safe_dump(document)


def test_compose_binds_to_the_configured_address_only(tmp_path: Path):
    document = yaml.safe_load(rendered("bindAddress: 127.0.0.2\n", tmp_path))
    assert document["services"]["controller"]["ports"] == ["127.0.0.2:2222:22"]
    assert document["services"]["minio"]["ports"] == ["127.0.0.2:9000:9000", "127.0.0.2:9001:9001"]


def test_written_node_files_are_what_the_file_mounts(tmp_path: Path):
    nodes = tmp_path / "elsewhere" / "nodes"
    config = "name: other\ncluster: {computeNodes: 1}\n"
    document = yaml.safe_load(rendered(config, tmp_path, nodes))
    for source in bind_sources(document):
        assert Path(source.replace(compose.NODE_FILES, str(nodes))).exists(), source
    controller = nodes / "controller"
    assert {"slurm.conf", "munge.key", "slurmdbd.conf", "users.tsv"} <= {
        path.name for path in controller.iterdir()
    }
    assert "test1\t" in (nodes / "c1" / "users.tsv").read_text()
    assert "KC_BOOTSTRAP_ADMIN_PASSWORD=" in (nodes / "keycloak.env").read_text()
    modes = {
        name: stat.S_IMODE(path.stat().st_mode)
        for name, path in {
            "munge.key": controller / "munge.key",
            "users.tsv": controller / "users.tsv",
            "keycloak.env": nodes / "keycloak.env",
            "master-realm.json": nodes / "keycloak" / "realms" / "master-realm.json",
        }.items()
    }
    assert modes == {
        "munge.key": 0o400,
        "users.tsv": 0o600,
        "keycloak.env": 0o600,
        "master-realm.json": 0o600,
    }


def test_writing_node_files_again_replaces_read_only_ones(tmp_path: Path):
    config = "name: other\ncluster: {computeNodes: 1}\n"
    munge_key = tmp_path / "nodes" / "c1" / "munge.key"
    rendered(config, tmp_path, tmp_path / "nodes")
    written = munge_key.read_bytes()
    assert stat.S_IMODE(munge_key.stat().st_mode) == 0o400
    munge_key.chmod(0o600)
    munge_key.write_bytes(b"stale")
    munge_key.chmod(0o400)
    rendered(config, tmp_path, tmp_path / "nodes")
    assert munge_key.read_bytes() == written
    assert stat.S_IMODE(munge_key.stat().st_mode) == 0o400


def test_export_line_quotes_the_folder():
    assert compose.export_line(Path("/srv/a b")) == "export TESTBUILD_NODE_FILES='/srv/a b'"


class _FakeContainers:
    def __init__(self, exit_code: int, output: bytes) -> None:
        self.exit_code, self.output = exit_code, output
        self.runs: list[dict[str, Any]] = []
        self.removed = False

    def run(self, image: str, **options: Any) -> _FakeContainers:
        self.runs.append({"image": image, **options})
        return self

    def wait(self, timeout: float) -> dict[str, int]:
        return {"StatusCode": self.exit_code}

    def logs(self, stdout: bool, stderr: bool) -> bytes:
        return self.output

    def remove(self, force: bool) -> None:
        self.removed = True


class _FakeClient:
    def __init__(self, exit_code: int = 0, output: bytes = b"") -> None:
        self.containers = _FakeContainers(exit_code, output)

    def info(self) -> dict[str, int]:
        return {"NCPU": 2}


def test_runner_mounts_the_socket_and_each_folder_at_its_host_path(tmp_path: Path):
    client = _FakeClient(output=b"Container p-c1-1  Started\n")
    runner = compose.ComposeRunner(
        client,  # type: ignore[arg-type]
        "testbuild/compose:abc",
        tmp_path / "run" / "docker-compose.yml",
        "p",
        node_files=tmp_path / "nodes",
        socket="/run/engine.sock",
    )
    assert "Started" in runner.up("controller", "c1")
    (call,) = client.containers.runs
    compose_file = str(tmp_path / "run" / "docker-compose.yml")
    assert call["command"] == ["-f", compose_file, "-p", "p", "up", "-d", "controller", "c1"]
    assert call["environment"] == {"TESTBUILD_NODE_FILES": str(tmp_path / "nodes")}
    assert call["volumes"] == {
        "/run/engine.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
        str(tmp_path / "run"): {"bind": str(tmp_path / "run"), "mode": "ro"},
        str(tmp_path / "nodes"): {"bind": str(tmp_path / "nodes"), "mode": "ro"},
    }
    assert call["working_dir"] == str(tmp_path / "run")
    assert call["network_mode"] == "none"
    assert client.containers.removed


def test_runner_mounts_a_folder_inside_another_once(tmp_path: Path):
    client = _FakeClient()
    compose.ComposeRunner(
        client,  # type: ignore[arg-type]
        "img",
        tmp_path / "docker-compose.yml",
        "p",
        node_files=tmp_path / "nodes",
        socket="/s",
    ).down()
    (call,) = client.containers.runs
    assert call["command"][-2:] == ["down", "-v"]
    assert set(call["volumes"]) == {"/s", str(tmp_path)}


def test_runner_failure_is_an_error_with_compose_output(tmp_path: Path):
    client = _FakeClient(exit_code=15, output=b"required variable TESTBUILD_NODE_FILES is missing")
    runner = compose.ComposeRunner(
        client,  # type: ignore[arg-type]
        "img",
        tmp_path / "docker-compose.yml",
        "p",
        socket="/s",
    )
    assert runner.call("config").exit_code == 15
    with pytest.raises(TestbuildError) as caught:
        runner.run("config")
    assert "exit 15" in caught.value.message
    assert "TESTBUILD_NODE_FILES is missing" in caught.value.explain()
    assert client.containers.runs[0]["environment"] == {}  # no node files: unset


def test_runner_needs_a_local_engine_socket(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/user/0/docker.sock")
    assert compose.engine_socket() == "/run/user/0/docker.sock"
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    with pytest.raises(TestbuildError, match="DOCKER_HOST is tcp://"):
        compose.engine_socket()
    monkeypatch.delenv("DOCKER_HOST")
    assert compose.engine_socket() == "/var/run/docker.sock"


def test_compose_write_prints_the_export_line_on_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    config = tmp_path / "testbuild.yaml"
    config.write_text("name: other\n")
    monkeypatch.setattr(Environment, "client", property(lambda self: _FakeClient()))
    assert cli.main(["-c", str(config), "compose", "--write"]) == 0
    out, err = capsys.readouterr()
    export, assignment = shlex.split(err.splitlines()[-1])
    variable, folder = assignment.split("=", 1)
    assert (export, variable) == ("export", "TESTBUILD_NODE_FILES")
    nodes = Path(folder)
    assert nodes.is_absolute() and nodes.is_relative_to(tmp_path)  # the environment's state
    assert yaml.safe_load(out)["name"] == "testbuild-other"
    assert (nodes / "controller" / "slurm.conf").is_file()

    assert cli.main(["-c", str(config), "compose"]) == 0
    out_again, err = capsys.readouterr()
    assert out_again == out
    assert "export" not in err
