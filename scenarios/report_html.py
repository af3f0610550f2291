"""The conformance report as a page a person reads: `page(document)` for one
report, `compare_page(first, second)` for two side by side.

Both render from the report.json document (scenarios/report.py `build()`),
never from the run itself, so an old report.json renders as well as a new
one: keys added later (verdict levels, sources, checks, warnings, requests
by phase, scores by level, the target's implementation and version) are
shown when present and left out when absent.

The page is self-contained and safe to open from anywhere: inline CSS, no
script, nothing fetched (its Content-Security-Policy forbids both), every
value escaped, since most of what it shows comes from the server it judges.
Filtering the tests to the problems is a CSS checkbox; printed, it shows
everything.
"""

from __future__ import annotations

import datetime
import html
from collections.abc import Iterable, Mapping
from typing import Any

PROBLEM_STATUSES = ("FAIL", "ERROR")
MATRIX_LABELS = {
    "pass": "✓ pass",
    "fail": "✗ fail",
    "skipped": "⊘ skipped",
    "not-covered": "○ not covered",
    "out-of-scope": "· out of scope",
}
VERDICT_LABELS = {
    "PASS": "✓ PASS",
    "FAIL": "✗ FAIL",
    "ERROR": "! ERROR",
    "SKIP": "⊘ SKIP",
    "WARN": "⚠ PASS, warned",
}
# Order of the tests table: what needs a look first.
VERDICT_ORDER = {"FAIL": 0, "ERROR": 1, "WARN": 2, "SKIP": 3, "PASS": 4}
LONGEST_TEXT = 6000  # characters of one request, expectation or answer shown

CSS = """
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--soft:#f6f8fa;
--pass:#1a7f37;--pass-bg:#dafbe1;--fail:#cf222e;--fail-bg:#ffebe9;
--error:#8250df;--error-bg:#fbefff;--skip:#7d5e00;--skip-bg:#fff8c5;
--warn:#bc4c00;--warn-bg:#fff1e5;--none:#59636e;--none-bg:#eff2f5;
--scope:#0550ae;--scope-bg:#ddf4ff}
*{box-sizing:border-box}
html{-webkit-print-color-adjust:exact;print-color-adjust:exact}
body{margin:0;color:var(--fg);background:#fff;font:15px/1.5 system-ui,-apple-system,
"Segoe UI","DejaVu Sans",Roboto,Helvetica,Arial,sans-serif}
main{max-width:1180px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:28px;margin:0 0 4px;line-height:1.2;overflow-wrap:anywhere}
h2{font-size:20px;margin:36px 0 10px;padding-bottom:4px;border-bottom:1px solid var(--line)}
h3{font-size:16px;margin:0 0 6px;overflow-wrap:anywhere}
h4{font-size:13px;margin:12px 0 4px;color:var(--muted);text-transform:uppercase;
letter-spacing:.04em}
code,pre{font-family:"DejaVu Sans Mono",ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;
font-size:13px}
pre{background:var(--soft);border:1px solid var(--line);border-radius:6px;padding:8px 10px;
margin:0;white-space:pre-wrap;overflow-wrap:anywhere;max-height:none}
a{color:#0969da}
.kicker{margin:0;color:var(--muted);font-size:13px;text-transform:uppercase;
letter-spacing:.06em}
header.report{border:1px solid var(--line);border-radius:10px;padding:18px 22px;
background:linear-gradient(#fbfcfd,#f6f8fa)}
.headline{display:flex;flex-wrap:wrap;align-items:center;gap:8px 18px;margin:10px 0 14px}
.overall{font-size:30px;font-weight:700}
.overall small{font-size:14px;font-weight:400;color:var(--muted)}
.counts{display:flex;flex-wrap:wrap;gap:6px}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:3px 16px;margin:0}
dl.facts dt{color:var(--muted)}
dl.facts dd{margin:0;overflow-wrap:anywhere}
.badge{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12.5px;
font-weight:600;white-space:nowrap;border:1px solid transparent}
.pass{color:var(--pass);background:var(--pass-bg);border-color:#aceebb}
.fail{color:var(--fail);background:var(--fail-bg);border-color:#ffcecb}
.error{color:var(--error);background:var(--error-bg);border-color:#ecd8ff}
.skipped,.skip{color:var(--skip);background:var(--skip-bg);border-color:#f2e08a}
.warn{color:var(--warn);background:var(--warn-bg);border-color:#ffd8b5}
.not-covered{color:var(--none);background:var(--none-bg);border-color:#d1d9e0}
.out-of-scope{color:var(--scope);background:var(--scope-bg);border-color:#b6e3ff}
.muted{color:var(--muted)}
.note{color:var(--muted);font-size:13px;margin:4px 0 10px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;vertical-align:top;padding:5px 10px;border-bottom:1px solid var(--line)}
th{font-size:12.5px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em;
background:var(--soft);border-bottom:2px solid var(--line)}
td.num,th.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
td code{overflow-wrap:anywhere}
.matrix td:first-child code{white-space:nowrap}
tr{break-inside:avoid}
table.scores td{vertical-align:middle}
table.scores{table-layout:fixed}
table.scores th:first-child{width:12em}
table.scores th.num{width:8em}
table.scores td.area{font-weight:600;white-space:nowrap}
table.scores tr.total td{border-top:2px solid var(--line);font-weight:700}
.bar{position:relative;height:14px;min-width:160px;background:#eaeef2;border-radius:7px;
overflow:hidden}
.bar span{position:absolute;left:0;top:0;bottom:0;background:var(--pass);border-radius:7px}
.bar.low span{background:var(--fail)}
.bar.mid span{background:#d4a72c}
.bar.none{background:repeating-linear-gradient(45deg,#eaeef2 0 6px,#f6f8fa 6px 12px)}
tr.problem td:first-child{box-shadow:inset 4px 0 0 var(--fail)}
tr.warned td:first-child{box-shadow:inset 4px 0 0 var(--warn)}
tr.differs td{background:#fff8e6}
tr.differs td:first-child{box-shadow:inset 4px 0 0 var(--warn)}
.filter{display:inline-flex;align-items:center;gap:6px;margin:0 0 8px;font-size:14px;
cursor:pointer}
#only-problems:checked~table tr.ok{display:none}
section.case{border:1px solid var(--line);border-left:5px solid var(--fail);border-radius:8px;
padding:12px 16px;margin:14px 0;break-inside:avoid-page}
section.case.error{border-left-color:var(--error);color:inherit;background:none}
section.case.warned{border-left-color:var(--warn)}
section.case .meta{margin:0;color:var(--muted);font-size:13.5px}
ul.checks{margin:4px 0;padding-left:20px}
ul.checks li{margin:2px 0}
.columns{display:grid;grid-template-columns:1fr 1fr;gap:16px}
.columns header.report{height:100%}
header.report h2{margin:0 0 4px;border:0;font-size:22px}
table.compared+table.compared{margin-top:14px}
footer{margin-top:40px;color:var(--muted);font-size:13px;border-top:1px solid var(--line);
padding-top:8px}
@media (max-width:760px){.columns{grid-template-columns:1fr}main{padding:14px}}
@media print{main{max-width:none;padding:0}.filter,#only-problems{display:none}
#only-problems:checked~table tr.ok{display:table-row}a{color:inherit;text-decoration:none}
h2{break-after:avoid}body{font-size:12px}}
"""


