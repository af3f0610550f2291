"""The v2 conformance suites against the stack's v2 API, and behind the
fault proxy with v2 faults put in between: each fault fails exactly the
scenarios that judge what it breaks, and no other. The session's
environment, judged through the v2 target `up` wrote. (The runs:
tests/integration/suite_runs.py, beside the v1 runs.)"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.suite_runs import SuiteRuns
from tests.integration.test_conformance import (
    failed_exactly,
    not_passed,
    scenario_id,
    skipped,
    warned,
)

pytestmark = pytest.mark.integration

FS = "scenarios/v2/test_filesystem.py"
TRANSFER = "scenarios/v2/test_transfer.py"
ERRORS = "scenarios/v2/test_errors.py"
COMPUTE = "scenarios/v2/test_compute.py"
CLIENT = "scenarios/v2/test_client_pyfirecrest.py"
# Each fault and the scenarios it must fail (the test ids of scenarios/v2/).
EXPECTED_FAILURES = {
    # ls of a missing path answers 200 with an empty listing
    f"{FS}::test_ls_of_a_missing_path_is_an_error",
    # ls hides dot-files
    f"{FS}::test_ls_lists_hidden_files_only_when_asked",
    # a transfer's job never ends (every scenario that follows one)
    f"{TRANSFER}::test_large_upload_goes_through_s3",
    f"{TRANSFER}::test_large_download_goes_through_s3",
    f"{TRANSFER}::test_cp_is_a_job",
    f"{TRANSFER}::test_mv_is_a_job",
    f"{TRANSFER}::test_rm_is_a_job",
    f"{TRANSFER}::test_compress_and_extract_are_jobs",
    # (the multipart completion ignored: test_large_upload_goes_through_s3 again)
    # client errors without their message
    f"{FS}::test_view",
    f"{FS}::test_chmod",
    f"{FS}::test_chown",
    f"{FS}::test_mkdir",
    f"{FS}::test_symlink",
    f"{FS}::test_rm",
    f"{TRANSFER}::test_an_unknown_transfer_method_is_refused",
    f"{COMPUTE}::test_an_unknown_job_is_an_error",
    f"{ERRORS}::test_an_unknown_system_is_404",
    f"{ERRORS}::test_an_error_names_its_type_and_its_user",
    f"{ERRORS}::test_a_missing_or_forged_token_is_refused",
    f"{ERRORS}::test_a_body_that_breaks_its_schema_is_a_client_error",
    f"{ERRORS}::test_another_users_private_file_is_refused",
}
# pyfirecrest's story is a SHOULD: a transfer that never ends is a warning there.
WARNED = {
    f"{CLIENT}::test_pyfirecrest_sync_walks_the_story",
    f"{CLIENT}::test_pyfirecrest_async_walks_the_story",
}


@pytest.fixture(scope="module")
def reports(suite_runs: SuiteRuns) -> dict[str, Any]:
    return suite_runs.reports("v2")


def test_the_v2_suites_pass_against_the_stack(reports: dict[str, Any]):
    document = reports["clean"]
    assert document["suite"]["name"] == "firecrest-v2-conformance"
    assert not_passed(document) == {}
    assert skipped(document) == {}
    matrix = document["matrix"]
    assert len(matrix) == 35
    assert {row["status"] for row in matrix} == {"pass"}, [
        row for row in matrix if row["status"] != "pass"
    ]
    assert document["scores_by_level"]["SHOULD"]["percent"] == 100.0, [
        (case["id"], case["warnings"]) for case in document["cases"] if case["warnings"]
    ]
    assert all("/v2/" in scenario_id(case["id"]) for case in document["cases"])
    for name in ("report.json", "report.md", "report.html", "junit.xml"):
        assert (reports["folder"] / "clean" / name).stat().st_size > 0


def test_v2_faults_fail_exactly_the_matching_scenarios(reports: dict[str, Any]):
    document = reports["faults"]
    failed_exactly(document, EXPECTED_FAILURES)
    assert warned(document) >= WARNED
    matrix = {f"{row['method']} {row['path']}": row for row in document["matrix"]}
    assert matrix["GET /filesystem/{system_name}/ops/ls"]["status"] == "fail"
    assert matrix["POST /filesystem/{system_name}/transfer/upload"]["status"] == "fail"
    # A look at a transfer's job serves the transfer: the job look itself is not blamed.
    assert matrix["GET /status/systems"]["status"] == "pass"
