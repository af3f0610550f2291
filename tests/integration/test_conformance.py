"""The conformance suites pass against the stack (every MUST; SHOULD misses
are warnings), and fail exactly where a fault is put between them and the
stack (so they can fail); a fault only a SHOULD check sees is a warning, and
a failure under --strict-should. (The runs: tests/integration/suite_runs.py,
beside the v2 runs.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from firecrest_testbuild.harness import conformance
from firecrest_testbuild.harness.environment import Environment
from tests.integration.fault_proxy import FaultProxy, unknown_service_body_changed
from tests.integration.suite_runs import SuiteRuns, faulty_target, run_suites

pytestmark = pytest.mark.integration

# Each fault and the scenarios it must break (the test ids of scenarios/).
EXPECTED_FAILURES = {
    # ls of a missing path answers 200 without X-Invalid-Path
    "scenarios/test_utilities.py::test_ls_errors",
    "scenarios/test_tutorial.py::test_the_tutorial",
    # ls hides dot-files
    "scenarios/test_utilities.py::test_ls_lists_hidden_files_only_when_asked",
    # a partitions listing never completes (the tasks suite lists partitions)
    "scenarios/test_compute.py::test_partitions_and_reservations",
    "scenarios/test_tasks.py::test_a_task_has_its_fields",
    "scenarios/test_tasks.py::test_tasks_lists_one_users_tasks_only",
    "scenarios/test_tasks.py::test_unknown_and_foreign_tasks_are_not_shown",
    # X-Exists is dropped
    "scenarios/test_utilities.py::test_mkdir",
    "scenarios/test_utilities.py::test_symlink",
}
# The fault only a SHOULD check sees: an unknown service's 404 body.
WARNED = "scenarios/test_status.py::test_services_and_one_service"


def scenario_id(case_id: str) -> str:
    """A case's id from scenarios/ on (pytest's ids start at its rootdir)."""
    return case_id[case_id.index("scenarios/") :]


def not_passed(document: dict) -> dict[str, str]:
    return {
        scenario_id(case["id"]): case["status"]
        for case in document["cases"]
        if case["status"] not in ("PASS", "SKIP")
    }


def skipped(document: dict) -> dict[str, str]:
    return {
        scenario_id(case["id"]): case["reason"]
        for case in document["cases"]
        if case["status"] == "SKIP"
    }


def warned(document: dict) -> set[str]:
    return {scenario_id(case["id"]) for case in document["cases"] if case["warnings"]}


@pytest.fixture(scope="module")
def reports(suite_runs: SuiteRuns) -> dict[str, Any]:
    return suite_runs.reports("v1")


def test_every_suite_passes_against_the_stack(reports: dict[str, Any]):
    document = reports["clean"]
    assert not_passed(document) == {}
    assert document["scores_by_level"]["MUST"]["percent"] == 100.0
    # The sandbox offers every capability, reservations included: nothing skipped.
    assert skipped(document) == {}
    assert document["scores"]["overall"]["percent"] == 100.0
    assert document["scores_by_level"]["SHOULD"]["percent"] == 100.0, [
        (case["id"], case["warnings"]) for case in document["cases"] if case["warnings"]
    ]
    matrix = document["matrix"]
    assert {row["status"] for row in matrix} == {"pass"}, [
        row for row in matrix if row["status"] != "pass"
    ]
    assert document["target"]["version"] and document["target"]["implementation"]
    for name in ("report.json", "report.md", "report.html", "junit.xml"):
        assert (reports["folder"] / "clean" / name).stat().st_size > 0


def failed_exactly(document: dict, expected: set[str]) -> dict[str, str]:
    """The scenarios that did not pass, which must be `expected` and no other."""
    failed = not_passed(document)
    assert set(failed) == expected, {
        "missed": sorted(expected - set(failed)),
        "unexpected": sorted(set(failed) - expected),
    }
    return failed


def test_faults_fail_exactly_the_matching_scenarios(reports: dict[str, Any]):
    document = reports["faults"]
    failed = failed_exactly(document, EXPECTED_FAILURES)
    assert set(failed.values()) <= {"FAIL", "ERROR"}
    matrix = {f"{row['method']} {row['path']}": row for row in document["matrix"]}
    assert matrix["GET /utilities/ls"]["status"] == "fail"
    assert matrix["GET /status/services"]["status"] == "pass"
    # The SHOULD fault: a warning on its test and its operation, no failure.
    assert WARNED in warned(document)
    services = matrix["GET /status/services/{servicename}"]
    assert services["status"] == "pass" and services["warnings"], services


def test_a_should_fault_fails_under_strict_should(environment: Environment, tmp_path: Path):
    upstream = yaml.safe_load(environment.target_file().read_text())["api"]["url"]
    with FaultProxy(upstream, [unknown_service_body_changed]) as proxy:
        target = faulty_target(environment, proxy, tmp_path)
        document = run_suites(target, tmp_path / "report", "-k", "services", strict=True)
    assert not_passed(document) == {WARNED: "FAIL"}
    failure = next(c for c in document["cases"] if c["status"] == "FAIL")["failure"]
    assert failure["source"]["level"] == "SHOULD"
    assert failure["operations"] == ["GET /status/services/{servicename}"]


def test_suites_select_by_capability(environment: Environment, tmp_path: Path):
    description = yaml.safe_load(environment.target_file().read_text())
    description["capabilities"] = {
        "scheduler": False,
        "transfer": "none",
        "internalTransfers": False,
    }
    limited = tmp_path / "limited.yaml"
    limited.write_text(yaml.safe_dump(description))
    report = tmp_path / "report"
    conformance.run(
        limited, report, ["-q", "-k", "compute or storage or tasks or tutorial"], quiet=True
    )
    document = conformance.read_report(report)
    selected = [
        case
        for case in document["cases"]
        if case["id"]
        .split("::")[0]
        .endswith(("test_compute.py", "test_storage.py", "test_tasks.py", "test_tutorial.py"))
    ]
    assert selected and all(case["status"] == "SKIP" for case in selected), selected
    assert all("does not offer" in case["reason"] for case in selected)
    matrix = {f"{row['method']} {row['path']}": row for row in document["matrix"]}
    assert matrix["POST /compute/jobs/upload"]["status"] == "skipped"
    assert "scheduler" in matrix["POST /compute/jobs/upload"]["detail"]
    assert matrix["POST /storage/xfer-external/upload"]["status"] == "skipped"
