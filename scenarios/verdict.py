"""Where each expectation of the suites comes from, and what a miss means.

MUST: the API description (a path, a response, a header) or the tutorial (a
step) says so; a miss fails the test. SHOULD: the description is silent, but
clients or the reference implementation behave so; a miss is recorded as a
warning with its source and fails the run only under `--strict`.

A test declares the source of its plain asserts with the `source` marker
(every scenario must: a unit test checks it); single checks with another
source, or of level SHOULD, go through `must(...)` and `should(...)`.

    @pytest.mark.source(spec("GET /utilities/ls", "400 with X-Invalid-Path"))
    def test_ls(client): ...
        should(answer.status_code == 400, "an empty account is refused at once",
               reference("compute.py submit_job: 'account' is empty"))
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Literal

import pytest

Level = Literal["MUST", "SHOULD"]
Kind = Literal["spec", "tutorial", "client", "reference"]
LEVELS: dict[Kind, Level] = {
    "spec": "MUST",
    "tutorial": "MUST",
    "client": "SHOULD",
    "reference": "SHOULD",
}
# user_properties names the report reads.
CHECK_PROPERTY = "check"
STRICT_OPTION = "--strict-should"


@dataclass(frozen=True)
class Source:
    kind: Kind
    where: str  # "GET /utilities/ls", "tutorial: Submit a job", "pyfirecrest 3.x", ...
    says: str  # what that source states or does

    @property
    def level(self) -> Level:
        return LEVELS[self.kind]

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
    """The reference implementation (upstream FirecREST): where, and what it does."""
    return Source("reference", where, does)


@dataclass(frozen=True)
class Check:
    """One expectation checked by a test: recorded for the report either way."""

    source: Source
    message: str
    passed: bool

    def as_property(self) -> tuple[str, str]:
        return CHECK_PROPERTY, json.dumps(
            {"passed": self.passed, "message": self.message, **asdict(self.source)}
        )


def must(condition: object, message: str, source: Source) -> None:
    """A MUST expectation with a source other than the test's own: fails on a miss."""
    _record(Check(source, message, bool(condition)))
    assert condition, f"{message} [{source}]"


def should(condition: object, message: str, source: Source) -> None:
    """A SHOULD expectation: a miss is a warning in the report (a failure under --strict)."""
    if source.level != "SHOULD":
        raise ValueError(f"should() takes a client or reference source, not {source}")
    check = Check(source, message, bool(condition))
    _record(check)
    if not check.passed and _strict():
        pytest.fail(f"SHOULD missed under {STRICT_OPTION}: {message} [{source}]")


_current: pytest.Item | None = None


def bind(item: pytest.Item | None) -> None:
    """The test the next checks belong to (set by the plugin around each test)."""
    global _current
    _current = item


def _record(check: Check) -> None:
    if _current is not None:
        _current.user_properties.append(check.as_property())


def _strict() -> bool:
    return bool(_current is not None and _current.config.getoption(STRICT_OPTION, False))


def declared_source(item: pytest.Item) -> Source | None:
    marker = item.get_closest_marker("source")
    if marker is None or not marker.args or not isinstance(marker.args[0], Source):
        return None
    source: Source = marker.args[0]
    return source
