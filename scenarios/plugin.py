"""The pytest plugin of the conformance suites.

Options: --target FILE (or TESTBUILD_TARGET) names the deployment; --report
DIR writes JUnit XML, JSON, Markdown and HTML there. Fixtures: `target`,
`client` and `other` (the target's two identities), `workdir` and
`other_workdir` (a fresh folder per run and identity, removed afterwards),
`truth` (checks on the system and in the staging store, each reported as
skipped with the reason when the target grants no access). The fixture
`testbuild_target` (a running local testbuild, for client projects' CI) is
the harness's (firecrest_testbuild.harness.pytest_plugin).
Marker: `requires(capability)` skips a test the target does not offer.
"""

from __future__ import annotations

import datetime
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from firecrest_testbuild.scenarios.client import Client, Recorder
from firecrest_testbuild.scenarios.target import Target, TargetError, load
from firecrest_testbuild.scenarios.truth import SystemTruth, Truth


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("firecrest conformance")
    group.addoption("--target", help="the target description (YAML); or TESTBUILD_TARGET")
    group.addoption("--report", help="write the conformance report (JUnit, JSON, MD, HTML) here")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "requires(capability): skip unless the target offers the capability"
    )
    config.addinivalue_line("markers", "covers(*operations): operations a test is about")
    report = config.getoption("--report", default=None)
    if report:
        Path(report).mkdir(parents=True, exist_ok=True)
        if not config.option.xmlpath:
            config.option.xmlpath = str(Path(report) / "junit.xml")
        from firecrest_testbuild.scenarios.report import ReportCollector

        config.pluginmanager.register(ReportCollector(config, Path(report)), "conformance-report")


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Target:
    path = request.config.getoption("--target") or os.environ.get("TESTBUILD_TARGET")
    if not path:
        pytest.exit("no target: give --target FILE or set TESTBUILD_TARGET", returncode=4)
    try:
        return load(Path(path))
    except TargetError as error:
        pytest.exit(
            f"✗ target {error.source} cannot be used:\n  " + "\n  ".join(error.problems),
            returncode=4,
        )


@pytest.fixture(scope="session")
def recorder(request: pytest.FixtureRequest) -> Recorder:
    found = getattr(request.config, "_conformance_recorder", None)
    if found is None:
        found = Recorder()
        request.config._conformance_recorder = found  # type: ignore[attr-defined]
    return found


@pytest.fixture(autouse=True)
def _attribute_requests(request: pytest.FixtureRequest) -> Iterator[None]:
    recorder = getattr(request.config, "_conformance_recorder", None)
    if recorder is not None:
        recorder.current_test = request.node.nodeid
    yield


@pytest.fixture(autouse=True)
def _required_capabilities(request: pytest.FixtureRequest) -> None:
    for marker in request.node.iter_markers("requires"):
        target: Target = request.getfixturevalue("target")
        for capability in marker.args:
            if not _offers(target, capability):
                pytest.skip(f"the target does not offer '{capability}'")


def _offers(target: Target, capability: str) -> bool:
    capabilities = target.capabilities
    if capability == "scheduler":
        return capabilities.scheduler
    if capability == "s3-transfer":
        return capabilities.transfer == "s3"
    if capability == "internal-transfers":
        return capabilities.internal_transfers and capabilities.scheduler
    return capability in capabilities.optional_endpoints


@pytest.fixture(scope="session")
def client(target: Target, recorder: Recorder) -> Client:
    return Client(target, target.identities[0], recorder)


@pytest.fixture(scope="session")
def other(target: Target, recorder: Recorder) -> Client:
    return Client(target, target.identities[1], recorder)


RUN_ID = f"fc-conformance-{datetime.datetime.now():%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"


def _workdir(client: Client) -> Iterator[str]:
    """A folder of this run's own: made through the API, removed the same way."""
    base = client.target.system.work_dir.format(user=client.user).rstrip("/")
    path = f"{base}/{RUN_ID}"
    made = client.post("/utilities/mkdir", targetPath=path, p="true")
    if made.status_code != 201:
        pytest.fail(f"cannot make the work folder {path}: {made.status_code} {made.text[:200]}")
    yield path
    client.delete("/utilities/rm", targetPath=path)  # only what this run made


@pytest.fixture(scope="session")
def workdir(client: Client) -> Iterator[str]:
    yield from _workdir(client)


@pytest.fixture(scope="session")
def other_workdir(other: Client) -> Iterator[str]:
    yield from _workdir(other)


@pytest.fixture
def folder(client: Client, workdir: str, request: pytest.FixtureRequest) -> str:
    """A fresh folder inside the run's work folder, for one test."""
    path = f"{workdir}/{request.node.name[:40]}-{uuid.uuid4().hex[:6]}"
    made = client.post("/utilities/mkdir", targetPath=path)
    assert made.status_code == 201, made.text
    return path


@pytest.fixture(scope="session")
def system_access(target: Target) -> SystemTruth | None:
    ssh = target.ground_truth.ssh
    return SystemTruth(ssh) if ssh else None


@pytest.fixture
def truth(
    target: Target, system_access: SystemTruth | None, request: pytest.FixtureRequest
) -> Truth:
    """Ground truth for this test; checks it cannot make are reported as skipped."""
    return Truth(system_access, target.ground_truth.s3, request.node)
