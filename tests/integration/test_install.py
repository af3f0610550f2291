"""The package installed from its wheel, outside the checkout, as a user or a
client project gets it: `testbuild` works from any folder, and a client
project's pytest gets a running testbuild from the `testbuild_target` fixture."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import docker
import pytest
import yaml

from firecrest_testbuild.harness.config import with_free_ports
from tests.repository import ROOT

pytestmark = pytest.mark.integration

CLIENT_TEST = """
import requests


def test_the_sandbox_answers_with_a_real_token(testbuild_target):
    identity = testbuild_target.identities[0]
    grant = {
        "grant_type": "password",
        "client_id": testbuild_target.auth.client_id,
        "client_secret": testbuild_target.auth.client_secret,
        "username": identity.name,
        "password": identity.password,
    }
    token = requests.post(testbuild_target.auth.token_url, data=grant, timeout=30)
    assert token.status_code == 200, token.text
    bearer = {"Authorization": "Bearer " + token.json()["access_token"]}
    systems = requests.get(testbuild_target.api.url + "/status/systems", headers=bearer, timeout=30)
    assert systems.status_code == 200, systems.text
    assert systems.json()["out"][0]["status"] == "available"
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT)])
    return next(dist.glob("*.whl"))


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel (and pytest, for the client project) in a virtual environment
    of its own, installed into it by this environment's pip (`--python`): a
    pip of its own (ensurepip) and compiling every module took 14 of the
    fixture's 19 CPU-seconds, and neither is what the test is about."""
    folder = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", "--without-pip", str(folder)])
    python = str(folder / "bin" / "python")
    packages = [str(wheel), "pytest", "requests"]
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "-q",
            "--no-compile",
            *packages,
        ]
    )
    return folder / "bin"


@pytest.fixture
def state_home(tmp_path: Path) -> dict[str, str]:
    """Process environment for the installed commands: state in a folder of the test."""
    return {**os.environ, "TESTBUILD_STATE_HOME": str(tmp_path / "state")}


def run(command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, (
        f"{command} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    )
    return done.stdout


def test_the_wheel_carries_the_image_folders_and_only_namespaced_modules(wheel: Path):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"firecrest_testbuild"}
    for data in (
        "firecrest_testbuild/images/cluster/Dockerfile",
        "firecrest_testbuild/images/stack/Dockerfile",
        "firecrest_testbuild/cluster/allowed-commands",
        "firecrest_testbuild/scenarios/test_tutorial.py",
        "firecrest_testbuild/common/certificates.py",
    ):
        assert data in names, f"{data} is not in the wheel"


def test_installed_commands_work_from_any_folder_and_create_nothing_to_read(
    venv: Path, tmp_path: Path, state_home: dict[str, str]
):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "conformance" in run([str(venv / "testbuild"), "--help"], cwd=empty)
    reading = subprocess.run(
        [str(venv / "testbuild"), "env", "--name", "nothing-here"],
        cwd=empty,
        env=state_home,
        capture_output=True,
        text=True,
    )
    assert reading.returncode != 0
    assert "no environment 'nothing-here' is up" in reading.stderr
    assert "Traceback" not in reading.stderr
    assert list(empty.iterdir()) == []
    assert not Path(state_home["TESTBUILD_STATE_HOME"]).exists()


def test_up_env_client_project_and_down_from_folders_outside_the_checkout(
    venv: Path, tmp_path: Path, state_home: dict[str, str]
):
    name = f"it-wheel-{uuid.uuid4().hex[:6]}"
    where = tmp_path / "somewhere"
    where.mkdir()
    settings = with_free_ports({"name": name, "cluster": {"computeNodes": 1}})
    (where / "testbuild.yaml").write_text(yaml.safe_dump(settings))
    testbuild = str(venv / "testbuild")
    try:
        run([testbuild, "up"], cwd=where, env=state_home)
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        endpoints = json.loads(
            run([testbuild, "env", "--name", name, "--json"], cwd=elsewhere, env=state_home)
        )
        assert endpoints["name"] == name
        assert list(elsewhere.iterdir()) == []

        project = tmp_path / "client-project"
        project.mkdir()
        (project / "test_client.py").write_text(CLIENT_TEST)
        client_env = {**state_home, "TESTBUILD_CONFIG": str(where / "testbuild.yaml")}
        run([str(venv / "pytest"), "-q", "-p", "no:cacheprovider"], cwd=project, env=client_env)
    finally:
        run([testbuild, "down", "--name", name], cwd=tmp_path, env=state_home)
    labelled = {"label": f"org.testbuild.environment={name}"}
    engine = docker.from_env()
    assert engine.containers.list(all=True, filters=labelled) == []
    assert engine.networks.list(filters=labelled) == []
    assert engine.volumes.list(filters=labelled) == []
    assert not (Path(state_home["TESTBUILD_STATE_HOME"]) / name).exists()
