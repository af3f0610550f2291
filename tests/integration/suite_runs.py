"""The conformance runs the integration tests judge: each API generation's
suites against the session's environment, once as it is and once behind the
fault proxy, all four side by side (fixture `suite_runs` in conftest.py).
They mostly wait on the system (SSH, jobs, the faulted tasks' timeouts), so
together they take little longer than the longest; each works in folders of
its own run."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from firecrest_testbuild.harness import conformance
from firecrest_testbuild.harness.contracts import StackEndpoints
from firecrest_testbuild.harness.environment import Environment
from tests.integration.fault_proxy import (
    ALL_FAULTS,
    Fault,
    FaultProxy,
    V2MultipartCompletionIgnored,
    V2TransferJobsNeverEnd,
    v2_error_message_dropped,
    v2_ls_hides_dot_files,
    v2_missing_path_is_not_an_error,
)

# Tasks and jobs the proxy keeps running forever are given up on after this
# many seconds. The stack ends its own in one to three (Slurm allocates a
# batch job on its next pass, within a second), also with the rest of the
# integration suite running beside; each faulted transfer waits this long.
FAULTED_TASK_TIMEOUT = 6


def run_suites(target: Path, report: Path, *options: str, strict: bool = False) -> dict[str, Any]:
    conformance.run(target, report, ["-q", *options], quiet=True, strict=strict)
    return conformance.read_report(report)


def faulty_target(environment: Environment, proxy: FaultProxy, folder: Path) -> Path:
    """The v1 target `up` wrote, pointing at the proxy."""
    description = yaml.safe_load(environment.target_file().read_text())
    description["api"]["url"] = proxy.url
    description["limits"] = {**description.get("limits", {}), "taskTimeout": FAULTED_TASK_TIMEOUT}
    faulty = folder / "faulty.yaml"
    faulty.write_text(yaml.safe_dump(description))
    return faulty


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


class SuiteRuns:
    """The four runs, started at once; each result is waited for when asked."""

    def __init__(self, environment: Environment, folder: Path, pool: ThreadPoolExecutor) -> None:
        self.environment = environment
        self.folder = folder
        v1, v2 = folder / "v1", folder / "v2"
        v1.mkdir()
        v2.mkdir()
        self.runs: dict[tuple[str, str], Future[dict[str, Any]]] = {
            ("v1", "clean"): pool.submit(run_suites, environment.target_file(), v1 / "clean"),
            ("v1", "faults"): pool.submit(self._v1_behind_faults, v1),
            ("v2", "clean"): pool.submit(run_suites, v2_target(environment, v2), v2 / "clean"),
            ("v2", "faults"): pool.submit(self._v2_behind_faults, v2),
        }

    def reports(self, api: str) -> dict[str, Any]:
        """{"clean": report, "faults": report, "folder": where they are} of one generation."""
        return {
            "clean": self.runs[(api, "clean")].result(),
            "faults": self.runs[(api, "faults")].result(),
            "folder": self.folder / api,
        }

    def _v1_behind_faults(self, folder: Path) -> dict[str, Any]:
        upstream = yaml.safe_load(self.environment.target_file().read_text())["api"]["url"]
        with FaultProxy(upstream, ALL_FAULTS) as proxy:
            return run_suites(faulty_target(self.environment, proxy, folder), folder / "faults")

    def _v2_behind_faults(self, folder: Path) -> dict[str, Any]:
        upstream = yaml.safe_load(self.environment.target_file("v2").read_text())["api"]["url"]
        completion = V2MultipartCompletionIgnored()
        faults: list[Fault] = [
            v2_missing_path_is_not_an_error,
            v2_ls_hides_dot_files,
            V2TransferJobsNeverEnd(),
            completion,
            v2_error_message_dropped,
        ]
        with FaultProxy(upstream, faults) as proxy:
            completion.proxy = proxy.url
            target = v2_target(
                self.environment, folder, proxy.url, taskTimeout=FAULTED_TASK_TIMEOUT
            )
            return run_suites(target, folder / "faults")
