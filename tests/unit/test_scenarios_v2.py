"""The suites' v2 machinery without a server: the target file selecting the
API generation and reading v2 capabilities (clear errors for bad keys),
suites selected by generation and capability, v2's 35 operations in the
matrix, and the v2 client judged against a small recorded-answer double (a
transfer followed to its end, its log read; a job that never ends; an error
without its message)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from firecrest_testbuild.scenarios import verdict
from firecrest_testbuild.scenarios.client import Recorder, Tokens
from firecrest_testbuild.scenarios.endpoints import V1, V2
from firecrest_testbuild.scenarios.report import FAIL, PASS, Case, build, compare, markdown
from firecrest_testbuild.scenarios.report_html import page
from firecrest_testbuild.scenarios.target import (
    Capabilities,
    CapabilitiesV2,
    Target,
    TargetError,
    parse,
)
from firecrest_testbuild.scenarios.v2.api import ApiV2, is_over, not_found, refused
from tests.unit.test_scenarios import scenario_tests

V2_TARGET = """
name: site-v2
api: {url: "http://firecrest.example.org", version: "2.5.6"}
auth: {tokenUrl: "http://auth.example.org/token", clientId: c, clientSecret: s}
identities: [{name: alice, password: pw}, {name: bob, password: pw}]
system: {name: cluster, workDir: "/home/{user}"}
capabilities: {scheduler: pbs, transfer: streamer, optionalEndpoints: [attach]}
limits: {taskTimeout: 1}
"""


V1_TARGET = V2_TARGET.replace('"2.5.6"', '"1.16.1"').split("capabilities")[0]


def v2_target(text: str = V2_TARGET) -> Target:
    return parse(text, "site.yaml", {})


# --- the target file selects the generation and its capabilities --------------


def test_a_2x_target_reads_v2_capabilities():
    target = v2_target()
    assert target.generation == 2
    assert target.capabilities == CapabilitiesV2(
        scheduler="pbs", transfer="streamer", optional_endpoints=("attach",)
    )
    v1 = v2_target(V1_TARGET)
    assert v1.generation == 1 and isinstance(v1.capabilities, Capabilities)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("{scheduler", "{internalTransfers: true, scheduler"), "'capabilities.internalTransfers'"),
        (("scheduler: pbs", "scheduler: true"), "a 2.x target: slurm, pbs or none"),
        (("transfer: streamer", "transfer: ftp"), "s3, streamer or none"),
        (("[attach]", "[reservations]"), "a 2.x target: [attach]"),
        (('version: "2.5.6"', 'version: "3.0"'), "1.x (e.g. 1.16.1) or 2.x"),
    ],
)
def test_bad_v2_targets_are_explained(change: tuple[str, str], expected: str):
    with pytest.raises(TargetError) as error:
        v2_target(V2_TARGET.replace(*change))
    assert any(expected in problem for problem in error.value.problems), error.value.problems
    assert all(problem.startswith("site.yaml") for problem in error.value.problems)


def test_a_v1_capability_in_a_v2_target_names_the_v2_keys():
    text = V2_TARGET.replace("{scheduler", "{sshAuth: certificate, scheduler")
    with pytest.raises(TargetError) as error:
        v2_target(text)
    (problem,) = error.value.problems
    assert "capabilities.sshAuth" in problem
    assert "optionalEndpoints, scheduler, transfer" in problem


def test_capabilities_are_offered_per_generation():
    pbs = CapabilitiesV2(scheduler="pbs", transfer="none")
    assert pbs.offers("api-2") and pbs.offers("scheduler") and pbs.offers("pbs")
    assert not pbs.offers("slurm") and not pbs.offers("s3-transfer")
    assert pbs.offers("transfer-jobs") and not pbs.offers("attach") and not pbs.offers("api-1")
    none = CapabilitiesV2(scheduler="none", transfer="s3")
    assert not none.offers("scheduler") and not none.offers("transfer-jobs")
    assert not none.offers("s3-transfer")  # a transfer is a job: no scheduler, no transfer
    v1 = Capabilities(optional_endpoints=("reservations",))
    assert v1.offers("api-1") and v1.offers("reservations") and not v1.offers("api-2")


GENERATIONS = """
import pytest

pytestmark = pytest.mark.api({generation})


def test_{generation}():
    pass
