"""The conformance report: what each test did and how it ended, the checks
it made with their sources and levels, the matrix of every operation of the
API, scores per level and per area, and failures with the request, the
expectation, its source and the answer. Written as JSON, Markdown and a
self-contained HTML page (JUnit XML comes from pytest itself).

Every exchange is charged to the test and phase (setup, call, teardown) that
sent it; session- and module-scoped fixtures' exchanges to pseudo-tests of
their own. The matrix is computed from those records and the checks:

- a failing test fails the operations its failing check was about (the
  check's `about`; for a plain assert, the operation the last request of the
  failing phase served; a test with no request at all: its `covers`), never
  an operation only its teardown touched;
- every other operation a test exercised in its setup or call passes;
- operations only skipped tests were about (their `covers`) are skipped,
  with the reason; a missed SHOULD check about an operation is listed on its
  row as a warning without failing it.

Scores: MUST counts tests (a test passes when no MUST check of it missed);
SHOULD counts SHOULD checks; per area both, and the matrix's share of
passing operations (skipped ones are not judged, so not counted).
"""

from __future__ import annotations

import datetime
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from firecrest_testbuild.scenarios import SUITE_VERSION, verdict
from firecrest_testbuild.scenarios.endpoints import V1, Catalog
from firecrest_testbuild.scenarios.report_html import page

PASS, FAIL, SKIP, ERROR = "PASS", "FAIL", "SKIP", "ERROR"
JUDGED_PHASES = ("setup", "call")  # teardown is cleanup: never judged, never blamed


@dataclass
class Case:
    id: str
    area: str
    status: str = PASS
    reason: str = ""
    duration: float = 0.0
    covers: list[str] = field(default_factory=list)
    skipped_checks: list[str] = field(default_factory=list)  # ground truth not granted
    level: str = "MUST"  # the level of the test's declared source
    source: dict[str, str] | None = None  # the declared source of its plain asserts
    checks: list[dict[str, Any]] = field(default_factory=list)
    failed_phase: str = ""  # setup, call or teardown when it failed


