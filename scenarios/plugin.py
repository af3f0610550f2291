"""The pytest plugin of the conformance suites.

Options: --target FILE (or TESTBUILD_TARGET) names the deployment; --report
DIR writes JUnit XML, JSON, Markdown and HTML there; --strict-should fails a
test on a missed SHOULD check (otherwise a warning in the report). Fixtures:
`target`, `client` and `other` (the target's two identities), `workdir` and
`other_workdir` (a fresh folder per run and identity, removed afterwards),
`folder` (a fresh folder per test), `cancel_at_end` (jobs cancelled in the
test's teardown), `truth` (checks on the system and in the staging store,
each reported as skipped with the reason when the target grants no access).
The fixture `testbuild_target` (a running local testbuild, for client
projects' CI) is the harness's (firecrest_testbuild.harness.pytest_plugin).
Markers: `requires(capability)` skips a test the target does not offer;
`source(...)` names where a test's plain asserts come from (verdict.py);
`covers(*operations)` names the operations a test is about; `api(generation)`
names the API generation (1 or 2) a suite judges: it is deselected for a
target of the other generation (`api.version`), unmarked tests always run.

Every request the suites' client sends is charged to the test and phase
(setup, call, teardown) running it; requests of session- and module-scoped
fixtures to a pseudo-test of their own ("session", or the module's id).
"""

from __future__ import annotations

import datetime
import os
import uuid
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

from firecrest_testbuild.scenarios import verdict
from firecrest_testbuild.scenarios.client import SHARED, Client, Recorder
from firecrest_testbuild.scenarios.endpoints import CATALOGS
from firecrest_testbuild.scenarios.target import Target, TargetError, load
from firecrest_testbuild.scenarios.truth import SystemTruth, Truth

RECORDER = pytest.StashKey[Recorder]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("firecrest conformance")
    group.addoption("--target", help="the target description (YAML); or TESTBUILD_TARGET")
    group.addoption("--report", help="write the conformance report (JUnit, JSON, MD, HTML) here")
    group.addoption(
        verdict.STRICT_OPTION,
        action="store_true",
        default=False,
        help="fail a test on a missed SHOULD check (default: a warning in the report)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "requires(capability): skip unless the target offers the capability"
    )
    config.addinivalue_line("markers", "covers(*operations): operations a test is about")
    config.addinivalue_line(
        "markers", "api(generation): the API generation (1 or 2) the test judges"
    )
    config.addinivalue_line(
        "markers", "source(source): where the test's plain asserts come from (verdict.py)"
    )
    config.stash[RECORDER] = Recorder()
    report = config.getoption("--report", default=None)
    if report:
        Path(report).mkdir(parents=True, exist_ok=True)
        if not config.option.xmlpath:
            config.option.xmlpath = str(Path(report) / "junit.xml")
        from firecrest_testbuild.scenarios.report import ReportCollector

        config.pluginmanager.register(ReportCollector(config, Path(report)), "conformance-report")