def page(document: Mapping[str, Any]) -> str:
    """One report as a self-contained HTML page."""
    target = _mapping(document.get("target"))
    name = _text(target.get("name")) or "unnamed target"
    cases = [_mapping(case) for case in _list(document.get("cases"))]
    problems = [(index, case) for index, case in enumerate(cases) if _is_problem(case)]
    body = "".join(
        [
            _header(document, title=f"FirecREST conformance: {name}"),
            _scores_section(document),
            _matrix_section(_list(document.get("matrix"))),
            _tests_section(cases),
            _details_section(problems),
            _skipped_section(cases),
            _footer(document),
        ]
    )
    return _html(f"FirecREST conformance: {name} ({_date(document.get('started'))})", body)


def compare_page(first: Mapping[str, Any], second: Mapping[str, Any]) -> str:
    """Two reports side by side: their headers, their scores, and the
    operations and tests whose results differ."""
    names = [_column_name(first, "A"), _column_name(second, "B")]
    matrix = _compare_matrix(_list(first.get("matrix")), _list(second.get("matrix")))
    differing = [row for row in matrix if row["differs"]]
    body = "".join(
        [
            "<p class='kicker'>FirecREST v1 conformance: two reports compared</p>",
            f"<h1>{_e(names[0])} <span class='muted'>vs</span> {_e(names[1])}</h1>",
            f"<p class='note'>{len(differing)} of {len(matrix)} operations differ"
            f" ({_e(_changes(differing))}).</p>",
            "<div class='columns'>",
            _header(first, title=names[0], level=2),
            _header(second, title=names[1], level=2),
            "</div>",
            _compare_scores(first, second, names),
            _compare_operations(matrix, differing, names),
            _compare_tests(first, second, names),
            "<footer>Rendered from two report.json documents;"
            " each report.html has its own failures in full.</footer>",
        ]
    )
    return _html(f"FirecREST conformance: {names[0]} vs {names[1]}", body)


