"""Running the conformance suites (scenarios/) in a process of their own and
reading their report: for `testbuild conformance`, `make bench` and tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from firecrest_testbuild.harness.paths import PACKAGE, SCENARIOS

# The suites' pytest plugin (also the package's pytest11 entry point
# `firecrest-testbuild`, for pytest run on scenarios/ by hand).
SUITES_PLUGIN = "firecrest_testbuild.scenarios.plugin"


def run(
    target: Path,
    report: Path,
    extra: list[str] | None = None,
    quiet: bool = False,
    strict: bool = False,
    tests: list[str] | None = None,
) -> int:
    """pytest on scenarios/ (or on `tests`: files or test ids in it) against
    `target`; the report goes to `report`. `strict`: a missed SHOULD check
    fails its test (otherwise a warning).

    The run loads no pytest plugin but the suites' own (SUITES_PLUGIN; more
    with `-p NAME` in `extra`) and ignores PYTEST_ADDOPTS: what else is
    installed or set beside the package cannot change a verdict (an -x meant
    for the caller's own tests would end a run at its first failure), and
    the test tools pytest would load (hypothesis and schemathesis among
    them) took 2.5 of the 4 CPU-seconds of a run's start."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        *(tests or [str(SCENARIOS)]),
        # Test ids read scenarios/test_<area>.py::<test> wherever the package is.
        "--rootdir",
        str(PACKAGE),
        "--target",
        str(target),
        "--report",
        str(report),
        "-p",
        "no:cacheprovider",
        "-p",
        SUITES_PLUGIN,
        *(["--strict-should"] if strict else []),
        *(extra or []),
    ]
    alone = {
        **{name: value for name, value in os.environ.items() if name != "PYTEST_ADDOPTS"},
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    completed = subprocess.run(command, capture_output=quiet, env=alone, timeout=3600)
    return completed.returncode


def compare(first: Path, second: Path, html: Path | None = None) -> str:
    """Two report.json files side by side, as text; with `html`, also as a
    page (both headers, both scores, the operations whose results differ)."""
    from firecrest_testbuild.scenarios.report import compare as as_text
    from firecrest_testbuild.scenarios.report_html import compare_page

    documents = [json.loads(path.read_text()) for path in (first, second)]
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(compare_page(*documents))
    text: str = as_text(*documents)
    return text


def read_report(report: Path) -> dict[str, Any]:
    figures: dict[str, Any] = json.loads((report / "report.json").read_text())
    return figures
