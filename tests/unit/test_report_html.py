"""The report page and the compare page as HTML text (no browser: that is
tests/integration/test_report_page.py): everything from the server is
escaped, nothing runs or is fetched, and a document without the keys the
verdicts add renders as well as one with them."""

from __future__ import annotations

import copy
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from firecrest_testbuild.harness import cli
from firecrest_testbuild.scenarios.client import Exchange
from firecrest_testbuild.scenarios.endpoints import operation_of
from firecrest_testbuild.scenarios.report import FAIL, PASS, SKIP, Case, build
from firecrest_testbuild.scenarios.report_html import compare_page, page

SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def exchange(test: str, method: str, path: str, response: str) -> Any:
    return Exchange(
        test=test,
        phase="call",
        method=method,
        path=path,
        operation=operation_of(method, path),
        status=200,
        request=f"{method} https://h{path}\n{SCRIPT}",
        response=response,
    )


def today(name: str = "site", failing: bool = True) -> dict[str, Any]:
    """A report.json as build() writes it today."""
    cases = [
        Case("s/test_status.py::ok", "status", PASS, duration=0.25),
        Case(
            "s/test_utilities.py::broken",
            "utilities",
            FAIL if failing else PASS,
            reason=f"expected 400, got {SCRIPT}" if failing else "",
        ),
        Case("s/test_compute.py::skipped", "compute", SKIP, reason="no scheduler"),
    ]
    exchanges = [
        exchange("s/test_status.py::ok", "GET", "/status/systems", "HTTP 200\n[]"),
        exchange("s/test_utilities.py::broken", "GET", "/utilities/stat", f"HTTP 200\n{SCRIPT}"),
    ]
    target = {
        "name": name,
        "api": {"url": "https://firecrest.example.org", "version": "1.16.1"},
        "reported": "FIRECREST_VERSION=1.16.1, FIRECREST_BUILD=testbuild-stack 0.3.0",
    }
    return without_verdicts(
        build(
            cases, exchanges, target, [], "2025-11-29T10:00:00+01:00", "2025-11-29T10:01:05+01:00"
        )
    )


# What the verdict levels added to report.json (suite 0.2): a page must still
# render documents written without them.
VERDICT_CASE_KEYS = ("level", "sources", "checks", "warnings", "requests")
VERDICT_KEYS = (
    "scores_by_level",
    "scores_by_area",
    "shared_requests",
    "strict",
    "duration_seconds",
)


def without_verdicts(document: dict[str, Any]) -> dict[str, Any]:
    for case in document["cases"]:
        for key in VERDICT_CASE_KEYS:
            case.pop(key, None)
        case.get("failure", {}).pop("source", None)
    for key in VERDICT_KEYS:
        document.pop(key, None)
    return document


def tomorrow() -> dict[str, Any]:
    """The same with the keys the verdicts add."""
    document = copy.deepcopy(today())
    source = {
        "kind": "spec",
        "where": "GET /utilities/stat",
        "says": "400 on a bad path",
        "level": "MUST",
    }
    warning = {
        "passed": False,
        "message": f"a header {SCRIPT}",
        "kind": "reference",
        "where": "utilities.py",
        "says": "sets X-Size",
        "level": "SHOULD",
    }
    document["target"].update(implementation="other-firecrest", version="9.9")
    document["duration_seconds"] = 42.0
    document["scores_by_level"] = {
        "MUST": {"passed": 3, "total": 4, "percent": 75.0},
        "SHOULD": {"passed": 0, "total": 1, "percent": 0.0},
    }
    for case in document["cases"]:
        case.update(level="MUST", sources=[source], checks=[], warnings=[], requests=[])
    ok = document["cases"][0]
    ok["warnings"] = [warning]
    ok["checks"] = [warning]
    ok["requests"] = [{"phase": "setup", "operation": "GET /status/systems", "status": 200}]
    document["cases"][1]["failure"]["source"] = source
    return document


