"""The conformance report as a person sees it: report.html and the compare
page rendered by a real headless browser (Debian's chromium, installed by
scripts/ensure-tool, `make browser`), checked on the DOM it ends with
and photographed.

The documents come from report.build() on synthetic cases, as they are
today and with the keys the verdicts add (levels, sources, warnings,
requests by phase): the page must read well with both.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from firecrest_testbuild.scenarios.client import Exchange
from firecrest_testbuild.scenarios.endpoints import operation_of
from firecrest_testbuild.scenarios.report import ERROR, FAIL, PASS, SKIP, Case, build, write
from firecrest_testbuild.scenarios.report_html import compare_page

pytestmark = pytest.mark.integration

# What a hostile or broken server might answer: shown as text, never run.
PAYLOAD = "<script>alert(1)</script><script>document.title='pwned'</script>"
URL = "https://firecrest.example.org"
REPORTED = "FIRECREST_VERSION=1.16.1, FIRECREST_BUILD=testbuild-stack 0.3.0"
FAILING = "scenarios/test_utilities.py::test_stat_reports_the_size"


def exchange(test: str, method: str, path: str, response: str = "HTTP 200\n{}") -> Any:
    return Exchange(
        test=test,
        phase="call",
        method=method,
        path=path,
        operation=operation_of(method, path),
        status=int(response.split()[1]),
        request=f"{method} {URL}{path}",
        response=response,
    )


def document(name: str, broken: bool = True, tomorrow: bool = False) -> dict[str, Any]:
    """A run of a few tests per area: passes, a failure whose request and
    answer carry markup, an error, a skip; `tomorrow` adds the verdicts' keys."""
    cases = [
        Case("scenarios/test_status.py::test_services", "status", PASS, duration=0.21),
        Case("scenarios/test_status.py::test_parameters", "status", PASS, duration=0.18),
        Case("scenarios/test_utilities.py::test_ls", "utilities", PASS, duration=0.42),
        Case("scenarios/test_utilities.py::test_mkdir", "utilities", PASS, duration=0.37),
        Case(
            FAILING,
            "utilities",
            FAIL if broken else PASS,
            reason="AssertionError: size 12 expected, got '<b>12</b>'" if broken else "",
            duration=0.55,
            failed_phase="call" if broken else "",
        ),
        Case("scenarios/test_compute.py::test_submit", "compute", PASS, duration=3.1),
        Case(
            "scenarios/test_compute.py::test_acct",
            "compute",
            ERROR if broken else PASS,
            reason="ConnectionError: the target went away" if broken else "",
            duration=1.0,
            failed_phase="call" if broken else "",
        ),
        Case(
            "scenarios/test_storage.py::test_external_upload",
            "storage",
            SKIP,
            reason="the target offers no staging area (capabilities.transfer: none)",
            covers=["POST /storage/xfer-external/upload"],
        ),
        Case("scenarios/test_tasks.py::test_own_tasks_only", "tasks", PASS, duration=0.3),
        Case("scenarios/test_auth.py::test_expired_token", "auth", PASS, duration=0.2),
    ]
    exchanges = [
        exchange("scenarios/test_status.py::test_services", "GET", "/status/services"),
        exchange("scenarios/test_status.py::test_parameters", "GET", "/status/parameters"),
        exchange("scenarios/test_utilities.py::test_ls", "GET", "/utilities/ls"),
        exchange("scenarios/test_utilities.py::test_mkdir", "POST", "/utilities/mkdir"),
        exchange(FAILING, "POST", "/utilities/upload"),
        exchange(FAILING, "GET", "/utilities/stat", f'HTTP 200\n{{"output": "{PAYLOAD}"}}'),
        exchange("scenarios/test_compute.py::test_submit", "POST", "/compute/jobs/upload"),
        exchange("scenarios/test_compute.py::test_acct", "GET", "/compute/acct"),
        exchange("scenarios/test_tasks.py::test_own_tasks_only", "GET", "/tasks/"),
        exchange("scenarios/test_auth.py::test_expired_token", "GET", "/utilities/ls", "HTTP 401"),
    ]
    target = {
        "name": name,
        "api": {"url": URL, "version": "1.16.1"},
        "system": {"name": "daint"},
        "reported": REPORTED,
    }
    result = build(
        cases,
        exchanges,
        target,
        ["--target", "site.yaml"],
        "2025-11-29T10:58:34+01:00",
        "2025-11-29T11:02:10+01:00",
        duration_seconds=216.0,
    )
    if tomorrow:
        add_verdict_keys(result)
    return result


def add_verdict_keys(document: dict[str, Any]) -> None:
    """Verdicts a real run would have recorded: levels, sources, a warning."""
    spec = {
        "kind": "spec",
        "where": "GET /utilities/stat",
        "says": "size in bytes",
        "level": "MUST",
    }
    warning = {
        "passed": False,
        "message": "an empty listing answers 200 with an empty list",
        "kind": "client",
        "where": "pyfirecrest 2.x",
        "says": "reads output as a list",
        "level": "SHOULD",
    }
    document.setdefault("duration_seconds", 216.4)
    document.setdefault(
        "scores_by_level",
        {
            "MUST": {"passed": 40, "total": 42, "percent": 95.2},
            "SHOULD": {"passed": 9, "total": 10, "percent": 90.0},
        },
    )
    for case in document["cases"]:
        case.setdefault("level", "MUST")
        case["sources"] = case.get("sources") or [spec]
        case.setdefault("checks", [])
        case.setdefault("requests", [])
        if case["id"] == "scenarios/test_utilities.py::test_ls" and not case.get("warnings"):
            case["warnings"] = [warning]
            case["requests"] = [{"phase": "call", "operation": "GET /utilities/ls", "status": 200}]
        case.setdefault("warnings", [])
        if "failure" in case:
            case["failure"]["source"] = case["failure"].get("source") or spec