"""


def test_the_other_generations_suites_are_deselected(pytester: pytest.Pytester):
    pytester.makepyfile(
        test_one=GENERATIONS.format(generation=1),
        test_two=GENERATIONS.format(generation=2),
        test_mine="def test_unmarked():\n    pass\n",
    )
    target = pytester.path / "target.yaml"
    target.write_text(V2_TARGET)
    result = pytester.runpytest_inprocess("--target", str(target), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, deselected=1)
    target.write_text(V1_TARGET)
    again = pytester.runpytest_inprocess("--target", str(target), "-p", "no:cacheprovider", "-v")
    again.assert_outcomes(passed=2, deselected=1)
    assert "test_1 PASSED" in again.stdout.str() and "test_2" not in again.stdout.str()


def test_a_v2_report_has_v2s_matrix_even_when_no_test_runs(pytester: pytest.Pytester):
    pytester.makepyfile(test_one=GENERATIONS.format(generation=1))
    target = pytester.path / "target.yaml"
    target.write_text(V2_TARGET.replace("http://firecrest.example.org", "http://127.0.0.1:9"))
    pytester.runpytest_inprocess(
        "--target", str(target), "--report", "out", "-p", "no:cacheprovider"
    )
    document = json.loads((pytester.path / "out" / "report.json").read_text())
    assert document["suite"]["name"] == "firecrest-v2-conformance"
    assert len(document["matrix"]) == 35 and document["cases"] == []


def test_every_v2_scenario_is_marked_for_v2_and_names_its_source():
    v2 = [(test_id, f) for test_id, f in scenario_tests() if test_id.startswith("v2.")]
    assert len(v2) >= 35
    for test_id, function in v2:
        module = __import__(function.__module__, fromlist=["pytestmark"])
        marks = module.pytestmark if isinstance(module.pytestmark, list) else [module.pytestmark]
        assert any(m.name == "api" and m.args == (2,) for m in marks), test_id


# --- v2's operations and the matrix ---------------------------------------------


def concrete(template: str) -> str:
    return template.replace("{system_name}", "cluster").replace("{job_id}", "42")


def test_every_v2_request_maps_to_its_own_operation():
    assert len(V2.operations) == 35
    for method, template, _ in V2.operations:
        assert V2.operation_of(method, concrete(template)) == (method, template)
    assert V2.operation_of("GET", "/status/liveness") == ("GET", "/status/liveness/")
    assert V2.operation_of("GET", "/utilities/ls") is None
    assert V1.operation_of("GET", "/filesystem/cluster/ops/ls") is None


def test_the_v2_report_has_35_operations_scored_by_area():
    recorder = Recorder(catalog=V2)
    with recorder.charged_to("v2/test_filesystem.py::test_ls", "call"):
        path = "/filesystem/cluster/ops/ls"
        recorder.record(answer("GET", path, 200, {"output": []}), path)
    exchanges = recorder.exchanges
    cases = [
        Case("v2/test_filesystem.py::test_ls", "filesystem", PASS),
        Case(
            "v2/test_compute.py::test_x",
            "compute",
            FAIL,
            covers=["GET /compute/{system_name}/jobs"],
        ),
    ]
    document = build(cases, exchanges, {"name": "t"}, [], "s", "e", catalog=V2)
    assert document["suite"] == {
        "name": "firecrest-v2-conformance",
        "version": document["suite"]["version"],
        "api_version": "2.5.6",
    }
    rows = {f"{row['method']} {row['path']}": row for row in document["matrix"]}
    assert len(rows) == 35
    assert rows["GET /filesystem/{system_name}/ops/ls"]["status"] == "pass"
    assert rows["GET /compute/{system_name}/jobs"]["status"] == "fail"
    assert set(document["scores"]) == {"status", "filesystem", "transfer", "compute", "overall"}
    assert document["scores"]["filesystem"] == {"passed": 1, "total": 16, "percent": 6.2}
    shown = page(document)
    assert "FirecREST v2 conformance report" in shown
    assert shown.count("/transfer/upload") >= 1 and "/tasks/" not in shown
    assert markdown(document).count("| `") == 35
    # --compare across two v2 reports: the operation whose result differs is marked.
    cases[1].status = PASS
    other = build(cases, exchanges, {"name": "u"}, [], "s", "e", catalog=V2)
    changed = [line for line in compare(document, other).splitlines() if line.startswith("≠")]
    assert len(changed) == 1 and "GET /compute/{system_name}/jobs " in changed[0], changed


# --- the v2 client against a recorded-answer double ------------------------------


def answer(method: str, url: str, status: int, body: Any = None, **headers: str) -> Any:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode() if body is not None else b""
    response.headers["Content-Type"] = "application/json"
    response.headers.update(headers)
    full = url if url.startswith("http") else f"http://firecrest.example.org{url}"
    response.request = requests.Request(method, full).prepare()
    return response


Double = Callable[[str, str], tuple[int, Any]]


@pytest.fixture
def double(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Double], ApiV2]]:
    """An ApiV2 whose every request is answered by `reply(method, path)`."""

    def make(reply: Double) -> ApiV2:
        def request(method: str, url: str, **kwargs: Any) -> Any:
            path = url.removeprefix("http://firecrest.example.org")
            status, body = reply(method, path.split("?")[0])
            return answer(method, url, status, body)

        monkeypatch.setattr(requests, "request", request)
        monkeypatch.setattr(Tokens, "current", lambda self: "token")
        target = v2_target()
        return ApiV2(target, target.identities[0])

    item = type("Item", (), {"user_properties": [], "config": None})()
    item.config = type("Config", (), {"getoption": staticmethod(lambda *a, **k: False)})()
    verdict.bind(item, "call")  # type: ignore[arg-type]
    yield make
    verdict.bind(None)


TRANSFER = {
    "transferJob": {
        "jobId": "7",
        "system": "cluster",
        "workingDirectory": "/home/alice",
        "logs": {"outputLog": "/home/alice/out.log", "errorLog": "/home/alice/err.log"},
    }
}


def checks() -> list[dict[str, Any]]:
    return verdict.checks_of(verdict._current.user_properties)  # type: ignore[union-attr]


def test_a_transfer_is_followed_to_its_end_and_its_log_read(double):
    states = iter(["PENDING", "RUNNING", "COMPLETED"])

    def reply(method: str, path: str) -> tuple[int, Any]:
        if path.endswith("/transfer/cp"):
            return 201, TRANSFER
        if path.endswith("/jobs/7"):
            return 200, {"jobs": [{"jobId": "7", "status": {"state": next(states)}}]}
        return 200, {"output": "Thu Files were successfully copied."}

    api = double(reply)
    api.follow(api.transfer("POST", "cp", {"sourcePath": "/a", "targetPath": "/b"}))
    held = {c["message"]: c["passed"] for c in checks()}
    assert all(held.values()), held
    # Each look at the transfer's job serves the transfer operation.
    looks = [e for e in api.recorder.exchanges if e.path.endswith("/jobs/7")]
    assert [e.subject for e in looks] == [("POST", "/filesystem/{system_name}/transfer/cp")] * 3


def test_a_log_without_the_success_line_is_a_should_miss(double):
    def reply(method: str, path: str) -> tuple[int, Any]:
        if path.endswith("/transfer/mv"):
            return 201, TRANSFER
        if path.endswith("/jobs/7"):
            return 200, {"jobs": [{"jobId": "7", "status": {"state": "COMPLETED"}}]}
        return 200, {"output": "mv: cannot move"}

    api = double(reply)
    api.follow(api.transfer("POST", "mv", {"sourcePath": "/a", "targetPath": "/b"}))
    missed = [c for c in checks() if not c["passed"]]
    assert [(c["level"], c["where"], c["about"]) for c in missed] == [
        ("SHOULD", "pyfirecrest 3.x (v2 Firecrest)", ["POST /filesystem/{system_name}/transfer/mv"])
    ]


def test_a_transfer_job_that_never_ends_fails_the_transfer_and_is_cancelled_later(double):
    def reply(method: str, path: str) -> tuple[int, Any]:
        if path.endswith("/transfer/upload"):
            return 201, TRANSFER
        return 200, {"jobs": [{"jobId": "7", "status": {"state": "RUNNING"}}]}

    api = double(reply)
    with pytest.raises(verdict.MustMiss, match="job 7 reaching a final state"):
        api.follow(api.transfer("POST", "upload", {}))
    missed = [c for c in checks() if not c["passed"]]
    assert missed[-1]["about"] == ["POST /filesystem/{system_name}/transfer/upload"]
    assert api.unfinished == ["7"]


def test_an_error_without_its_message_breaks_the_error_model(double):
    api = double(lambda method, path: (404, {"errorType": "error"}))
    with pytest.raises(verdict.MustMiss, match="no ApiResponseError"):
        refused(api.ops("GET", "ls", params={"path": "/x"}))


def test_a_missing_path_is_refused_and_the_references_404_is_a_should(double):
    api = double(lambda method, path: (400, {"message": "ls: cannot access"}))
    not_found(api.ops("GET", "ls", params={"path": "/x"}))
    missed = [c for c in checks() if not c["passed"]]
    assert [c["level"] for c in missed] == ["SHOULD"]
    # A 5XX is an error the description allows; only the reference's 4XX is a SHOULD.
    refused(
        double(lambda method, path: (500, {"message": "chmod: invalid mode"})).ops("PUT", "chmod")
    )
    missed = [c for c in checks() if not c["passed"]]
    assert [c["level"] for c in missed] == ["SHOULD", "SHOULD"]
    with pytest.raises(AssertionError, match="expected an error"):
        not_found(double(lambda method, path: (200, {"output": []})).ops("GET", "ls"))


def test_a_job_is_over_when_every_step_is():
    assert is_over({"status": {"state": "COMPLETED"}})
    assert is_over({"status": {"state": ["CANCELLED", "COMPLETED"]}})
    assert is_over({"status": {"state": "F"}})  # PBS
    assert not is_over({"status": {"state": "RUNNING,COMPLETED"}})
    assert not is_over({"status": {"state": ""}})