def recorder_of(config: pytest.Config) -> Recorder:
    return config.stash[RECORDER]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A target judges one API generation: the other generation's suites are
    deselected (before the report sees them). An unreadable target deselects
    nothing: the `target` fixture explains it."""
    path = _target_path(config)
    if not path:
        return
    try:
        generation = load(Path(path)).generation
    except TargetError:
        return
    # The report's matrix is the generation's even when no test runs.
    recorder_of(config).catalog = CATALOGS[generation]
    kept = [item for item in items if _generation_of(item) in (None, generation)]
    dropped = [item for item in items if item not in kept]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _generation_of(item: pytest.Item) -> int | None:
    marker = item.get_closest_marker("api")
    return int(marker.args[0]) if marker is not None else None


def _target_path(config: pytest.Config) -> str | None:
    path = config.getoption("--target", default=None) or os.environ.get("TESTBUILD_TARGET")
    return str(path) if path else None


# Each phase of a test: its requests and checks are charged to it.


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    return (yield from _charged(item, "setup"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    return (yield from _charged(item, "call"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    return (yield from _charged(item, "teardown"))


def _charged(item: pytest.Item, phase: str) -> Generator[None, None, None]:
    verdict.bind(item, phase)
    with recorder_of(item.config).charged_to(item.nodeid, phase):
        try:
            return (yield)
        finally:
            verdict.bind(None)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[object], request: pytest.FixtureRequest
) -> Generator[None, object, object]:
    """A session- or module-scoped fixture's requests belong to no test: they
    are charged to its pseudo-test, in its setup and in its teardown."""
    owner = _shared_owner(fixturedef, request)
    if owner is None:
        return (yield)
    recorder = recorder_of(request.config)
    # Finalizers run last-in first-out: this one runs after the fixture's own
    # teardown, the one added after setup runs before it.
    fixturedef.addfinalizer(recorder.release)
    try:
        with recorder.charged_to(owner, "setup"):
            return (yield)
    finally:
        fixturedef.addfinalizer(lambda: recorder.charge(owner, "teardown"))


def _shared_owner(
    fixturedef: pytest.FixtureDef[object], request: pytest.FixtureRequest
) -> str | None:
    if fixturedef.scope == "session":
        return SHARED
    if fixturedef.scope in ("package", "module", "class"):
        return request.node.nodeid or SHARED
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if call.when == "call" and not report.skipped:
        _judge_own_asserts(item, call, report)
    return report


def _judge_own_asserts(
    item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport
) -> None:
    """Record the test's plain asserts as one check of its declared source; a
    SHOULD-level test's missed assert is a warning unless --strict-should."""
    source = verdict.declared_source(item)
    error = call.excinfo
    if source is None or (error is not None and not _own_assert_missed(error)):
        return  # a must() miss or a crash: the test's own asserts were not judged
    message = _first_line(report) if error else "the test's own assertions"
    about = _last_served(item) if error else ()
    check = verdict.Check(source, message, passed=error is None, about=about)
    verdict.record(item, check)
    report.user_properties.append(check.as_property())
    if error and source.level == "SHOULD" and not verdict.strict(item.config):
        report.outcome = "passed"
        report.longrepr = None


def _last_served(item: pytest.Item) -> tuple[str, ...]:
    """A plain assert names no response: it is taken to be about the operation
    the test's last request served (a look at a task serves the operation
    that created the task); cleanup belongs to the teardown, so never that."""
    sent = [e for e in recorder_of(item.config).of_test(item.nodeid) if e.phase == "call"]
    subject = sent[-1].subject or sent[-1].operation if sent else None
    return (" ".join(subject),) if subject else ()


def _own_assert_missed(error: pytest.ExceptionInfo[BaseException]) -> bool:
    return error.errisinstance(AssertionError) and not error.errisinstance(verdict.MustMiss)


def _first_line(report: pytest.TestReport) -> str:
    """The assert's own message, without pytest's explanation of it."""
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)[:500]
    return text.removeprefix("AssertionError: ").split("\nassert ", 1)[0].strip()


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Target:
    path = _target_path(request.config)
    if not path:
        pytest.exit("no target: give --target FILE or set TESTBUILD_TARGET", returncode=4)
    try:
        target = load(Path(path))
    except TargetError as error:
        pytest.exit(
            f"✗ target {error.source} cannot be used:\n  " + "\n  ".join(error.problems),
            returncode=4,
        )
    # Requests are matched to the operations of the target's API generation.
    recorder_of(request.config).catalog = CATALOGS[target.generation]
    return target


@pytest.fixture(scope="session")
def recorder(request: pytest.FixtureRequest) -> Recorder:
    return recorder_of(request.config)


@pytest.fixture(autouse=True)
def _required_capabilities(request: pytest.FixtureRequest) -> None:
    for marker in request.node.iter_markers("requires"):
        target: Target = request.getfixturevalue("target")
        for capability in marker.args:
            if not target.capabilities.offers(capability):
                pytest.skip(f"the target does not offer '{capability}'")


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


@pytest.fixture
def cancel_at_end(client: Client) -> Iterator[Callable[[str], None]]:
    """Jobs to cancel in the test's teardown, whatever became of the test:
    cleanup, sent in the teardown phase and never judged."""
    jobs: list[str] = []
    yield jobs.append
    for jobid in jobs:
        client.request("DELETE", f"/compute/jobs/{jobid}")


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
