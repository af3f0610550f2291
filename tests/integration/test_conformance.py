"""The conformance suites pass against the stack, and fail exactly where a
fault is put between them and the stack (so they can fail)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from firecrest_testbuild.harness import conformance
from firecrest_testbuild.harness.environment import Environment
from tests.integration.fault_proxy import ALL_FAULTS, FaultProxy

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


def run_suites(target: Path, report: Path) -> dict:
    conformance.run(target, report, ["-q"], quiet=True)
    return conformance.read_report(report)


def not_passed(document: dict) -> dict[str, str]:
    return {case["id"]: case["status"] for case in document["cases"] if case["status"] != "PASS"}


def test_every_suite_passes_against_the_stack(environment: Environment, tmp_path: Path):
    document = run_suites(environment.target_file(), tmp_path / "report")
    assert not_passed(document) == {}
    assert document["scores"]["overall"]["percent"] == 100.0
    in_scope = [row for row in document["matrix"] if row["status"] != "out-of-scope"]
    assert {row["status"] for row in in_scope} == {"pass"}, [
        row for row in in_scope if row["status"] != "pass"
    ]
    for name in ("report.json", "report.md", "report.html", "junit.xml"):
        assert (tmp_path / "report" / name).stat().st_size > 0


def test_faults_fail_exactly_the_matching_scenarios(environment: Environment, tmp_path: Path):
    description = yaml.safe_load(environment.target_file().read_text())
    with FaultProxy(description["api"]["url"], ALL_FAULTS) as proxy:
        description["api"]["url"] = proxy.url
        description["limits"] = {**description.get("limits", {}), "taskTimeout": 15}
        faulty = tmp_path / "faulty.yaml"
        faulty.write_text(yaml.safe_dump(description))
        document = run_suites(faulty, tmp_path / "report")
    failed = not_passed(document)
    assert set(failed) == EXPECTED_FAILURES, {
        "missed": sorted(EXPECTED_FAILURES - set(failed)),
        "unexpected": sorted(set(failed) - EXPECTED_FAILURES),
    }
    assert set(failed.values()) <= {"FAIL", "ERROR"}
    matrix = {f"{row['method']} {row['path']}": row["status"] for row in document["matrix"]}
    assert matrix["GET /utilities/ls"] == "fail"
    assert matrix["GET /status/services"] == "pass"


def test_the_fixture_for_client_projects_yields_a_running_testbuild(pytester: pytest.Pytester):
    pytester.makepyfile(
        """
        import requests

        def test_client(testbuild_target):
            url = testbuild_target.api.url
            assert requests.get(url + "/status/systems", timeout=10).status_code == 401
            assert testbuild_target.identities[0].name
        """
    )
    config = pytester.path / "testbuild.yaml"
    config.write_text(
        "name: fixture-check\ncluster: {sshPort: 0, computeNodes: 1}\n"
        "keycloak: {port: 0}\nminio: {port: 0, consolePort: 0}\nstack: {port: 0}\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


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