# --- one report ----------------------------------------------------------------------


def _header(document: Mapping[str, Any], title: str, level: int = 1) -> str:
    suite = _mapping(document.get("suite"))
    target = _mapping(document.get("target"))
    api = _mapping(target.get("api"))
    system = _mapping(target.get("system"))
    implementation, version, api_reported = _implementation(target)
    overall = _mapping(_mapping(document.get("scores")).get("overall"))
    facts: list[tuple[str, str]] = [
        ("Target", _e(_text(target.get("name")) or "not named")),
        ("URL", _link(api.get("url"))),
    ]
    if system.get("name"):
        facts.append(("System", f"<code>{_e(system.get('name'))}</code>"))
    facts += [
        ("Implementation", _e(implementation) if implementation else _absent("not reported")),
        ("Version", _e(version) if version else _absent("not reported")),
        (
            "API version",
            _e(api_reported or api.get("version") or "not reported")
            + (
                f" <span class='muted'>(declared in the target: {_e(api.get('version'))})</span>"
                if api_reported and api.get("version") and api.get("version") != api_reported
                else ""
            ),
        ),
    ]
    generation = _generation(suite)
    if target.get("reported"):
        # What the target says of itself: v1 in /status/parameters, v2 in F7T-AppVersion.
        where = "Reported" if generation == "v2" else "/status/parameters"
        facts.append((where, f"<code>{_e(target.get('reported'))}</code>"))
    facts += [
        (
            "Suite",
            f"{_e(suite.get('name') or 'conformance suite')} {_e(suite.get('version') or '?')}"
            f" <span class='muted'>(judging API {_e(suite.get('api_version') or '?')})</span>",
        ),
        ("Date", _e(_when(document.get("started"), document.get("finished")))),
        ("Duration", _e(_duration(document))),
    ]
    parameters = [_text(p) for p in _list(document.get("parameters"))]
    if parameters:
        facts.append(("Run with", f"<code>{_e(' '.join(parameters))}</code>"))
    tag = f"h{level}"
    return (
        "<header class='report'>"
        + (f"<p class='kicker'>FirecREST {generation} conformance report</p>" if level == 1 else "")
        + f"<{tag}>{_e(title)}</{tag}>"
        + "<div class='headline'>"
        + f"<span class='overall'>{_e(_percent(overall))}"
        + f" <small>overall{_e(_fraction(overall, ' operations'))}</small></span>"
        + f"<span class='counts'>{_count_badges(document)}</span></div>"
        + "<dl class='facts'>"
        + "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in facts)
        + "</dl></header>"
    )


def _count_badges(document: Mapping[str, Any]) -> str:
    totals = _mapping(document.get("totals"))
    cases = [_mapping(case) for case in _list(document.get("cases"))]
    warned = sum(bool(_list(case.get("warnings"))) for case in cases)
    shown = [
        ("pass", totals.get("PASS", 0), "passed"),
        ("fail", totals.get("FAIL", 0), "failed"),
        ("error", totals.get("ERROR", 0), "error" if totals.get("ERROR", 0) == 1 else "errors"),
        ("skipped", totals.get("SKIP", 0), "skipped"),
    ]
    if "warnings" in _keys(cases):
        shown.append(("warn", warned, "with warnings"))
    return " ".join(
        f"<span class='badge {kind}'>{_e(count)} {label}</span>" for kind, count, label in shown
    )


def _scores_section(document: Mapping[str, Any]) -> str:
    scores = _mapping(document.get("scores"))
    by_level = _mapping(document.get("scores_by_level"))
    rows = [(area, _mapping(score), "") for area, score in scores.items() if area != "overall"]
    parts = ["<h2 id='scores'>Scores</h2>"]
    if by_level:
        parts.append(
            "<table class='scores levels'><tr><th>level</th><th>score</th>"
            "<th class='num'>passed</th><th class='num'>percent</th></tr>"
            + "".join(
                _score_row(
                    level,
                    _mapping(score),
                    "a miss fails the test" if level == "MUST" else "a miss is a warning",
                )
                for level, score in by_level.items()
            )
            + "</table><p class='note'>Checks by the level of their source: MUST (the API"
            " description, the tutorial), SHOULD (clients, the reference implementation).</p>"
        )
    parts.append(
        "<table class='scores areas'><tr><th>area</th><th>score</th>"
        "<th class='num'>passed</th><th class='num'>percent</th></tr>"
        + "".join(_score_row(area, score, note) for area, score, note in rows)
        + (
            _score_row("overall", _mapping(scores["overall"]), "", total=True)
            if "overall" in scores
            else ""
        )
        + "</table><p class='note'>An area's score: the operations of the API that passing"
        " tests exercised, of those in scope (auth: its tests that ran).</p>"
    )
    return "".join(parts)


