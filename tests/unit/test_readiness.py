"""Probes poll with a deadline and explain a failure with the log tail."""

from __future__ import annotations

import itertools

import pytest

from firecrest_testbuild.harness.errors import TestbuildError
from firecrest_testbuild.harness.readiness import Probe, wait_for


def test_probe_passes_once_its_check_does():
    answers = iter(["starting", "still starting", None])
    took = wait_for(Probe("cluster", "slurmctld", lambda: next(answers), interval=0.01), list)
    assert took >= 0


def test_transient_errors_count_as_not_ready():
    calls = itertools.count()

    def check() -> str | None:
        if next(calls) < 2:
            raise ConnectionRefusedError("refused")
        return None

    wait_for(Probe("cluster", "sshd", check, interval=0.01), list)


def test_timeout_names_component_last_state_and_log_tail():
    probe = Probe(
        "cluster", "all compute nodes idle", lambda: "c1=down*", timeout=0.1, interval=0.02
    )
    with pytest.raises(TestbuildError) as caught:
        wait_for(probe, lambda: ["slurmd: error: Unable to register"])
    text = caught.value.explain()
    assert text.startswith("✗ cluster: all compute nodes idle: not ready after 0s")
    assert "last state: c1=down*" in text
    assert "slurmd: error: Unable to register" in text
    assert "testbuild logs cluster" in text


def test_fail_fast_stops_waiting_at_once():
    probe = Probe("cluster", "slurmctld", lambda: "no answer", timeout=60, interval=0.01)
    with pytest.raises(TestbuildError, match="container x is exited"):
        wait_for(probe, list, fail_fast=lambda: "container x is exited (exit code 1)")