class ReportCollector:
    def __init__(self, config: pytest.Config, folder: Path) -> None:
        self.config = config
        self.folder = folder
        self.cases: dict[str, Case] = {}
        self.started = _now()
        self.clock = time.monotonic()

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            covers = [operation for m in item.iter_markers("covers") for operation in m.args]
            source = verdict.declared_source(item)
            self.cases[item.nodeid] = Case(
                id=item.nodeid,
                area=_area_of_test(item.nodeid),
                covers=covers,
                level=source.level if source else "MUST",
                source=source.as_dict() if source else None,
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
        if report.when == "teardown":  # its user_properties hold every check by now
            case.checks = verdict.checks_of(report.user_properties)
        if report.skipped and case.status == PASS:
            case.status = SKIP
            case.reason = _skip_reason(report)
        elif report.failed and case.status in (PASS, SKIP):
            case.status = FAIL if report.when == "call" else ERROR
            case.reason = _failure_text(report)
            case.failed_phase = report.when

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from firecrest_testbuild.scenarios.plugin import recorder_of

        recorder = recorder_of(self.config)
        document = build(
            cases=list(self.cases.values()),
            exchanges=recorder.exchanges,
            target=_target_summary(self.config),
            parameters=[arg for arg in sys.argv[1:] if "secret" not in arg.lower()],
            started=self.started,
            finished=_now(),
            duration_seconds=time.monotonic() - self.clock,
            strict=verdict.strict(self.config),
            catalog=recorder.catalog,
        )
        write(document, self.folder)


def build(
    cases: list[Case],
    exchanges: list[Any],
    target: dict[str, Any],
    parameters: list[str],
    started: str,
    finished: str,
    duration_seconds: float = 0.0,
    strict: bool = False,
    catalog: Catalog = V1,
) -> dict[str, Any]:
    """The report of one run; `catalog`: the operations of the API generation judged."""
    by_test: dict[str, list[Any]] = {}
    for exchange in exchanges:
        by_test.setdefault(exchange.test, []).append(exchange)
    judged = [_Judged(case, by_test.get(case.id, []), strict) for case in cases]
    matrix = _matrix(judged, catalog)
    known = {case.id for case in cases}
    return {
        "suite": {
            "name": catalog.suite,
            "version": SUITE_VERSION,
            "api_version": catalog.api_version,
        },
        "target": target,
        "parameters": parameters,
        "started": started,
        "finished": finished,
        "duration_seconds": round(duration_seconds, 1),
        "strict": strict,
        "totals": {
            status: sum(c.status == status for c in cases) for status in (PASS, FAIL, SKIP, ERROR)
        },
        "scores": _scores(matrix, cases, catalog.areas),
        "scores_by_level": _level_scores(cases),
        "scores_by_area": {
            area: _level_scores([c for c in cases if c.area == area])
            for area in dict.fromkeys(c.area for c in cases)
        },
        "matrix": matrix,
        "cases": [one.row() for one in judged],
        "shared_requests": {
            test: [_request_row(e) for e in done]
            for test, done in by_test.items()
            if test not in known
        },
    }


def _op(operation: tuple[str, str] | None) -> str:
    return " ".join(operation) if operation else ""


def _request_row(exchange: Any) -> dict[str, Any]:
    row = {
        "phase": exchange.phase,
        "operation": _op(exchange.operation),
        "status": exchange.status,
        "path": exchange.path,
    }
    subject = _op(getattr(exchange, "subject", None))
    if subject and subject != row["operation"]:
        row["subject"] = subject
    return row


class _Judged:
    """One case with its own exchanges: what failed, about which operations."""

    def __init__(self, case: Case, exchanges: list[Any], strict: bool) -> None:
        self.case = case
        self.exchanges = exchanges
        self.failed = case.status in (FAIL, ERROR)
        # A FAIL is a failure of the test's call, an ERROR of its fixtures.
        self.failed_phase = case.failed_phase or ("call" if case.status == FAIL else "setup")
        self.missed = [c for c in case.checks if not c["passed"]]
        self.warnings = [c for c in self.missed if c["level"] == "SHOULD"]
        if self.failed:
            # Under --strict-should a SHOULD miss fails the test like a MUST one.
            self.failing_checks = [c for c in self.missed if c["level"] == "MUST" or strict]
            self.failing_operations, self.failing_exchange = self._failing()
        else:
            self.failing_checks, self.failing_operations, self.failing_exchange = [], [], None

    def judged_exchanges(self) -> list[Any]:
        return [e for e in self.exchanges if e.phase in JUDGED_PHASES]

    def _failing(self) -> tuple[list[str], Any]:
        in_phase = [e for e in self.judged_exchanges() if e.phase == self.failed_phase]
        about = list(dict.fromkeys(op for c in self.failing_checks for op in c.get("about", [])))
        if about:
            served = [e for e in self.judged_exchanges() if _op(_subject(e)) in about]
            return about, served[-1] if served else None
        if in_phase:
            return [_op(_subject(in_phase[-1]))], in_phase[-1]
        if self.case.status == FAIL:
            return list(self.case.covers), None
        return [], None

    def row(self) -> dict[str, Any]:
        case = self.case
        row: dict[str, Any] = {
            "id": case.id,
            "area": case.area,
            "status": case.status,
            "reason": case.reason,
            "duration_seconds": round(case.duration, 2),
            "operations": sorted({_op(e.operation) for e in self.exchanges if e.operation}),
            "skipped_checks": case.skipped_checks,
            "level": case.level,
            "sources": _sources(case),
            "checks": case.checks,
            "warnings": self.warnings,
            "requests": [_request_row(e) for e in self.exchanges],
        }
        if self.failed:
            row["failure"] = self._failure()
        return row

    def _failure(self) -> dict[str, Any]:
        exchange = self.failing_exchange
        check = self.failing_checks[-1] if self.failing_checks else None
        source = {k: check[k] for k in ("kind", "where", "says", "level")} if check else None
        return {
            "request": exchange.request if exchange else "",
            "actual": exchange.response if exchange else "",
            "expected": self.case.reason,
            "source": source or (self.case.source if self.failed_phase == "call" else None),
            "operations": self.failing_operations,
            "phase": self.failed_phase,
        }


def _subject(exchange: Any) -> tuple[str, str] | None:
    return getattr(exchange, "subject", None) or exchange.operation


def _sources(case: Case) -> list[dict[str, str]]:
    found = [case.source] if case.source else []
    found += [{k: c[k] for k in ("kind", "where", "says", "level")} for c in case.checks]
    unique = {json.dumps(source, sort_keys=True): source for source in found}
    return list(unique.values())


def _matrix(judged: list[_Judged], catalog: Catalog) -> list[dict[str, Any]]:
    results: dict[str, dict[str, list[str]]] = {}
    warnings: dict[str, list[str]] = {}

    def note(operation: str, outcome: str, test: str) -> None:
        results.setdefault(operation, {}).setdefault(outcome, []).append(test)

    for one in judged:
        case = one.case
        if case.status == SKIP:
            for operation in case.covers:
                note(operation, SKIP, f"{case.id}: {case.reason}")
            continue
        for operation in one.failing_operations:
            note(operation, FAIL, case.id)
        for exchange in one.judged_exchanges():
            if exchange.operation and _op(exchange.operation) not in one.failing_operations:
                note(_op(exchange.operation), PASS, case.id)
        for check in one.warnings:
            for operation in check.get("about", []):
                warnings.setdefault(operation, []).append(f"{case.id}: {check['message']}")
    rows = []
    for method, path, area in catalog.operations:
        key = f"{method} {path}"
        seen = results.get(key, {})
        if (method, path) in catalog.out_of_scope:
            status, detail = "out-of-scope", catalog.out_of_scope[(method, path)]
        elif FAIL in seen:
            status, detail = "fail", ", ".join(sorted(set(seen[FAIL])))
        elif PASS in seen:
            status, detail = "pass", f"{len(set(seen[PASS]))} tests"
        elif SKIP in seen:
            status, detail = "skipped", "; ".join(sorted(set(seen[SKIP])))
        else:
            status, detail = "not-covered", ""
        rows.append(
            {
                "method": method,
                "path": path,
                "area": area,
                "status": status,
                "detail": detail,
                "warnings": warnings.get(key, []),
            }
        )
    return rows


def _scores(
    matrix: list[dict[str, Any]], cases: list[Case], areas: tuple[str, ...]
) -> dict[str, Any]:
    scores: dict[str, Any] = {}
    for area in areas:
        if area == "auth":
            judged = [c for c in cases if c.area == "auth" and c.status != SKIP]
            passed = sum(c.status == PASS for c in judged)
            scores[area] = _score(passed, len(judged))
            continue
        rows = [r for r in matrix if r["area"] == area and _judged_row(r)]
        scores[area] = _score(sum(r["status"] == "pass" for r in rows), len(rows))
    in_scope = [r for r in matrix if _judged_row(r)]
    scores["overall"] = _score(sum(r["status"] == "pass" for r in in_scope), len(in_scope))
    return scores


def _judged_row(row: dict[str, Any]) -> bool:
    """Out-of-scope and skipped operations were not judged: not in the score."""
    return row["status"] not in ("out-of-scope", "skipped")


def _level_scores(cases: list[Case]) -> dict[str, dict[str, Any]]:
    """MUST: the tests judged, passed when no MUST check missed; SHOULD: the checks."""
    judged = [c for c in cases if c.status != SKIP]
    should = [check for c in judged for check in c.checks if check["level"] == "SHOULD"]
    return {
        "MUST": _score(sum(c.status == PASS for c in judged), len(judged)),
        "SHOULD": _score(sum(check["passed"] for check in should), len(should)),
    }


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
    return (
        "\n".join(
            _md_heading(document)
            + _md_scores(document)
            + _md_matrix(document)
            + _md_failures(document)
            + _md_warnings(document)
            + _md_skipped(document)
        )
        + "\n"
    )


def _md_heading(document: dict[str, Any]) -> list[str]:
    suite, target = document["suite"], document["target"]
    reports = ", ".join(
        f"{key} {target[key]}" for key in ("implementation", "version") if target.get(key)
    )
    strict = "; SHOULD misses fail (--strict-should)" if document.get("strict") else ""
    return [
        f"# FirecREST conformance: {target.get('name', '?')}",
        "",
        f"Suite {suite['name']} {suite['version']}, API {suite['api_version']};"
        f" target {target.get('api', {}).get('url', '?')} (reports:"
        f" {reports or target.get('reported', 'nothing')}); {document['started']} to"
        f" {document['finished']} ({document.get('duration_seconds', 0)} s){strict}.",
        "",
    ]


def _md_percent(score: dict[str, Any]) -> str:
    percent = "n/a" if score["percent"] is None else f"{score['percent']}%"
    return f"{score['passed']}/{score['total']} ({percent})"


def _md_scores(document: dict[str, Any]) -> list[str]:
    levels = document["scores_by_level"]
    lines = [
        f"MUST (tests passed): {_md_percent(levels['MUST'])}; SHOULD (checks held):"
        f" {_md_percent(levels['SHOULD'])}",
        "",
        "| area | MUST tests | SHOULD checks | operations passed |",
        "|---|---|---|---|",
    ]
    areas = dict.fromkeys([*document["scores_by_area"], *document["scores"]])
    for area in areas:
        by_level = document["scores_by_area"].get(area)
        must = _md_percent(by_level["MUST"]) if by_level else ""
        should = _md_percent(by_level["SHOULD"]) if by_level else ""
        matrix = _md_percent(document["scores"][area]) if area in document["scores"] else ""
        lines.append(f"| {area} | {must} | {should} | {matrix} |")
    return lines


def _md_matrix(document: dict[str, Any]) -> list[str]:
    lines = ["", "## Matrix", "", "| operation | area | result | detail |", "|---|---|---|---|"]
    for row in document["matrix"]:
        warned = f" ({len(row['warnings'])} SHOULD warnings)" if row.get("warnings") else ""
        lines.append(
            f"| `{row['method']} {row['path']}` | {row['area']} | {row['status']}{warned} |"
            f" {row['detail']} |"
        )
    return lines


def _md_source(source: dict[str, str] | None) -> str:
    if not source:
        return "no check: the test crashed"
    return f"{source['level']}, {source['kind']}: {source['where']}: {source['says']}"


def _md_failures(document: dict[str, Any]) -> list[str]:
    failures = [c for c in document["cases"] if c["status"] in (FAIL, ERROR)]
    lines = ["", f"## Failures ({len(failures)})", ""]
    for case in failures:
        failure = case["failure"]
        lines += [
            f"### {case['id']} ({case['status']} in {failure['phase']})",
            "",
            f"About: {', '.join(failure['operations']) or 'no operation'};"
            f" expected by {_md_source(failure['source'])}",
            "",
            "```",
            case["reason"][:1500],
            "```",
        ]
        if failure["request"]:
            lines += ["Request:", "```", failure["request"], "```"]
            lines += ["Answer:", "```", failure["actual"], "```"]
        lines += ["Requests of this test:", ""]
        lines += [
            f"- {r['phase']}: {r['operation'] or r['path']} -> {r['status']}"
            + (f" (for {r['subject']})" if "subject" in r else "")
            for r in case["requests"]
        ]
    return lines


def _md_warnings(document: dict[str, Any]) -> list[str]:
    warned = [(c["id"], w) for c in document["cases"] for w in c["warnings"]]
    lines = ["", f"## SHOULD warnings ({len(warned)})", ""]
    lines += [f"- {test}: {w['message']} [{_md_source(w)}]" for test, w in warned]
    return lines


def _md_skipped(document: dict[str, Any]) -> list[str]:
    skipped = [c for c in document["cases"] if c["status"] == SKIP]
    lines = ["", f"## Skipped ({len(skipped)})", ""]
    lines += [f"- {case['id']}: {case['reason']}" for case in skipped]
    unchecked = [(c["id"], text) for c in document["cases"] for text in c["skipped_checks"]]
    lines += ["", f"## Ground-truth checks skipped ({len(unchecked)})", ""]
    lines += [f"- {test}: {text}" for test, text in unchecked]
    return lines


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
    summary: dict[str, Any] = target.public()
    if target.generation == 2:
        return summary | _app_version(target)
    general = _general_parameters(target)
    if isinstance(general, str):
        summary["reported"] = general
        return summary
    summary["reported"] = ", ".join(f"{k}={v}" for k, v in general.items()) or "nothing"
    # What it says it is: FIRECREST_BUILD names the implementation, FIRECREST_VERSION
    # the version (pyfirecrest reads the latter; the description names neither).
    summary["implementation"] = general.get("FIRECREST_BUILD")
    summary["version"] = general.get("FIRECREST_VERSION")
    return summary


def _general_parameters(target: Any) -> dict[str, str] | str:
    """The general group of /status/parameters, or why it could not be read."""
    from firecrest_testbuild.scenarios.client import Client, Recorder

    try:
        client = Client(target, target.identities[0], Recorder())
        out = client.request("GET", "/status/parameters", machine=False).json().get("out", {})
        general = out.get("general", []) if isinstance(out, dict) else []
        return {str(p["name"]): str(p["value"]) for p in general}
    except Exception as error:  # a report must be written whatever the target does
        return f"unknown ({type(error).__name__})"


def _app_version(target: Any) -> dict[str, Any]:
    """What a v2 target says it is: the F7T-AppVersion header of its answers
    (pyfirecrest reads it; v2 names no implementation)."""
    from firecrest_testbuild.scenarios.v2.api import ApiV2

    try:
        version = ApiV2(target, target.identities[0]).app_version()
    except Exception as error:  # a report must be written whatever the target does
        return {"reported": f"unknown ({type(error).__name__})"}
    reported = f"F7T-AppVersion={version}" if version else "no F7T-AppVersion"
    return {"reported": reported, "version": version}


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")
