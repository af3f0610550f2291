"""The conformance report: what each test did and how it ended, the matrix
of every operation of the API, scores per area, and failures with the
request, the expectation and the answer. Written as JSON, Markdown and a
self-contained HTML page (JUnit XML comes from pytest itself).

The matrix is computed from the exchanges the suites' client recorded: an
operation passes when a passing test exercised it, fails when a failing
test's last request was to it, and is skipped (with the reason) when only
skipped tests were about it (their `covers` marker).
"""

from __future__ import annotations

import datetime
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from firecrest_testbuild.scenarios import SUITE_VERSION
from firecrest_testbuild.scenarios.endpoints import API_VERSION, AREAS, OPERATIONS, OUT_OF_SCOPE
from firecrest_testbuild.scenarios.report_html import page

PASS, FAIL, SKIP, ERROR = "PASS", "FAIL", "SKIP", "ERROR"


@dataclass
class Case:
    id: str
    area: str
    status: str = PASS
    reason: str = ""
    duration: float = 0.0
    covers: list[str] = field(default_factory=list)
    skipped_checks: list[str] = field(default_factory=list)  # ground truth not granted


class ReportCollector:
    def __init__(self, config: pytest.Config, folder: Path) -> None:
        self.config = config
        self.folder = folder
        self.cases: dict[str, Case] = {}
        self.started = _now()

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            covers = [operation for m in item.iter_markers("covers") for operation in m.args]
            self.cases[item.nodeid] = Case(
                id=item.nodeid, area=_area_of_test(item.nodeid), covers=covers
            )

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        case = self.cases.get(report.nodeid)
        if case is None:
            return
        case.duration += report.duration
        case.skipped_checks += [
            str(text)
            for name, text in report.user_properties
            if name == "skipped-check" and text not in case.skipped_checks
        ]
        if report.skipped and case.status == PASS:
            case.status = SKIP
            case.reason = _skip_reason(report)
        elif report.failed:
            case.status = FAIL if report.when == "call" else ERROR
            case.reason = _failure_text(report)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        recorder = getattr(self.config, "_conformance_recorder", None)
        exchanges = recorder.exchanges if recorder else []
        document = build(
            cases=list(self.cases.values()),
            exchanges=exchanges,
            target=_target_summary(self.config),
            parameters=[arg for arg in sys.argv[1:] if "secret" not in arg.lower()],
            started=self.started,
            finished=_now(),
        )
        write(document, self.folder)


def build(
    cases: list[Case],
    exchanges: list[Any],
    target: dict[str, Any],
    parameters: list[str],
    started: str,
    finished: str,
) -> dict[str, Any]:
    by_test: dict[str, list[Any]] = {}
    for exchange in exchanges:
        by_test.setdefault(exchange.test, []).append(exchange)
    case_rows = []
    for case in cases:
        done = by_test.get(case.id, [])
        row = {
            "id": case.id,
            "area": case.area,
            "status": case.status,
            "reason": case.reason,
            "duration_seconds": round(case.duration, 2),
            "operations": sorted({" ".join(e.operation) for e in done if e.operation}),
            "skipped_checks": case.skipped_checks,
        }
        if case.status in (FAIL, ERROR) and done:
            last = done[-1]
            row["failure"] = {
                "request": last.request,
                "actual": last.response,
                "expected": case.reason,
            }
        case_rows.append(row)
    matrix = _matrix(cases, by_test)
    return {
        "suite": {
            "name": "firecrest-v1-conformance",
            "version": SUITE_VERSION,
            "api_version": API_VERSION,
        },
        "target": target,
        "parameters": parameters,
        "started": started,
        "finished": finished,
        "totals": {
            status: sum(c.status == status for c in cases) for status in (PASS, FAIL, SKIP, ERROR)
        },
        "scores": _scores(matrix, cases),
        "matrix": matrix,
        "cases": case_rows,
    }


def _matrix(cases: list[Case], by_test: dict[str, list[Any]]) -> list[dict[str, Any]]:
    results: dict[str, dict[str, list[str]]] = {}

    def note(operation: str, outcome: str, test: str) -> None:
        results.setdefault(operation, {}).setdefault(outcome, []).append(test)

    for case in cases:
        done = [e for e in by_test.get(case.id, []) if e.operation]
        if case.status in (FAIL, ERROR) and done:
            for exchange in done[:-1]:
                note(" ".join(exchange.operation), PASS, case.id)
            note(" ".join(done[-1].operation), FAIL, case.id)
        elif case.status == PASS:
            for exchange in done:
                note(" ".join(exchange.operation), PASS, case.id)
        elif case.status == SKIP:
            for operation in case.covers:
                note(operation, SKIP, f"{case.id}: {case.reason}")
    rows = []
    for method, path, area in OPERATIONS:
        key = f"{method} {path}"
        seen = results.get(key, {})
        if (method, path) in OUT_OF_SCOPE:
            status, detail = "out-of-scope", OUT_OF_SCOPE[(method, path)]
        elif FAIL in seen:
            status, detail = "fail", ", ".join(sorted(set(seen[FAIL])))
        elif PASS in seen:
            status, detail = "pass", f"{len(set(seen[PASS]))} tests"
        elif SKIP in seen:
            status, detail = "skipped", "; ".join(sorted(set(seen[SKIP])))
        else:
            status, detail = "not-covered", ""
        rows.append(
            {"method": method, "path": path, "area": area, "status": status, "detail": detail}
        )
    return rows


