"""The judge's rules: every scenario names the source of its expectations;
MUST and SHOULD by source; requests charged to the test and phase that sent
them; the matrix fails the operation a failing check was about, never a
cleanup request; SHOULD misses are warnings (failures under --strict-should);
the report carries levels, sources, checks, warnings and requests."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
import requests

from firecrest_testbuild.scenarios import verdict
from firecrest_testbuild.scenarios.client import SHARED, Recorder
from firecrest_testbuild.scenarios.endpoints import operation_of
from firecrest_testbuild.scenarios.report import ERROR, FAIL, PASS, Case, build, markdown
from firecrest_testbuild.scenarios.verdict import (
    client,
    must,
    operations_of,
    reference,
    should,
    spec,
    tutorial,
)

# --- every check says where its expectation comes from --------------------------


def test_the_level_follows_the_kind_of_source():
    assert spec("GET /x", "y").level == tutorial("step", "y").level == "MUST"
    assert client("pyfirecrest", "y").level == reference("x.py", "y").level == "SHOULD"
    with pytest.raises(ValueError, match="spec or tutorial"):
        must(True, "m", reference("x.py", "y"))
    with pytest.raises(ValueError, match="client or reference"):
        should(True, "m", spec("GET /x", "y"))


class FakeItem:
    """What verdict needs of a test item: its user_properties and its options."""

    def __init__(self, strict: bool = False) -> None:
        self.user_properties: list[tuple[str, object]] = []
        self.config = SimpleNamespace(getoption=lambda name, default=None: strict)


@pytest.fixture
def bound() -> Any:
    def bind(strict: bool = False) -> FakeItem:
        item = FakeItem(strict)
        verdict.bind(item, "call")  # type: ignore[arg-type]
        return item

    yield bind
    verdict.bind(None)


def test_checks_are_recorded_with_source_level_and_operation(bound):
    item = bound()
    response = SimpleNamespace(**{verdict.OPERATION_ATTRIBUTE: "GET /utilities/view"})
    assert should(False, "not text", reference("utilities.py view", "400"), about=response) is False
    with pytest.raises(verdict.MustMiss, match=r"a 400 \[MUST \(spec: GET /x: y\)\]"):
        must(False, "a 400", spec("GET /x", "y"), about="GET /x")
    warning, miss = verdict.checks_of(item.user_properties)
    assert warning == {
        "passed": False,
        "message": "not text",
        "kind": "reference",
        "where": "utilities.py view",
        "says": "400",
        "level": "SHOULD",
        "about": ["GET /utilities/view"],
        "phase": "call",
    }
    assert (miss["level"], miss["about"]) == ("MUST", ["GET /x"])


def test_a_should_miss_fails_only_under_strict(bound):
    bound(strict=True)
    with pytest.raises(pytest.fail.Exception, match="SHOULD missed under --strict-should"):
        should(False, "a detail", reference("x.py", "y"))


def test_what_a_check_is_about():
    stamped = SimpleNamespace(**{verdict.OPERATION_ATTRIBUTE: "POST /compute/jobs/upload"})
    assert operations_of(None) == ()
    assert operations_of("GET /tasks") == ("GET /tasks",)
    assert operations_of([stamped, "GET /tasks"]) == ("POST /compute/jobs/upload", "GET /tasks")


# --- every request is charged to the test and phase that sent it ---------------


def answer(method: str, path: str, body: object = None, status: int = 200) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body or {}).encode()
    response.headers["Content-Type"] = "application/json"
    response.request = requests.Request(method, f"http://firecrest{path}").prepare()
    return response


def test_requests_are_charged_to_test_and_phase_and_task_looks_to_their_operation():
    recorder = Recorder()
    with recorder.charged_to("t::a", "call"):
        made = answer("GET", "/compute/jobs/7", {"success": "Task created", "task_id": "abc"})
        recorder.record(made, "/compute/jobs/7")
        with recorder.charged_to(SHARED, "setup"):  # a session fixture set up meanwhile
            recorder.record(answer("POST", "/utilities/mkdir", status=201), "/utilities/mkdir")
        recorder.record(answer("GET", "/tasks/abc", {"task": {}}), "/tasks/abc")
    with recorder.charged_to("t::a", "teardown"):
        recorder.record(answer("DELETE", "/compute/jobs/7"), "/compute/jobs/7")
    charged = [(e.test, e.phase, e.operation, e.subject) for e in recorder.exchanges]
    jobs = ("GET", "/compute/jobs/{jobid}")
    assert charged == [
        ("t::a", "call", jobs, jobs),
        (SHARED, "setup", ("POST", "/utilities/mkdir"), ("POST", "/utilities/mkdir")),
        ("t::a", "call", ("GET", "/tasks/{taskid}"), jobs),
        (
            "t::a",
            "teardown",
            ("DELETE", "/compute/jobs/{jobid}"),
            ("DELETE", "/compute/jobs/{jobid}"),
        ),
    ]
    assert getattr(made, verdict.OPERATION_ATTRIBUTE) == "GET /compute/jobs/{jobid}"
    assert recorder.origin("abc") == "GET /compute/jobs/{jobid}"
    assert recorder.current == ("", "")


# --- the matrix and the failures come from checks and charged requests ---------


def sent(test: str, method: str, path: str, phase: str = "call", subject: str = "") -> Any:
    operation = operation_of(method, path)
    return SimpleNamespace(
        test=test,
        phase=phase,
        path=path,
        status=200,
        operation=operation,
        subject=tuple(subject.split(" ", 1)) if subject else operation,
        request=f"{method} {path}",
        response=f"HTTP 200 for {method} {path}",
    )


def check(passed: bool, level: str = "MUST", about: tuple[str, ...] = ()) -> dict[str, Any]:
    kind = "spec" if level == "MUST" else "reference"
    return {
        "passed": passed,
        "message": f"a {level} check",
        "kind": kind,
        "where": "somewhere",
        "says": "something",
        "level": level,
        "about": list(about),
        "phase": "call",
    }


def document(cases: list[Case], exchanges: list[Any], strict: bool = False) -> dict[str, Any]:
    return build(cases, exchanges, {"name": "t"}, [], "start", "end", 12.5, strict)


def cells(built: dict[str, Any]) -> dict[str, str]:
    return {f"{r['method']} {r['path']}": r["status"] for r in built["matrix"]}


JOB = "GET /compute/jobs/{jobid}"
STUCK = "s/test_compute.py::test_a_running_job_is_listed_and_cancelled"
STUCK_EXCHANGES = [
    sent(STUCK, "GET", "/compute/jobs/7"),
    sent(STUCK, "GET", "/tasks/abc", subject=JOB),  # status 100 "Queued", for ever
    sent(STUCK, "GET", "/tasks/abc", subject=JOB),
    sent(STUCK, "DELETE", "/compute/jobs/7", phase="teardown"),  # cleanup
]


@pytest.mark.parametrize(
    "checks",
    [[check(False, about=(JOB,))], []],
    ids=["the check names its operation", "a plain assert: the last request's operation"],
)
def test_a_task_that_never_ends_fails_its_operation_not_the_cleanup(checks):
    case = Case(STUCK, "compute", FAIL, reason="task abc: not finished", failed_phase="call")
    case.checks = checks
    built = document([case], STUCK_EXCHANGES)
    assert cells(built)[JOB] == "fail"
    assert (
        cells(built)["DELETE /compute/jobs/{jobid}"] == "not-covered"
    )  # neither blamed nor passed
    assert cells(built)["GET /tasks/{taskid}"] == "pass"  # the task looks themselves worked
    failure = built["cases"][0]["failure"]
    assert failure["operations"] == [JOB]
    assert failure["request"] == "GET /tasks/abc" and failure["phase"] == "call"
    assert [r["phase"] for r in built["cases"][0]["requests"]] == ["call"] * 3 + ["teardown"]


def test_a_failure_shows_the_failing_tests_own_request():
    failing = Case(
        "s/test_utilities.py::bad", "utilities", FAIL, reason="no 400", failed_phase="call"
    )
    passing = Case("s/test_utilities.py::good", "utilities", PASS)
    exchanges = [
        sent(failing.id, "POST", "/utilities/mkdir"),
        sent(passing.id, "GET", "/utilities/ls"),  # sent later, by another test
    ]
    built = document([failing, passing], exchanges)
    assert built["cases"][0]["failure"]["request"] == "POST /utilities/mkdir"
    assert cells(built)["POST /utilities/mkdir"] == "fail"
    assert cells(built)["GET /utilities/ls"] == "pass"


def test_shared_fixtures_requests_are_charged_to_no_test():
    last = Case("s/test_utilities.py::last", "utilities", PASS)
    exchanges = [
        sent(SHARED, "POST", "/utilities/mkdir", phase="setup"),
        sent(last.id, "GET", "/utilities/ls"),
        sent(SHARED, "DELETE", "/utilities/rm", phase="teardown"),
    ]
    built = document([last], exchanges)
    assert [r["operation"] for r in built["cases"][0]["requests"]] == ["GET /utilities/ls"]
    assert [(r["phase"], r["operation"]) for r in built["shared_requests"][SHARED]] == [
        ("setup", "POST /utilities/mkdir"),
        ("teardown", "DELETE /utilities/rm"),
    ]
    assert cells(built)["DELETE /utilities/rm"] == "not-covered"


def test_a_setup_error_blames_its_setup_request_and_a_teardown_error_nothing():
    in_setup = Case("s/test_tasks.py::a", "tasks", ERROR, reason="timeout", failed_phase="setup")
    in_teardown = Case("s/test_tasks.py::b", "tasks", ERROR, reason="rm", failed_phase="teardown")
    exchanges = [
        sent(in_setup.id, "GET", "/compute/partitions", phase="setup"),
        sent(in_teardown.id, "GET", "/tasks"),
        sent(in_teardown.id, "DELETE", "/utilities/rm", phase="teardown"),
    ]
    built = document([in_setup, in_teardown], exchanges)
    assert cells(built)["GET /compute/partitions"] == "fail"
    assert cells(built)["GET /tasks"] == "pass"
    assert cells(built)["DELETE /utilities/rm"] == "not-covered"


def test_a_failing_test_that_sent_nothing_fails_what_it_covers():
    case = Case(
        "s/test_client_pyfirecrest.py::walk",
        "client_pyfirecrest",
        FAIL,
        reason="pyfirecrest raised",
        covers=["GET /utilities/ls"],
        failed_phase="call",
    )
    assert cells(document([case], []))["GET /utilities/ls"] == "fail"


def test_should_misses_are_warnings_with_their_source():
    case = Case("s/test_utilities.py::view", "utilities", PASS)
    case.checks = [check(True), check(False, "SHOULD", about=("GET /utilities/view",))]
    built = document([case], [sent(case.id, "GET", "/utilities/view")])
    row = built["cases"][0]
    assert row["warnings"] == [case.checks[1]] and "failure" not in row
    assert {s["level"] for s in row["sources"]} == {"MUST", "SHOULD"}
    view = next(r for r in built["matrix"] if r["path"] == "/utilities/view")
    assert view["status"] == "pass" and view["warnings"] == [f"{case.id}: a SHOULD check"]
    assert built["scores_by_level"] == {
        "MUST": {"passed": 1, "total": 1, "percent": 100.0},
        "SHOULD": {"passed": 0, "total": 1, "percent": 0.0},
    }
    assert built["scores_by_area"]["utilities"]["SHOULD"]["total"] == 1
    text = markdown(built)
    assert "SHOULD warnings (1)" in text and "SHOULD, reference: somewhere" in text
    assert "MUST (tests passed): 1/1" in text


def test_under_strict_a_should_miss_fails_its_operation():
    case = Case("s/test_utilities.py::view", "utilities", FAIL, reason="x", failed_phase="call")
    case.checks = [check(False, "SHOULD", about=("GET /utilities/view",))]
    built = document([case], [sent(case.id, "GET", "/utilities/view")], strict=True)
    assert cells(built)["GET /utilities/view"] == "fail"
    assert built["cases"][0]["failure"]["source"]["level"] == "SHOULD"
    assert built["strict"] is True


def test_the_report_carries_levels_and_timing():
    case = Case(
        "s/test_status.py::a",
        "status",
        PASS,
        level="SHOULD",
        source=reference("status.py", "x").as_dict(),
    )
    not_offered = Case(
        "s/test_reservations.py::b",
        "reservations",
        "SKIP",
        reason="the target does not offer 'reservations'",
        covers=["GET /reservations", "POST /reservations"],
    )
    built = document([case, not_offered], [])
    assert built["duration_seconds"] == 12.5
    assert built["cases"][0]["level"] == "SHOULD"
    assert built["cases"][0]["sources"] == [reference("status.py", "x").as_dict()]
    # Skipped operations are not judged: not in the score (not-covered ones are).
    assert built["scores"]["reservations"] == {"passed": 0, "total": 2, "percent": 0.0}


def test_the_report_names_what_the_target_says_it_is(monkeypatch, tmp_path):
    from firecrest_testbuild.scenarios import report
    from firecrest_testbuild.scenarios.client import Client
    from tests.unit.test_scenarios import ENV, TARGET

    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    general = [
        {"name": "FIRECREST_VERSION", "value": "v1.16.6"},
        {"name": "FIRECREST_BUILD", "value": "upstream 2024-05"},
    ]
    parameters = SimpleNamespace(json=lambda: {"out": {"general": general}})
    monkeypatch.setattr(Client, "request", lambda *args, **kwargs: parameters)
    path = tmp_path / "site.yaml"
    path.write_text(TARGET)
    config = SimpleNamespace(getoption=lambda name, default=None: str(path))
    summary = report._target_summary(config)  # type: ignore[arg-type]
    assert (summary["implementation"], summary["version"]) == ("upstream 2024-05", "v1.16.6")
    assert summary["reported"] == "FIRECREST_VERSION=v1.16.6, FIRECREST_BUILD=upstream 2024-05"


def test_a_version_pyfirecrest_cannot_parse_is_a_finding_with_its_cause(bound):
    from packaging.version import InvalidVersion, parse

    from firecrest_testbuild.scenarios import test_client_pyfirecrest as walk

    reported = "1.16.6 (testbuild)"
    with pytest.raises(InvalidVersion):  # what pyfirecrest's first call does with it
        parse(reported)
    general = [{"name": "FIRECREST_VERSION", "value": reported}]
    parameters = answer("GET", "/status/parameters", {"out": {"general": general}})
    setattr(parameters, verdict.OPERATION_ATTRIBUTE, "GET /status/parameters")
    target = SimpleNamespace(api=SimpleNamespace(version="1.16.1"))
    client_ = SimpleNamespace(target=target, request=lambda *args, **kwargs: parameters)
    chosen: list[str] = []
    item = bound()
    walk.usable_version(client_, SimpleNamespace(set_api_version=chosen.append))
    assert chosen == ["1.16.1"]  # the walk goes on, with the declared version
    answered, finding = verdict.checks_of(item.user_properties)
    assert answered["passed"] is True and answered["level"] == "MUST"  # the 200
    assert finding["passed"] is False and finding["level"] == "SHOULD"
    assert f"FIRECREST_VERSION {reported!r} is not a version" in finding["message"]
    assert "InvalidVersion" in finding["message"] and finding["kind"] == "client"
    assert finding["about"] == ["GET /status/parameters"]
