"""`make bench`'s stack rows: each figure printed beside its baseline from the
same run, and a missing baseline said, not a crash after a long run."""

from __future__ import annotations

from typing import Any

from firecrest_testbuild.harness import bench_stack

LOAD = {"p50_ms": 20.0, "p95_ms": 30.0, "requests_per_second": 100.0, "failures": 0}


def figures(**changes: Any) -> dict[str, Any]:
    return {
        "clients": 20,
        "ls": LOAD,
        "status_systems": LOAD,
        "ls_single_client_ms": 50.0,
        "job_turnaround_seconds": 1.4,
        "slurmrestd_turnaround_seconds": None,
        "certificate_signing_ms": 1.0,
        "ssh_round_trip_ms": 75.0,
        "ssh_round_trip_without_wrapper_ms": 50.0,
        "pooled_commands": {"commands": 200, "p50_ms": 20.0, "p90_ms": 22.0},
        "sshca_round_trip_ms": 100.0,
        "transfer": {},
        "conformance": {
            "v1": {"seconds": 60.0, "totals": {"passed": 59}},
            "v2": {"seconds": 90.5, "totals": {"passed": 40}},
        },
        **changes,
    }


def line_with(lines: list[str], text: str) -> str:
    [line] = [line for line in lines if text in line]
    return line


def test_the_ssh_round_trip_is_shown_with_its_wrapperless_baseline_and_ratio():
    line = line_with(bench_stack.report(figures()), "SSH round trip")
    assert "75.0 ms" in line and "without the wrapper 50.0 ms (ratio 1.50)" in line


def test_a_missing_baseline_is_said():
    lines = bench_stack.report(figures(ssh_round_trip_without_wrapper_ms=None))
    assert "no baseline" in line_with(lines, "SSH round trip")


def test_each_generations_suites_and_their_sum_are_shown():
    lines = bench_stack.report(figures())
    assert "60.0 s" in line_with(lines, "conformance suites, v1")
    assert "90.5 s" in line_with(lines, "conformance suites, v2")
    assert "150.5 s" in line_with(lines, "conformance suites, all")
    only_v1 = bench_stack.report(figures(conformance={"v1": {"seconds": 1, "totals": {}}}))
    assert not [line for line in only_v1 if "suites, all" in line]
