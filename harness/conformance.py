"""Running the conformance suites (scenarios/) in a process of their own and
reading their report: for `testbuild conformance`, `make bench` and tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from firecrest_testbuild.harness.paths import SCENARIOS


def run(
    target: Path,
    report: Path,
    extra: list[str] | None = None,
    quiet: bool = False,
    strict: bool = False,
) -> int:
    """pytest on scenarios/ against `target`; the report goes to `report`.
    `strict`: a missed SHOULD check fails its test (otherwise a warning)."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(SCENARIOS),
        "--target",
        str(target),
        "--report",
        str(report),
        "-p",
        "no:cacheprovider",
        *(["--strict-should"] if strict else []),
        *(extra or []),
    ]
    completed = subprocess.run(command, capture_output=quiet, timeout=3600)
    return completed.returncode


def read_report(report: Path) -> dict[str, Any]:
    figures: dict[str, Any] = json.loads((report / "report.json").read_text())
    return figures