class Seen(HTMLParser):
    """What a person sees of a dumped DOM: its title, its text (not the
    style sheet), and which elements it has."""

    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self.text: list[str] = []
        self.tags: list[str] = []
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag not in ("meta", "br", "input", "link", "img"):
            self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._open:
            while self._open.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        if "title" in self._open:
            self.title += data
        elif not {"style", "script", "head"} & set(self._open):
            self.text.append(data)

    @property
    def page_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("chromium is not installed: run make browser (scripts/ensure-tool)")
    return found


def render(page: Path, profile: Path) -> tuple[Seen, Path]:
    """The page's DOM after the browser loaded it, and a screenshot of it."""
    common = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
    ]
    dumped = subprocess.run(
        [*common, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    seen = Seen()
    seen.feed(dumped.stdout)
    shot = page.with_suffix(".png")
    subprocess.run(
        [*common, "--window-size=1280,3600", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    return seen, shot


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.parametrize("tomorrow", [False, True], ids=["today", "with-verdicts"])
def test_the_report_page_shows_a_person_the_run(tmp_path: Path, tomorrow: bool):
    report = document("site-under-test", tomorrow=tomorrow)
    write(report, tmp_path / "out")
    seen, shot = render(tmp_path / "out" / "report.html", tmp_path / "profile")
    text = seen.page_text

    # The header: which target, where, what it runs, judged by which suite, when.
    assert seen.title.startswith("FirecREST conformance: site-under-test")
    assert "site-under-test" in text and URL in text
    assert "Implementation testbuild-stack" in text and "Version 0.3.0" in text
    assert f"Suite firecrest-v1-conformance {report['suite']['version']}" in text
    assert "2025-11-29 10:58:34 to 11:02:10" in text
    assert "Duration 3 min 36 s" in text
    # Each area's score, as text beside its bar.
    for area, score in report["scores"].items():
        shown = "n/a" if score["percent"] is None else f"{score['percent']:g}%"
        assert f"{area} " in text and f"{score['passed']}/{score['total']} {shown}" in text
    # The matrix: a row per operation with its result in words.
    assert text.count("✓ pass") == 7 and "✗ fail" in text and "⊘ skipped" in text
    assert "GET /utilities/stat utilities ✗ fail " + FAILING in text
    assert "POST /storage/xfer-external/upload storage ⊘ skipped" in text
    # Every test, the failing ones first, with the failure's request and answer.
    assert text.index(FAILING) < text.index("scenarios/test_status.py::test_services")
    assert "Failures (1)" in text and "errors (1)" in text
    assert f"Request GET {URL}/utilities/stat" in text
    assert f'Answer HTTP 200 {{"output": "{PAYLOAD}"}}' in text
    assert "the target offers no staging area" in text
    # The server's markup stayed text: nothing ran, the title is the page's own.
    assert "script" not in seen.tags and "pwned" not in seen.title
    if tomorrow:
        for level, says in (("MUST", "a miss fails the test"), ("SHOULD", "a miss is a warning")):
            score = report["scores_by_level"][level]
            shown = "n/a" if score["percent"] is None else f"{score['percent']:g}%"
            assert f"{level} {says} {score['passed']}/{score['total']} {shown}" in text
        assert "⚠ 1 warning" in text and "errors (1) and warnings (1)" in text
        assert "an empty listing answers 200 with an empty list" in text
        assert "client: pyfirecrest 2.x" in text
        assert "spec: GET /utilities/stat" in text
    width, height = png_size(shot)
    assert (width, height) == (1280, 3600) and shot.stat().st_size > 50_000


def test_the_compare_page_shows_two_runs_side_by_side(tmp_path: Path):
    before = document("site-before", broken=True)
    after = document("site-after", broken=False, tomorrow=True)
    page = tmp_path / "compare.html"
    page.write_text(compare_page(before, after))
    seen, shot = render(page, tmp_path / "profile")
    text = seen.page_text

    assert seen.title == "FirecREST conformance: A: site-before vs B: site-after"
    assert "A: site-before" in text and "B: site-after" in text
    assert text.count(URL) >= 2 and text.count("testbuild-stack") >= 2
    assert "Operations whose results differ (2)" in text
    assert f"GET /utilities/stat utilities ✗ fail {FAILING} ✓ pass 1 tests ≠ differs" in text
    assert "GET /compute/acct compute ✗ fail" in text
    assert "Tests whose verdicts differ (3)" in text  # a failure, an error, a new warning
    assert "scenarios/test_utilities.py::test_ls ✓ PASS ⚠ PASS, warned" in text
    overall = before["scores"]["overall"], after["scores"]["overall"]
    assert f"{overall[0]['passed']}/{overall[0]['total']}" in text
    assert f"{overall[1]['passed']}/{overall[1]['total']}" in text
    assert "script" not in seen.tags
    assert png_size(shot)[0] == 1280
