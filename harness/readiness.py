"""Readiness probes: poll a check until it passes or its deadline runs out.

A check returns None when the thing is ready, or a short text saying what it
is still waiting for. On timeout the error carries that text and the last
log lines of the component, so the user sees why without digging.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from firecrest_testbuild.harness.errors import TestbuildError

Check = Callable[[], str | None]


@dataclass(frozen=True)
class Probe:
    component: str
    description: str
    check: Check
    timeout: float = 60.0
    interval: float = 0.25
    transient: tuple[type[BaseException], ...] = (OSError,)


def wait_for(
    probe: Probe, log_tail: Callable[[], list[str]], fail_fast: Check | None = None
) -> float:
    """Block until `probe` passes; returns the seconds it took.

    `fail_fast` is checked each round too: when it returns a text (say, a
    container exited), waiting stops at once with that reason.
    """
    started = time.monotonic()
    deadline = started + probe.timeout
    state = "not checked yet"
    while True:
        try:
            outcome = probe.check()
        except probe.transient as error:
            outcome = f"{type(error).__name__}: {error}"
        if outcome is None:
            return time.monotonic() - started
        state = outcome
        fatal = fail_fast() if fail_fast else None
        if fatal or time.monotonic() >= deadline:
            reason = fatal or f"not ready after {probe.timeout:.0f}s"
            raise TestbuildError(
                probe.component,
                f"{probe.description}: {reason}",
                details=[f"last state: {state}", "last log lines:", *log_tail()],
                fix=f"read the log lines above; 'testbuild logs {probe.component}' shows more",
            )
        time.sleep(probe.interval)