def _score_row(label: str, score: Mapping[str, Any], note: str, total: bool = False) -> str:
    return (
        f"<tr class='{'total' if total else 'score'}'><td class='area'>{_e(label)}"
        + (f"<br><span class='note'>{_e(note)}</span>" if note else "")
        + f"</td><td>{_bar(score)}</td>"
        + f"<td class='num'>{_e(_fraction(score))}</td>"
        + f"<td class='num'>{_e(_percent(score))}</td></tr>"
    )


def _bar(score: Mapping[str, Any]) -> str:
    percent = _number(score.get("percent"))
    if percent is None:
        return "<div class='bar none' title='nothing judged'></div>"
    width = max(0.0, min(100.0, percent))
    grade = "" if width >= 80 else "mid" if width >= 50 else "low"
    return (
        f"<div class='bar {grade}' role='img' aria-label='{width:g}%'>"
        f"<span style='width:{width:g}%'></span></div>"
    )


def _matrix_section(matrix: list[Any]) -> str:
    rows = [_mapping(row) for row in matrix]
    counts: dict[str, int] = {}
    for row in rows:
        counts[_text(row.get("status"))] = counts.get(_text(row.get("status")), 0) + 1
    summary = ", ".join(
        f"{counts[status]} {MATRIX_LABELS.get(status, status).split(' ', 1)[-1]}"
        for status in MATRIX_LABELS
        if counts.get(status)
    )
    body = "".join(
        f"<tr class='op {_css(row.get('status'))}-row'>"
        f"<td><code>{_e(row.get('method'))} {_e(row.get('path'))}</code></td>"
        f"<td>{_e(row.get('area'))}</td><td>{_status_badge(row.get('status'))}</td>"
        f"<td>{_e(row.get('detail'))}</td></tr>"
        for row in rows
    )
    return (
        "<h2 id='matrix'>Matrix</h2>"
        f"<p class='note'>{len(rows)} operations of the API: {_e(summary or 'none')}."
        " Each result comes from the requests the tests made.</p>"
        "<div class='matrix'><table><tr><th>operation</th><th>area</th><th>result</th>"
        f"<th>detail</th></tr>{body}</table></div>"
    )


def _tests_section(cases: list[Mapping[str, Any]]) -> str:
    ordered = sorted(
        enumerate(cases), key=lambda pair: (VERDICT_ORDER.get(_verdict(pair[1]), 5), pair[0])
    )
    keys = _keys(cases)
    problems = sum(_is_problem(case) for case in cases)
    rows = []
    for index, case in ordered:
        status = _text(case.get("status"))
        warnings = _list(case.get("warnings"))
        kind = "problem" if status in PROBLEM_STATUSES else "warned" if warnings else "ok"
        ident = f"<code>{_e(case.get('id'))}</code>"
        if _is_problem(case):
            ident = f"<a href='#case-{index}'>{ident}</a>"
        verdict = _verdict_badge(status)
        if warnings:
            verdict += (
                f" <span class='badge warn'>⚠ {len(warnings)}"
                f" warning{'s' if len(warnings) != 1 else ''}</span>"
            )
        reason = ""
        if status == "SKIP" and case.get("reason"):
            reason = f"<br><span class='note'>{_e(_cut(case.get('reason'), 300))}</span>"
        rows.append(
            f"<tr class='{kind}'><td>{ident}{reason}</td><td>{_e(case.get('area'))}</td>"
            f"<td>{verdict}</td><td>{_e(case.get('level') or '—')}</td>"
            f"<td>{_sources(case)}</td>"
            f"<td class='num'>{_e(_seconds(case.get('duration_seconds')))}</td></tr>"
        )
    tally = _tally(cases)
    return (
        "<h2 id='tests'>Tests</h2>"
        f"<p class='note'>{len(cases)} tests: {_e(tally)}."
        " Failures, errors and tests with warnings come first.</p>"
        + (
            "<input type='checkbox' id='only-problems'>"
            "<label class='filter' for='only-problems'>show only failures and warnings"
            f" ({problems})</label>"
            if problems
            else ""
        )
        + "<table class='tests'><tr><th>test</th><th>area</th><th>verdict</th>"
        + "<th>level</th><th>source</th><th class='num'>duration</th></tr>"
        + "".join(rows)
        + "</table>"
        + (
            ""
            if {"level", "sources"} & keys or not cases
            else "<p class='note'>This report records no levels or sources.</p>"
        )
    )


