"""The conformance suites' own machinery: target files, operation matching,
the report's matrix and scores, comparing two reports, and every scenario
naming the source of its plain asserts (the `source` marker)."""

from __future__ import annotations

import importlib
import pkgutil
from types import SimpleNamespace
from typing import Any

import pytest

from firecrest_testbuild import scenarios
from firecrest_testbuild.scenarios.endpoints import OPERATIONS, OUT_OF_SCOPE, operation_of
from firecrest_testbuild.scenarios.report import (
    FAIL,
    PASS,
    SKIP,
    Case,
    build,
    compare,
    markdown,
    page,
)
from firecrest_testbuild.scenarios.target import TargetError, parse
from firecrest_testbuild.scenarios.truth import Truth
from firecrest_testbuild.scenarios.verdict import Source

TARGET = """
name: site
api: {url: "https://firecrest.example.org"}
auth:
  tokenUrl: https://auth.example.org/token
  clientId: my-client
  clientSecret: ${MY_SECRET}
identities:
  - {name: alice, password: "${ALICE_PASSWORD}"}
  - {name: service-account-my-client}
system: {name: daint}
"""
ENV = {"MY_SECRET": "s3cret", "ALICE_PASSWORD": "pw"}


def test_a_target_reads_secrets_from_the_environment_and_hides_them():
    target = parse(TARGET, "site.yaml", ENV)
    assert target.auth.client_secret == "s3cret"
    assert target.identities[1].password is None  # client credentials
    public = target.public()
    assert public["auth"]["clientSecret"] == "***"
    assert public["identities"][0]["password"] == "***"


def test_firecrest_variables_override_the_file():
    environ = ENV | {
        "FIRECREST_URL": "http://127.0.0.1:9999",
        "FIRECREST_MACHINE": "eiger",
        "FIRECREST_CLIENT_ID": "other",
        "FIRECREST_CLIENT_SECRET": "x",
        "FIRECREST_TOKEN_URI": "http://127.0.0.1:8080/token",
    }
    target = parse(TARGET, "site.yaml", environ)
    assert target.api.url == "http://127.0.0.1:9999"
    assert (target.system.name, target.auth.client_id) == ("eiger", "other")
    assert target.auth.token_url == "http://127.0.0.1:8080/token"


@pytest.mark.parametrize(
    ("text", "environ", "expected"),
    [
        (TARGET, {}, "${MY_SECRET} is used but not set"),
        (
            TARGET.replace("name: daint", "name: daint, colour: red"),
            ENV,
            "unknown key 'system.colour'",
        ),
        (TARGET.replace("  - {name: service-account-my-client}\n", ""), ENV, "identities"),
        (TARGET.replace("service-account-my-client", "alice"), ENV, "two different users"),
        ("- not a mapping", ENV, "the top level must be a mapping"),
    ],
)
def test_bad_targets_are_explained(text: str, environ: dict, expected: str):
    with pytest.raises(TargetError) as raised:
        parse(text, "site.yaml", environ)
    assert raised.value.source == "site.yaml"
    assert any(expected in problem for problem in raised.value.problems), raised.value.problems


def test_requests_map_to_the_most_specific_operation():
    assert operation_of("GET", "/tasks/abc") == ("GET", "/tasks/{taskid}")
    assert operation_of("GET", "/tasks") == ("GET", "/tasks")
    assert operation_of("POST", "/compute/jobs/upload") == ("POST", "/compute/jobs/upload")
    assert operation_of("DELETE", "/compute/jobs/42") == ("DELETE", "/compute/jobs/{jobid}")
    assert operation_of("GET", "/nowhere") is None
    assert len(OPERATIONS) == 51 and OUT_OF_SCOPE == {}  # reservations: judged where offered


def exchange(test: str, method: str, path: str, phase: str = "call") -> SimpleNamespace:
    """An exchange as the suites' client records it (client.Exchange)."""
    operation = operation_of(method, path)
    return SimpleNamespace(
        test=test,
        phase=phase,
        path=path,
        status=200,
        operation=operation,
        subject=operation,
        request=f"{method} {path}",
        response="HTTP 200",
    )