class Elements(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def assert_inert(text: str) -> None:
    """No script, no handler, nothing fetched from elsewhere."""
    elements = Elements(text).tags
    assert not [tag for tag, _ in elements if tag in ("script", "iframe", "img", "link", "object")]
    assert not [attrs for _, attrs in elements if any(name.startswith("on") for name in attrs)]
    assert not [
        attrs["href"]
        for tag, attrs in elements
        if tag == "a" and not (attrs.get("href") or "").startswith(("#", "https://", "http://"))
    ]
    assert "@import" not in text and "url(" not in text
    assert "Content-Security-Policy" in text and "default-src 'none'" in text


@pytest.mark.parametrize("document", [today(), tomorrow()], ids=["today", "with-verdicts"])
def test_the_page_escapes_what_the_server_said(document: dict[str, Any]):
    text = page(document)
    assert SCRIPT not in text and ESCAPED in text
    assert_inert(text)
    assert "expected 400, got " + ESCAPED in text  # the expectation
    assert "GET https://h/utilities/stat\n" + ESCAPED in text  # the request
    assert "HTTP 200\n" + ESCAPED in text  # the answer


def test_names_urls_and_attributes_are_escaped_too():
    document = today(name=f"<b>site</b>{SCRIPT}")
    document["target"]["api"]["url"] = "javascript:alert(1)"
    document["target"]["reported"] = f"FIRECREST_BUILD=<i>x</i> '\"{SCRIPT}"
    document["matrix"][0]["detail"] = SCRIPT
    document["cases"][0]["sources"] = [{"kind": "spec", "where": "w", "says": f"'\">{SCRIPT}"}]
    text = page(document)
    assert SCRIPT not in text and "<b>site" not in text and "<i>x" not in text
    assert_inert(text)
    assert "<title>FirecREST conformance: &lt;b&gt;site&lt;/b&gt;" in text
    assert "javascript:alert(1)" in text  # shown, not linked
    assert "title='&#x27;&quot;&gt;&lt;script&gt;" in text

    other = today(name=SCRIPT + "{0}{name}")
    compared = compare_page(document, other)
    assert SCRIPT not in compared and ESCAPED in compared and "{0}{name}" in compared
    assert_inert(compared)


def test_todays_document_renders_without_the_verdict_keys():
    document = today()
    assert "level" not in document["cases"][0] and "scores_by_level" not in document
    text = page(document)
    # Implementation and version read from what the target reported.
    assert "<dt>Implementation</dt><dd>testbuild-stack</dd>" in text
    assert "<dt>Version</dt><dd>0.3.0</dd>" in text
    assert "<dt>API version</dt><dd>1.16.1" in text
    assert "<dt>Duration</dt><dd>1 min 5 s</dd>" in text  # from started and finished
    assert "<dt>Date</dt><dd>2025-11-29 10:00:00 to 10:01:05 (UTC+01:00)</dd>" in text
    assert "records no levels or sources" in text
    assert "Warnings" not in text and "<th>level</th><th>score</th>" not in text
    assert "Failures (1)</h2>" in text


def test_the_verdict_keys_are_shown_when_present():
    text = page(tomorrow())
    assert "<dt>Implementation</dt><dd>other-firecrest</dd>" in text
    assert "<dt>Version</dt><dd>9.9</dd>" in text
    assert "<dt>Duration</dt><dd>42.0 s</dd>" in text
    assert "<th>level</th><th>score</th>" in text and ">3/4<" in text and ">75%<" in text
    assert "⚠ 1 warning" in text and "Failures (1) and warnings (1)" in text
    assert "a header " + ESCAPED in text and "SHOULD, reference: utilities.py: sets X-Size" in text
    assert "<td>setup</td><td><code>GET /status/systems</code></td>" in text
    assert "spec: GET /utilities/stat" in text
    assert "records no levels or sources" not in text


def test_failures_and_warnings_come_first_and_are_linked():
    text = page(tomorrow())
    table = text[
        text.index("<table class='tests'>") : text.index(
            "</table>", text.index("<table class='tests'>")
        )
    ]
    order = re.findall(r"<code>(s/test_[a-z]+\.py::\w+)</code>", table)
    assert order == [
        "s/test_utilities.py::broken",
        "s/test_status.py::ok",
        "s/test_compute.py::skipped",
    ]
    assert "<a href='#case-1'>" in table and "<a href='#case-0'>" in table
    assert "id='case-1'" in text and "id='case-0'" in text
    assert "id='case-2'" not in text  # a skip has no details section
    assert "<tr class='problem'>" in table and "<tr class='warned'>" in table


@pytest.mark.parametrize(
    "document",
    [{}, {"target": None, "cases": None, "matrix": [None], "scores": {"x": None}}],
    ids=["empty", "broken"],
)
def test_a_document_missing_everything_still_renders(document: dict[str, Any]):
    text = page(document)
    assert "FirecREST conformance: unnamed target" in text and "not reported" in text
    assert compare_page(document, today()).startswith("<!doctype html>")


def test_the_compare_page_highlights_what_differs():
    first, second = today("one"), today("two", failing=False)
    text = compare_page(first, second)
    scores = [document["scores"]["overall"] for document in (first, second)]
    change = round(100 * (scores[1]["passed"] - scores[0]["passed"]) / scores[0]["total"], 1)
    assert "<h1>A: one <span class='muted'>vs</span> B: two</h1>" in text
    assert text.count("<header class='report'>") == 2
    assert "Operations whose results differ (1)" in text
    differing = re.findall(r"<tr class='differs'><td><code>([^<]+)</code>", text)
    assert differing == [
        "GET /utilities/stat",
        "GET /utilities/stat",
        "s/test_utilities.py::broken",
    ]
    assert "≠ differs" in text and f">{change:+g}<" in text
    assert_inert(text)


def test_the_compare_page_of_two_equal_reports_says_so():
    text = compare_page(today("one"), today("one"))
    assert "None: both reports agree on every operation." in text
    assert "Tests whose verdicts differ (0)" in text


def test_conformance_compare_writes_the_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    import json

    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps(today("one")))
    second.write_text(json.dumps(today("two", failing=False)))
    out = tmp_path / "out" / "compare.html"
    assert cli.main(["conformance", "--compare", str(first), str(second), "--html", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "≠ GET /utilities/stat" in printed and f"compare page: {out}" in printed
    assert "Operations whose results differ (1)" in out.read_text()

    assert cli.main(["conformance", "--html", str(out)]) == 2
    assert "--html FILE goes with --compare" in capsys.readouterr().err