def _scores(matrix: list[dict[str, Any]], cases: list[Case]) -> dict[str, Any]:
    scores: dict[str, Any] = {}
    for area in AREAS:
        if area == "auth":
            judged = [c for c in cases if c.area == "auth" and c.status != SKIP]
            passed = sum(c.status == PASS for c in judged)
            scores[area] = _score(passed, len(judged))
            continue
        rows = [r for r in matrix if r["area"] == area and r["status"] != "out-of-scope"]
        scores[area] = _score(sum(r["status"] == "pass" for r in rows), len(rows))
    in_scope = [r for r in matrix if r["status"] != "out-of-scope"]
    scores["overall"] = _score(sum(r["status"] == "pass" for r in in_scope), len(in_scope))
    return scores


def _score(passed: int, total: int) -> dict[str, Any]:
    return {
        "passed": passed,
        "total": total,
        "percent": round(100 * passed / total, 1) if total else None,
    }


def write(document: dict[str, Any], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(document, indent=2))
    (folder / "report.md").write_text(markdown(document))
    (folder / "report.html").write_text(page(document))


def markdown(document: dict[str, Any]) -> str:
    suite, target = document["suite"], document["target"]
    lines = [
        f"# FirecREST conformance: {target.get('name', '?')}",
        "",
        f"Suite {suite['name']} {suite['version']}, API {suite['api_version']};"
        f" target {target.get('api', {}).get('url', '?')} (reports:"
        f" {target.get('reported', 'nothing')}); {document['started']} to {document['finished']}.",
        "",
        "| area | passed | total | score |",
        "|---|---|---|---|",
    ]
    for area, score in document["scores"].items():
        percent = "n/a" if score["percent"] is None else f"{score['percent']}%"
        lines.append(f"| {area} | {score['passed']} | {score['total']} | {percent} |")
    lines += ["", "## Matrix", "", "| operation | area | result | detail |", "|---|---|---|---|"]
    for row in document["matrix"]:
        lines.append(
            f"| `{row['method']} {row['path']}` | {row['area']} | {row['status']} |"
            f" {row['detail']} |"
        )
    failures = [c for c in document["cases"] if c["status"] in (FAIL, ERROR)]
    lines += ["", f"## Failures ({len(failures)})", ""]
    for case in failures:
        lines += [f"### {case['id']}", "", "```", case["reason"][:1500], "```"]
        if "failure" in case:
            lines += [
                "Request:",
                "```",
                case["failure"]["request"],
                "```",
                "Answer:",
                "```",
                case["failure"]["actual"],
                "```",
            ]
    skipped = [c for c in document["cases"] if c["status"] == SKIP]
    lines += ["", f"## Skipped ({len(skipped)})", ""]
    lines += [f"- {case['id']}: {case['reason']}" for case in skipped]
    unchecked = [(c["id"], text) for c in document["cases"] for text in c["skipped_checks"]]
    lines += ["", f"## Ground-truth checks skipped ({len(unchecked)})", ""]
    lines += [f"- {test}: {text}" for test, text in unchecked]
    return "\n".join(lines) + "\n"


def compare(first: dict[str, Any], second: dict[str, Any]) -> str:
    """Two reports side by side: scores, then every operation whose result differs."""
    names = (first["target"].get("name", "first"), second["target"].get("name", "second"))
    lines = [f"{'':<52} {names[0]:>20} {names[1]:>20}"]
    for area in first["scores"]:
        a, b = first["scores"][area], second["scores"].get(area, {})
        lines.append(f"{'score ' + area:<52} {_percent(a):>20} {_percent(b):>20}")
    results = {(r["method"], r["path"]): r["status"] for r in second["matrix"]}
    for row in first["matrix"]:
        other = results.get((row["method"], row["path"]), "absent")
        marker = "  " if other == row["status"] else "≠ "
        lines.append(
            f"{marker}{row['method'] + ' ' + row['path']:<50} {row['status']:>20} {other:>20}"
        )
    return "\n".join(lines)


def _percent(score: dict[str, Any]) -> str:
    if not score or score.get("percent") is None:
        return "n/a"
    return f"{score['percent']}% ({score['passed']}/{score['total']})"


def _area_of_test(nodeid: str) -> str:
    """One suite file per area: scenarios/test_<area>.py (and test_tutorial.py)."""
    return Path(nodeid.split("::")[0]).stem.removeprefix("test_")


def _skip_reason(report: pytest.TestReport) -> str:
    if isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return str(report.longrepr)


def _failure_text(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    return crash.message if crash is not None else str(report.longrepr)[:2000]


def _target_summary(config: pytest.Config) -> dict[str, Any]:
    from firecrest_testbuild.scenarios.target import TargetError, load

    path = config.getoption("--target", default=None)
    if not path:
        return {}
    try:
        target = load(Path(path))
    except TargetError:
        return {"name": path}
    summary = target.public()
    summary["reported"] = _reported_versions(config, target)
    return summary


def _reported_versions(config: pytest.Config, target) -> str:
    """What the target says of itself in /status/parameters (general group)."""
    from firecrest_testbuild.scenarios.client import Client, Recorder

    try:
        client = Client(target, target.identities[0], Recorder())
        out = client.request("GET", "/status/parameters", machine=False).json().get("out", {})
        general = out.get("general", []) if isinstance(out, dict) else []
        return ", ".join(f"{p['name']}={p['value']}" for p in general) or "nothing"
    except Exception as error:  # a report must be written whatever the target does
        return f"unknown ({type(error).__name__})"


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")