def _details_section(problems: list[tuple[int, Mapping[str, Any]]]) -> str:
    verdicts = [_verdict(case) for _, case in problems]
    counts = [
        f"{word} ({verdicts.count(verdict)})"
        for verdict, word in (("FAIL", "Failures"), ("ERROR", "errors"), ("WARN", "warnings"))
        if verdict == "FAIL" or verdicts.count(verdict)
    ]
    title = ", ".join(counts[:-1]) + " and " + counts[-1] if len(counts) > 1 else counts[0]
    if not problems:
        return f"<h2 id='failures'>{title}</h2><p>None: every test that ran passed.</p>"
    ordered = sorted(problems, key=lambda pair: (VERDICT_ORDER.get(_verdict(pair[1]), 5), pair[0]))
    return f"<h2 id='failures'>{title}</h2>" + "".join(
        _case_details(index, case) for index, case in ordered
    )


def _case_details(index: int, case: Mapping[str, Any]) -> str:
    status = _text(case.get("status"))
    failed = status in PROBLEM_STATUSES
    failure = _mapping(case.get("failure"))
    reason = _text(case.get("reason"))
    meta = [
        _e(case.get("area")),
        f"level {_e(case.get('level'))}" if case.get("level") else "",
        _e(_seconds(case.get("duration_seconds"))),
    ]
    parts = [
        f"<section class='case {'error' if status == 'ERROR' else '' if failed else 'warned'}'"
        f" id='case-{index}'>",
        f"<h3>{_verdict_badge(status)} <code>{_e(case.get('id'))}</code></h3>",
        f"<p class='meta'>{' · '.join(m for m in meta if m)}</p>",
    ]
    if _list(case.get("sources")):
        parts.append(f"<h4>Source</h4><div>{_sources(case, full=True)}</div>")
    if failed:
        expected = _text(failure.get("expected")) or reason
        label = "Error" if status == "ERROR" else "Expected"
        parts.append(f"<h4>{label}</h4><pre>{_e(_cut(expected))}</pre>")
        if failure.get("source") and failure.get("source") not in _list(case.get("sources")):
            parts.append(f"<p class='meta'>Source: {_e(_source_text(failure.get('source')))}</p>")
        if failure:
            parts += [
                f"<h4>Request</h4><pre>{_e(_cut(failure.get('request')))}</pre>",
                f"<h4>Answer</h4><pre>{_e(_cut(failure.get('actual')))}</pre>",
            ]
        else:
            parts.append("<p class='note'>No request of this test was recorded.</p>")
        if reason and reason != expected:
            parts.append(f"<h4>What pytest said</h4><pre>{_e(_cut(reason))}</pre>")
    warnings = [_mapping(w) for w in _list(case.get("warnings"))]
    if warnings:
        parts.append(
            "<h4>Warnings (SHOULD missed)</h4><ul class='checks'>"
            + "".join(
                f"<li><span class='badge warn'>⚠ {_e(w.get('level') or 'SHOULD')}</span>"
                f" {_e(w.get('message'))}<br><span class='muted'>{_e(_source_text(w))}"
                "</span></li>"
                for w in warnings
            )
            + "</ul>"
        )
    missed = [
        _mapping(c)
        for c in _list(case.get("checks"))
        if not _mapping(c).get("passed") and _mapping(c) not in warnings
    ]
    if missed:
        parts.append(
            "<h4>Checks missed</h4><ul class='checks'>"
            + "".join(
                f"<li><span class='badge fail'>✗ {_e(c.get('level') or '')}</span>"
                f" {_e(c.get('message'))}<br><span class='muted'>{_e(_source_text(c))}</span></li>"
                for c in missed
            )
            + "</ul>"
        )
    requests = [_mapping(r) for r in _list(case.get("requests"))]
    if requests:
        parts.append(
            "<h4>Requests of this test</h4><table class='requests'><tr><th>phase</th>"
            "<th>operation</th><th class='num'>status</th></tr>"
            + "".join(
                f"<tr><td>{_e(r.get('phase'))}</td><td><code>{_e(r.get('operation'))}</code></td>"
                f"<td class='num'>{_e(r.get('status'))}</td></tr>"
                for r in requests
            )
            + "</table>"
        )
    elif not failed and case.get("operations"):
        parts.append(
            "<h4>Operations of this test</h4><p>"
            + ", ".join(f"<code>{_e(op)}</code>" for op in _list(case.get("operations")))
            + "</p>"
        )
    parts.append("</section>")
    return "".join(parts)


