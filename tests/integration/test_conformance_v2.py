"""The v2 conformance suites against the stack's v2 API, and behind the
fault proxy with v2 faults put in between: each fault fails exactly the
scenarios that judge what it breaks, and no other. The session's
environment, judged through the v2 target `up` wrote."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from firecrest_testbuild.harness import conformance
from firecrest_testbuild.harness.contracts import StackEndpoints
from firecrest_testbuild.harness.environment import Environment
from tests.integration.fault_proxy import (
    FaultProxy,
    V2MultipartCompletionIgnored,
    V2TransferJobsNeverEnd,
    v2_error_message_dropped,
    v2_ls_hides_dot_files,
    v2_missing_path_is_not_an_error,
)
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
def v2_environment(environment: Environment) -> Environment:
    """The session's environment: the default one serves FirecREST v2 too."""
    return environment


def v2_target(
    environment: Environment, folder: Path, url: str | None = None, **limits: Any
) -> Path:
    """The v2 target `up` wrote (target-v2.yaml), with another URL (the fault
    proxy's) and limits when given."""
    description = yaml.safe_load(environment.target_file("v2").read_text())
    stack = environment.endpoints().components["stack"]
    assert isinstance(stack, StackEndpoints) and stack.v2_url, stack
    assert description["api"] == {"url": stack.v2_url, "version": stack.v2_api_version}
    assert description["capabilities"] == {
        "scheduler": "slurm",
        "transfer": "s3",
        "optionalEndpoints": ["attach"],
    }
    if url:
        description["api"]["url"] = url
    description["limits"] = {**description.get("limits", {}), **limits}
    path = folder / f"target-v2{'-faulty' if url else ''}.yaml"
    path.write_text(yaml.safe_dump(description))
    return path


def run_suites(target: Path, report: Path) -> dict[str, Any]:
    conformance.run(target, report, ["-q"], quiet=True)
    return conformance.read_report(report)


@pytest.fixture(scope="module")
def reports(v2_environment: Environment, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The clean run and the run behind the faults, side by side (each works
    in folders of its own run)."""
    folder = tmp_path_factory.mktemp("suites-v2")
    clean_target = v2_target(v2_environment, folder)
    upstream = yaml.safe_load(clean_target.read_text())["api"]["url"]
    completion = V2MultipartCompletionIgnored()
    faults = [
        v2_missing_path_is_not_an_error,
        v2_ls_hides_dot_files,
        V2TransferJobsNeverEnd(),
        completion,
        v2_error_message_dropped,
    ]

    def behind_faults() -> dict[str, Any]:
        with FaultProxy(upstream, faults) as proxy:
            completion.proxy = proxy.url
            # Jobs the proxy keeps running forever are given up on sooner (as
            # in the v1 fault run: each transfer scenario waits this long).
            target = v2_target(v2_environment, folder, proxy.url, taskTimeout=10)
            return run_suites(target, folder / "faults")

    with ThreadPoolExecutor(max_workers=2) as pool:
        clean = pool.submit(run_suites, clean_target, folder / "clean")
        faulty = pool.submit(behind_faults)
        return {"clean": clean.result(), "faults": faulty.result(), "folder": folder}


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