def test_the_matrix_comes_from_what_tests_did():
    cases = [
        Case("s/test_utilities.py::ok", "utilities", PASS),
        Case(
            "s/test_utilities.py::broken",
            "utilities",
            FAIL,
            reason="expected 400, got 200",
            failed_phase="call",
        ),
        Case(
            "s/test_compute.py::skipped",
            "compute",
            SKIP,
            reason="no scheduler",
            covers=["GET /compute/nodes"],
        ),
    ]
    exchanges = [
        exchange("s/test_utilities.py::ok", "GET", "/utilities/ls"),
        exchange("s/test_utilities.py::broken", "POST", "/utilities/mkdir"),
        exchange("s/test_utilities.py::broken", "GET", "/utilities/stat"),
    ]
    document = build(cases, exchanges, {"name": "t"}, [], "start", "end")
    matrix = {f"{r['method']} {r['path']}": r for r in document["matrix"]}
    assert matrix["GET /utilities/ls"]["status"] == "pass"
    assert matrix["POST /utilities/mkdir"]["status"] == "pass"  # passed before the failure
    assert matrix["GET /utilities/stat"]["status"] == "fail"  # the failing request
    assert matrix["GET /compute/nodes"]["status"] == "skipped"
    assert "no scheduler" in matrix["GET /compute/nodes"]["detail"]
    assert matrix["GET /utilities/view"]["status"] == "not-covered"
    assert matrix["GET /reservations"]["status"] == "not-covered"
    failure = next(c for c in document["cases"] if c["status"] == FAIL)["failure"]
    assert failure == {
        "request": "GET /utilities/stat",
        "actual": "HTTP 200",
        "expected": "expected 400, got 200",
        "source": None,
        "operations": ["GET /utilities/stat"],
        "phase": "call",
    }
    assert document["scores"]["utilities"] == {"passed": 2, "total": 19, "percent": 10.5}
    assert document["totals"] == {"PASS": 1, "FAIL": 1, "SKIP": 1, "ERROR": 0}
    assert "GET /utilities/stat" in markdown(document) and "<table>" in page(document)


def test_compare_marks_operations_that_differ():
    first = build(
        [Case("s/test_status.py::a", "status", PASS)],
        [exchange("s/test_status.py::a", "GET", "/status/systems")],
        {"name": "one"},
        [],
        "s",
        "e",
    )
    second = build(
        [Case("s/test_status.py::a", "status", FAIL, reason="no")],
        [exchange("s/test_status.py::a", "GET", "/status/systems")],
        {"name": "two"},
        [],
        "s",
        "e",
    )
    lines = compare(first, second).splitlines()
    differing = [line for line in lines if line.startswith("≠")]
    assert len(differing) == 1 and "GET /status/systems" in differing[0]
    assert "one" in lines[0] and "two" in lines[0]


def test_ground_truth_not_granted_is_recorded_as_a_skipped_check():
    node = SimpleNamespace(user_properties=[])
    truth = Truth(None, None, node)
    assert truth.system("the file's bytes") is None
    assert truth.store("the object") is None
    assert node.user_properties == [
        ("skipped-check", "the file's bytes: the target grants no SSH access (groundTruth.ssh)"),
        ("skipped-check", "the object: the target grants no S3 access (groundTruth.s3)"),
    ]
    case = Case("s/test_utilities.py::t", "utilities", PASS, skipped_checks=["the file's bytes: x"])
    document = build([case], [], {"name": "t"}, [], "s", "e")
    assert document["cases"][0]["skipped_checks"] == ["the file's bytes: x"]
    assert "the file's bytes: x" in markdown(document)


def scenario_tests() -> list[tuple[str, Any]]:
    """Every test function of the suites (scenarios/test_*.py and
    scenarios/v2/test_*.py), by id."""
    found = []
    prefix = "firecrest_testbuild.scenarios."
    for module_info in pkgutil.walk_packages(scenarios.__path__, prefix):
        if not module_info.name.rsplit(".", 1)[-1].startswith("test_"):
            continue
        module = importlib.import_module(module_info.name)
        found += [
            (f"{module_info.name.removeprefix(prefix)}::{name}", function)
            for name, function in vars(module).items()
            if name.startswith("test_") and callable(function)
        ]
    return found


def source_marks(function: Any) -> list[pytest.Mark]:
    return [mark for mark in getattr(function, "pytestmark", []) if mark.name == "source"]


def test_every_scenario_declares_one_source_for_its_plain_asserts():
    tests = scenario_tests()
    assert len(tests) > 50
    undeclared = [
        test_id
        for test_id, function in tests
        if [len(m.args) for m in source_marks(function)] != [1]
        or not isinstance(source_marks(function)[0].args[0], Source)
    ]
    assert undeclared == [], (
        f"add @pytest.mark.source(spec|tutorial|client|reference(...)): {undeclared}"
    )