def _skipped_section(cases: list[Mapping[str, Any]]) -> str:
    skipped = [case for case in cases if _text(case.get("status")) == "SKIP"]
    unchecked = [
        (case, _text(text)) for case in cases for text in _list(case.get("skipped_checks"))
    ]
    parts = [f"<h2 id='skipped'>Skipped ({len(skipped)})</h2>"]
    if skipped:
        parts.append(
            "<table class='skips'><tr><th>test</th><th>why</th></tr>"
            + "".join(
                f"<tr><td><code>{_e(c.get('id'))}</code></td><td>{_e(c.get('reason'))}</td></tr>"
                for c in skipped
            )
            + "</table>"
        )
    else:
        parts.append("<p>None.</p>")
    if unchecked:
        parts.append(
            f"<h2 id='unchecked'>Ground-truth checks skipped ({len(unchecked)})</h2>"
            "<p class='note'>Checks of the truth behind the API that the target grants no"
            " access for.</p><table><tr><th>test</th><th>check</th></tr>"
            + "".join(
                f"<tr><td><code>{_e(c.get('id'))}</code></td><td>{_e(text)}</td></tr>"
                for c, text in unchecked
            )
            + "</table>"
        )
    return "".join(parts)


def _footer(document: Mapping[str, Any]) -> str:
    suite = _mapping(document.get("suite"))
    return (
        f"<footer>{_e(suite.get('name') or 'conformance suite')} {_e(suite.get('version') or '')}"
        " · rendered from report.json, which holds everything shown here"
        " (junit.xml and report.md beside it).</footer>"
    )


# --- two reports ----------------------------------------------------------------------


def _column_name(document: Mapping[str, Any], fallback: str) -> str:
    name = _text(_mapping(document.get("target")).get("name")) or fallback
    return f"{fallback}: {name}"


