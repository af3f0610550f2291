"""The suites' pytest plugin, run on small synthetic suites (no target, no
Docker): requests charged to (test, phase) by pytest's own hooks, shared
fixtures to pseudo-tests, SHOULD misses as warnings that fail only under
--strict-should, and the report's data for all of it."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

SUITE = """
import pytest
import requests

from firecrest_testbuild.scenarios.verdict import must, reference, should, spec


def answer(method, path, status=200):
    response = requests.Response()
    response.status_code = status
    response._content = b"{}"
    response.headers["Content-Type"] = "application/json"
    response.request = requests.Request(method, "http://firecrest" + path).prepare()
    return response


def send(recorder, method, path):
    recorder.record(answer(method, path), path)


@pytest.fixture(scope="session")
def run_folder(recorder):
    send(recorder, "POST", "/utilities/mkdir")
    yield
    send(recorder, "DELETE", "/utilities/rm")


@pytest.fixture(scope="module")
def listing(recorder):
    send(recorder, "GET", "/compute/partitions")


@pytest.fixture
def own(recorder):
    send(recorder, "GET", "/utilities/whoami")
    yield
    send(recorder, "DELETE", "/compute/jobs/1")


@pytest.mark.source(spec("GET /utilities/ls", "lists"))
def test_first(run_folder, listing, own, recorder):
    send(recorder, "GET", "/utilities/ls")


@pytest.mark.source(reference("x.py", "answers so"))
def test_should_level_miss(recorder):
    send(recorder, "GET", "/utilities/view")
    assert False, "the reference's answer is missing"


@pytest.mark.source(spec("GET /a", "b"))
def test_must_level_with_a_should_miss():
    should(False, "a detail", reference("x.py", "detail"), about="GET /utilities/head")


@pytest.mark.source(reference("x.py", "answers so"))
def test_should_level_with_a_must_miss():
    must(False, "a rule", spec("GET /utilities/tail", "rule"), about="GET /utilities/tail")


@pytest.mark.source(spec("GET /utilities/stat", "stats"))
def test_must_level_miss(recorder):
    send(recorder, "GET", "/utilities/stat")
    assert False, "no stat"
"""


def run(pytester: pytest.Pytester, *options: str) -> tuple[Any, dict[str, Any]]:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_inprocess("--report", "out", "-p", "no:cacheprovider", *options)
    return result, json.loads((pytester.path / "out" / "report.json").read_text())


def case(document: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in document["cases"] if c["id"].endswith(f"::{name}"))


def test_requests_are_charged_to_the_phase_and_shared_fixtures_to_no_test(pytester):
    _, document = run(pytester)
    first = case(document, "test_first")
    assert [(r["phase"], r["operation"]) for r in first["requests"]] == [
        ("setup", "GET /utilities/whoami"),
        ("call", "GET /utilities/ls"),
        ("teardown", "DELETE /compute/jobs/{jobid}"),
    ]
    shared = {
        owner: [(r["phase"], r["operation"]) for r in rows]
        for owner, rows in document["shared_requests"].items()
    }
    assert shared == {
        "session": [("setup", "POST /utilities/mkdir"), ("teardown", "DELETE /utilities/rm")],
        "test_suite.py": [("setup", "GET /compute/partitions")],
    }
    # The last test ran when the run folder was removed: not charged with it.
    last = case(document, "test_must_level_miss")
    assert [r["operation"] for r in last["requests"]] == ["GET /utilities/stat"]


def test_should_misses_are_warnings_and_must_misses_failures(pytester):
    result, document = run(pytester)
    result.assert_outcomes(passed=3, failed=2)
    assert result.ret == 1
    warned = case(document, "test_should_level_miss")
    assert (warned["status"], warned["level"]) == ("PASS", "SHOULD")
    assert [(w["message"], w["about"]) for w in warned["warnings"]] == [
        ("the reference's answer is missing", ["GET /utilities/view"])
    ]
    detail = case(document, "test_must_level_with_a_should_miss")
    assert (detail["status"], detail["level"]) == ("PASS", "MUST")
    assert [w["where"] for w in detail["warnings"]] == ["x.py"]
    ruled = case(document, "test_should_level_with_a_must_miss")
    assert ruled["status"] == "FAIL" and ruled["failure"]["source"]["level"] == "MUST"
    missed = case(document, "test_must_level_miss")
    assert missed["failure"]["operations"] == ["GET /utilities/stat"]
    assert missed["failure"]["source"] == {
        "kind": "spec",
        "where": "GET /utilities/stat",
        "says": "stats",
        "level": "MUST",
    }
    matrix = {f"{r['method']} {r['path']}": r for r in document["matrix"]}
    assert matrix["GET /utilities/view"]["status"] == "pass"
    assert matrix["GET /utilities/view"]["warnings"]
    assert matrix["GET /utilities/head"]["warnings"]
    assert matrix["GET /utilities/tail"]["status"] == "fail"
    assert matrix["GET /utilities/stat"]["status"] == "fail"
    assert document["scores_by_level"]["MUST"] == {"passed": 3, "total": 5, "percent": 60.0}
    assert document["scores_by_level"]["SHOULD"] == {"passed": 0, "total": 2, "percent": 0.0}


def test_under_strict_should_every_miss_fails(pytester):
    result, document = run(pytester, "--strict-should")
    result.assert_outcomes(passed=1, failed=4)
    assert document["strict"] is True
    matrix = {f"{r['method']} {r['path']}": r["status"] for r in document["matrix"]}
    assert matrix["GET /utilities/view"] == matrix["GET /utilities/head"] == "fail"


@pytest.mark.parametrize(("flag", "passed"), [(["--strict"], True), ([], False)])
def test_testbuild_conformance_strict_makes_should_misses_fail(monkeypatch, tmp_path, flag, passed):
    from firecrest_testbuild.harness import cli, conformance

    commands: list[list[str]] = []

    def run(command: list[str], **_: object) -> SimpleNamespace:
        commands.append(command)
        return SimpleNamespace(returncode=0)

    monkeypatch.setattr(conformance.subprocess, "run", run)
    target, report = str(tmp_path / "site.yaml"), str(tmp_path / "out")
    assert cli.main(["conformance", "--target", target, "--report", report, *flag]) == 0
    assert ("--strict-should" in commands[0]) is passed
