"""Running the conformance suites (scenarios/) in a process of their own and
reading their report: for `testbuild conformance`, `make bench` and tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from firecrest_testbuild.harness.paths import PACKAGE, SCENARIOS


def run(target: Path, report: Path, extra: list[str] | None = None, quiet: bool = False) -> int:
    """pytest on scenarios/ against `target`; the report goes to `report`."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(SCENARIOS),
        # Test ids read scenarios/test_<area>.py::<test> wherever the package is.
        "--rootdir",
        str(PACKAGE),
        "--target",
        str(target),
        "--report",
        str(report),
        "-p",
        "no:cacheprovider",
        *(extra or []),
    ]
    completed = subprocess.run(command, capture_output=quiet, timeout=3600)
    return completed.returncode


def read_report(report: Path) -> dict[str, Any]:
    figures: dict[str, Any] = json.loads((report / "report.json").read_text())
    return figures