def _compare_scores(first: Mapping[str, Any], second: Mapping[str, Any], names: list[str]) -> str:
    def cell(score: Any) -> str:
        shown = " · ".join(filter(None, [_fraction(_mapping(score)), _percent(_mapping(score))]))
        return f"<td>{_bar(_mapping(score))}<span class='note'>{_e(shown)}</span></td>"

    def table(kind: str, a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
        labels = list(a) + [label for label in b if label not in a]
        return (
            f"<table class='scores compared'><tr><th>{kind}</th><th>{_e(names[0])}</th>"
            f"<th>{_e(names[1])}</th><th class='num'>change</th></tr>"
            + "".join(
                f"<tr class='{'total' if label == 'overall' else 'score'}'>"
                f"<td class='area'>{_e(label)}</td>{cell(a.get(label))}{cell(b.get(label))}"
                f"<td class='num'>{_delta(a.get(label), b.get(label))}</td></tr>"
                for label in labels
            )
            + "</table>"
        )

    parts = [
        "<h2 id='scores'>Scores</h2>",
        table("area", _mapping(first.get("scores")), _mapping(second.get("scores"))),
    ]
    levels = (_mapping(first.get("scores_by_level")), _mapping(second.get("scores_by_level")))
    if any(levels):
        parts.append(table("level", *levels))
    parts.append("<p class='note'>Change: from A to B, in percentage points.</p>")
    return "".join(parts)


def _delta(a: Any, b: Any) -> str:
    x, y = _exact_percent(_mapping(a)), _exact_percent(_mapping(b))
    if x is None or y is None:
        return "<span class='muted'>—</span>"
    change = round(y - x, 1)
    if change == 0:
        return "<span class='muted'>=</span>"
    kind = "pass" if change > 0 else "fail"
    return f"<span class='badge {kind}'>{change:+g}</span>"


def _exact_percent(score: Mapping[str, Any]) -> float | None:
    """From passed/total where the report has them (its percent is rounded)."""
    passed, total = _number(score.get("passed")), _number(score.get("total"))
    if passed is not None and total:
        return 100 * passed / total
    return _number(score.get("percent"))


def _compare_matrix(first: list[Any], second: list[Any]) -> list[dict[str, Any]]:
    def key(row: Mapping[str, Any]) -> tuple[str, str]:
        return _text(row.get("method")), _text(row.get("path"))

    a = {key(_mapping(r)): _mapping(r) for r in first}
    b = {key(_mapping(r)): _mapping(r) for r in second}
    rows = []
    for operation in list(a) + [k for k in b if k not in a]:
        left, right = a.get(operation, {}), b.get(operation, {})
        statuses = (_text(left.get("status")) or "absent", _text(right.get("status")) or "absent")
        rows.append(
            {
                "operation": " ".join(operation),
                "area": _text(left.get("area") or right.get("area")),
                "first": statuses[0],
                "second": statuses[1],
                "details": (_text(left.get("detail")), _text(right.get("detail"))),
                "differs": statuses[0] != statuses[1],
            }
        )
    return rows


def _changes(differing: list[dict[str, Any]]) -> str:
    better = sum(row["second"] == "pass" for row in differing)
    worse = sum(row["first"] == "pass" for row in differing)
    other = len(differing) - better - worse
    parts = [f"{better} pass only in B", f"{worse} pass only in A"]
    return ", ".join(parts + ([f"{other} otherwise"] if other else []))


def _compare_operations(
    matrix: list[dict[str, Any]], differing: list[dict[str, Any]], names: list[str]
) -> str:
    def table(rows: list[dict[str, Any]]) -> str:
        return (
            f"<table class='matrix'><tr><th>operation</th><th>area</th><th>{_e(names[0])}</th>"
            f"<th>{_e(names[1])}</th><th></th></tr>"
            + "".join(
                f"<tr class='{'differs' if row['differs'] else 'same'}'>"
                f"<td><code>{_e(row['operation'])}</code></td><td>{_e(row['area'])}</td>"
                f"<td>{_status_badge(row['first'])}{_small(row['details'][0], row['differs'])}"
                f"</td><td>{_status_badge(row['second'])}"
                f"{_small(row['details'][1], row['differs'])}</td>"
                f"<td>{'<strong>≠ differs</strong>' if row['differs'] else ''}</td></tr>"
                for row in rows
            )
            + "</table>"
        )

    return (
        f"<h2 id='differences'>Operations whose results differ ({len(differing)})</h2>"
        + (table(differing) if differing else "<p>None: both reports agree on every operation.</p>")
        + f"<h2 id='matrix'>All operations ({len(matrix)})</h2>"
        + "<p class='note'>Rows whose results differ are highlighted.</p>"
        + table(matrix)
    )


def _small(text: str, shown: bool) -> str:
    return f"<br><span class='note'>{_e(_cut(text, 300))}</span>" if shown and text else ""


def _compare_tests(first: Mapping[str, Any], second: Mapping[str, Any], names: list[str]) -> str:
    def verdicts(document: Mapping[str, Any]) -> dict[str, str]:
        return {
            _text(_mapping(c).get("id")): _verdict(_mapping(c))
            for c in _list(document.get("cases"))
        }

    a, b = verdicts(first), verdicts(second)
    changed = [
        (test, a.get(test, "absent"), b.get(test, "absent"))
        for test in list(a) + [t for t in b if t not in a]
        if a.get(test) != b.get(test)
    ]
    if not changed:
        return "<h2 id='tests'>Tests whose verdicts differ (0)</h2><p>None.</p>"
    return (
        f"<h2 id='tests'>Tests whose verdicts differ ({len(changed)})</h2>"
        f"<table class='tests'><tr><th>test</th><th>{_e(names[0])}</th><th>{_e(names[1])}</th>"
        "</tr>"
        + "".join(
            f"<tr class='differs'><td><code>{_e(test)}</code></td>"
            f"<td>{_verdict_badge(x)}</td><td>{_verdict_badge(y)}</td></tr>"
            for test, x, y in changed
        )
        + "</table>"
    )


# --- pieces ---------------------------------------------------------------------------


def _html(title: str, body: str) -> str:
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        # Nothing runs and nothing is fetched, whatever a server put in its answers.
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none';"
        " style-src 'unsafe-inline'; img-src data:\">"
        f"<title>{_e(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


def _e(value: Any) -> str:
    """Escaped for text and for quoted attributes."""
    return html.escape(_text(value), quote=True)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _keys(cases: Iterable[Mapping[str, Any]]) -> set[str]:
    return {key for case in cases for key in case}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _css(value: Any) -> str:
    text = _text(value).lower()
    return "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in text) or "unknown"


def _absent(text: str) -> str:
    return f"<span class='muted'>{_e(text)}</span>"


def _link(url: Any) -> str:
    text = _text(url)
    if not text:
        return _absent("not given")
    if text.lower().startswith(("http://", "https://")):
        return f"<a href='{_e(text)}'>{_e(text)}</a>"
    return _e(text)


def _cut(value: Any, limit: int = LONGEST_TEXT) -> str:
    text = _text(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n… ({len(text) - limit} more characters in report.json)"


def _implementation(target: Mapping[str, Any]) -> tuple[str, str, str]:
    """(implementation, its version, the API version it reports): the
    target's own keys when the report has them, else read from what it says
    in /status/parameters ("FIRECREST_VERSION=1.16.1, FIRECREST_BUILD=name 1.2")."""
    reported: dict[str, str] = {}
    for part in _text(target.get("reported")).split(", "):
        name, sep, value = part.partition("=")
        if sep:
            reported[name.strip()] = value.strip()
    build = reported.get("FIRECREST_BUILD", "")
    build_name, _, build_version = build.partition(" ")
    implementation = _text(target.get("implementation")) or build_name
    version = _text(target.get("version")) or build_version
    return (
        implementation,
        version,
        reported.get("FIRECREST_VERSION", "") or reported.get("F7T-AppVersion", ""),
    )


def _generation(suite: Mapping[str, Any]) -> str:
    """v1 or v2: the generation the suite judged (reports before v2 are v1)."""
    return "v2" if _text(suite.get("name")).startswith("firecrest-v2") else "v1"


def _parse_time(value: Any) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(_text(value))
    except ValueError:
        return None


def _date(value: Any) -> str:
    moment = _parse_time(value)
    return moment.strftime("%Y-%m-%d %H:%M") if moment else _text(value) or "undated"


def _when(started: Any, finished: Any) -> str:
    start, end = _parse_time(started), _parse_time(finished)
    if start is None:
        return f"{_text(started) or '?'} to {_text(finished) or '?'}"
    zone = start.strftime("%z")
    zone = f" (UTC{zone[:3]}:{zone[3:]})" if zone else ""
    text = start.strftime("%Y-%m-%d %H:%M:%S")
    if end is not None:
        same_day = end.date() == start.date()
        text += " to " + end.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S")
    elif finished:
        text += f" to {_text(finished)}"
    return text + zone


def _duration(document: Mapping[str, Any]) -> str:
    seconds = _number(document.get("duration_seconds"))
    if seconds is None:
        start, end = _parse_time(document.get("started")), _parse_time(document.get("finished"))
        if start is None or end is None or (start.tzinfo is None) != (end.tzinfo is None):
            return "unknown"
        seconds = (end - start).total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return (f"{hours} h " if hours else "") + f"{minutes} min {rest} s"


def _seconds(value: Any) -> str:
    seconds = _number(value)
    return "—" if seconds is None else f"{seconds:.2f} s"


def _percent(score: Mapping[str, Any]) -> str:
    percent = _number(score.get("percent"))
    return "n/a" if percent is None else f"{percent:g}%"


def _fraction(score: Mapping[str, Any], unit: str = "") -> str:
    if "passed" not in score or "total" not in score:
        return ""
    text = f"{_text(score.get('passed'))}/{_text(score.get('total'))}"
    return f" ({text}{unit})" if unit else text


def _status_badge(status: Any) -> str:
    text = _text(status) or "unknown"
    return f"<span class='badge {_css(text)}'>{_e(MATRIX_LABELS.get(text, text))}</span>"


def _verdict_badge(status: Any) -> str:
    text = _text(status) or "unknown"
    kind = {"PASS": "pass", "FAIL": "fail", "ERROR": "error", "SKIP": "skip", "WARN": "warn"}.get(
        text, "not-covered"
    )
    return f"<span class='badge {kind}'>{_e(VERDICT_LABELS.get(text, text))}</span>"


def _verdict(case: Mapping[str, Any]) -> str:
    status = _text(case.get("status"))
    return "WARN" if status == "PASS" and _list(case.get("warnings")) else status


def _is_problem(case: Mapping[str, Any]) -> bool:
    return _text(case.get("status")) in PROBLEM_STATUSES or bool(_list(case.get("warnings")))


def _tally(cases: list[Mapping[str, Any]]) -> str:
    statuses = [_text(case.get("status")) for case in cases]
    words = {"PASS": "passed", "FAIL": "failed", "ERROR": "errored", "SKIP": "skipped"}
    text = ", ".join(f"{statuses.count(s)} {word}" for s, word in words.items())
    warned = sum(bool(_list(case.get("warnings"))) for case in cases)
    return text + (f"; {warned} with warnings" if warned else "")


def _source_text(source: Any) -> str:
    if not isinstance(source, Mapping):
        return _text(source)
    level = f"{_text(source.get('level'))}, " if source.get("level") else ""
    says = f": {_text(source.get('says'))}" if source.get("says") else ""
    return f"{level}{_text(source.get('kind'))}: {_text(source.get('where'))}{says}"


def _sources(case: Mapping[str, Any], full: bool = False) -> str:
    sources = [s for s in _list(case.get("sources")) if s]
    if not sources:
        return "<span class='muted'>—</span>"
    if full:
        return (
            "<ul class='checks'>"
            + "".join(f"<li>{_e(_source_text(s))}</li>" for s in sources)
            + "</ul>"
        )
    shown = []
    for source in sources:
        if isinstance(source, Mapping):
            shown.append(
                f"<span title='{_e(source.get('says'))}'>{_e(source.get('kind'))}:"
                f" {_e(source.get('where'))}</span>"
            )
        else:
            shown.append(_e(source))
    return "<br>".join(shown)
