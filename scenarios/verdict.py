"""Where each expectation of the suites comes from, and what a miss means.

MUST: the API description (a path, a response, a header) or the tutorial (a
step) says so; a miss fails the test. SHOULD: the description is silent, but
clients or the reference implementation behave so; a miss is recorded as a
warning with its source and fails the run only under `--strict-should`
(`testbuild conformance --strict`).

A test declares the one source of its plain asserts with the `source` marker
(every scenario must: a unit test checks it); single checks with another
source, or of level SHOULD, go through `must(...)` and `should(...)`. A test
whose declared source is SHOULD-level (a client, the reference) turns the
misses of its plain asserts into warnings the same way.

    @pytest.mark.source(spec("GET /utilities/ls", "400 with X-Invalid-Path"))
    def test_ls(client): ...
        should(answer.status_code == 400, "an empty account is refused at once",
               reference("compute.py submit_job", "'account' is empty"), about=answer)

`about` names what a check is about: a response the suites' client got (its
operation), an operation ("GET /utilities/ls"), or several. The report fails
(or warns on) those operations' matrix cells, whatever request came last.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import pytest

Level = Literal["MUST", "SHOULD"]
Kind = Literal["spec", "tutorial", "client", "reference"]
LEVELS: dict[Kind, Level] = {
    "spec": "MUST",
    "tutorial": "MUST",
    "client": "SHOULD",
    "reference": "SHOULD",
}
# The user_properties name of a recorded check (the report reads it).
CHECK_PROPERTY = "check"
STRICT_OPTION = "--strict-should"
# The attribute the suites' client sets on each response: its operation.
OPERATION_ATTRIBUTE = "conformance_operation"


@dataclass(frozen=True)
class Source:
    kind: Kind
    where: str  # "GET /utilities/ls", "tutorial: Submit a job", "pyfirecrest 3.x", ...
    says: str  # what that source states or does

    @property
    def level(self) -> Level:
        return LEVELS[self.kind]

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "where": self.where, "says": self.says, "level": self.level}

    def __str__(self) -> str:
        return f"{self.level} ({self.kind}: {self.where}: {self.says})"


def spec(where: str, says: str) -> Source:
    """The API description: an operation ("GET /utilities/ls") and what it states."""
    return Source("spec", where, says)


def tutorial(step: str, says: str) -> Source:
    return Source("tutorial", f"tutorial: {step}", says)


def client(name: str, relies_on: str) -> Source:
    """A client library or tool (pyfirecrest, ...) and what it relies on."""
    return Source("client", name, relies_on)


def reference(where: str, does: str) -> Source:
    """The reference implementation (upstream FirecREST 1.16): where, and what it does."""
    return Source("reference", where, does)


@dataclass(frozen=True)
class Check:
    """One expectation checked by a test: recorded for the report either way."""

    source: Source
    message: str
    passed: bool
    about: tuple[str, ...] = ()  # operations ("GET /utilities/ls") the check is about
    phase: str = "call"

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "message": self.message,
            **self.source.as_dict(),
            "about": list(self.about),
            "phase": self.phase,
        }

    def as_property(self) -> tuple[str, str]:
        return CHECK_PROPERTY, json.dumps(self.as_dict())


class MustMiss(AssertionError):
    """A MUST check missed: it fails the test whatever the test's own level."""


def must(condition: object, message: str, source: Source, about: object = None) -> None:
    """A MUST expectation with a source other than the test's own: fails on a miss."""
    if source.level != "MUST":
        raise ValueError(f"must() takes a spec or tutorial source, not {source}")
    check = Check(source, message, bool(condition), operations_of(about), _phase)
    _record(check)
    if not check.passed:
        raise MustMiss(f"{message} [{source}]")


def should(condition: object, message: str, source: Source, about: object = None) -> bool:
    """A SHOULD expectation: a miss is a warning in the report (a failure under
    --strict-should). Returns whether it held, for checks that build on it."""
    if source.level != "SHOULD":
        raise ValueError(f"should() takes a client or reference source, not {source}")
    check = Check(source, message, bool(condition), operations_of(about), _phase)
    _record(check)
    if not check.passed and _strict():
        pytest.fail(f"SHOULD missed under {STRICT_OPTION}: {message} [{source}]")
    return check.passed


def operations_of(about: object) -> tuple[str, ...]:
    """The operations a check is about: from a response of the suites' client,
    an operation name, or an iterable of either."""
    if about is None:
        return ()
    if isinstance(about, str):
        return (about,)
    named = getattr(about, OPERATION_ATTRIBUTE, None)
    if isinstance(named, str):
        return (named,)
    if isinstance(about, Iterable):
        return tuple(operation for each in about for operation in operations_of(each))
    return ()


_current: pytest.Item | None = None
_phase = "call"


def bind(item: pytest.Item | None, phase: str = "call") -> None:
    """The test (and its phase) the next checks belong to (set by the plugin)."""
    global _current, _phase
    _current, _phase = item, phase


def record(item: pytest.Item, check: Check) -> None:
    """Add a check to a test's record (the plugin records each test's own asserts so)."""
    item.user_properties.append(check.as_property())


def _record(check: Check) -> None:
    if _current is not None:
        record(_current, check)


def _strict() -> bool:
    return bool(_current is not None and _current.config.getoption(STRICT_OPTION, False))


def strict(config: pytest.Config) -> bool:
    return bool(config.getoption(STRICT_OPTION, False))


def declared_source(item: pytest.Item) -> Source | None:
    """The source of a test's plain asserts: the one argument of its `source` marker."""
    marker = item.get_closest_marker("source")
    if marker is None or len(marker.args) != 1 or not isinstance(marker.args[0], Source):
        return None
    source: Source = marker.args[0]
    return source


def checks_of(properties: Iterable[tuple[str, object]]) -> list[dict[str, Any]]:
    """The checks recorded in a test report's user_properties."""
    return [json.loads(str(text)) for name, text in properties if name == CHECK_PROPERTY]
