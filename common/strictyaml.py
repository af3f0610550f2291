"""Strictly decoded YAML files: unknown keys are errors, and every error
names the file, the line, the key and a fix.

The environment file, the stack's configuration and the suites' target file
are all read this way: `read` gives the mapping with each key's line, a
model derived from `Strict` validates it, and `problems` turns pydantic's
errors into sentences a user can act on.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

KeyPath = tuple[Any, ...]
M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """A frozen model whose YAML keys are camelCase and must all be known."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class FileProblems(Exception):
    """A file that cannot be used; `problems` say where, why and how to fix it."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source = source
        self.problems = problems


@dataclass(frozen=True)
class Document:
    """A YAML mapping and the line of each of its keys."""

    source: str
    data: dict[str, Any]
    lines: dict[KeyPath, int]

    def line_of(self, location: KeyPath) -> int | None:
        """The line of `location`, or of its closest enclosing key."""
        for end in range(len(location), -1, -1):
            if location[:end] in self.lines:
                return self.lines[location[:end]]
        return None

    def where(self, location: KeyPath) -> str:
        line = self.line_of(location)
        return f"{self.source}:{line}" if line else self.source


def read(text: str, source: str, empty_ok: bool = True) -> Document:
    """Parse `text` as a YAML mapping; FileProblems when it is not one."""
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise FileProblems(source, [f"not valid YAML: {error}"]) from error
    if data is None and empty_ok:
        data = {}
    if not isinstance(data, dict):
        raise FileProblems(source, ["the top level must be a mapping (key: value lines)"])
    return Document(source, data, _line_numbers(node))


def validate(
    model: type[M],
    document: Document,
    fixes: Mapping[str, str] | None = None,
    guide: str = "the documentation",
) -> M:
    """The document as `model`, or FileProblems naming every problem at once."""
    try:
        return model.model_validate(document.data)
    except ValidationError as error:
        raise FileProblems(
            document.source,
            [describe(problem, model, document, fixes or {}, guide) for problem in error.errors()],
        ) from error


def describe(
    problem: Any,
    model: type[BaseModel],
    document: Document,
    fixes: Mapping[str, str],
    guide: str,
) -> str:
    """One pydantic error as `file:line: key: what (fix: how)`."""
    location = tuple(problem["loc"])
    key = dotted(location) or "(top level)"
    where = document.where(location)
    kind = problem["type"]
    if kind == "extra_forbidden":
        return f"{where}: unknown key '{key}' (fix: {_suggest_key(model, location)})"
    if kind == "missing":
        return f"{where}: '{key}' is required (fix: add it; see {guide})"
    message = str(problem["msg"]).removeprefix("Value error, ")
    # The fix of the innermost named key (an item of a list: the list's key).
    named = [str(part) for part in location if isinstance(part, str)]
    fix = fixes.get(named[-1] if named else "", f"see {guide}")
    return f"{where}: {key}: {message}, got {problem.get('input')!r} (fix: {fix})"


def dotted(location: KeyPath) -> str:
    """('users', 1, 'uid') -> 'users[1].uid'."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _line_numbers(node: yaml.Node | None, path: KeyPath = ()) -> dict[KeyPath, int]:
    found: dict[KeyPath, int] = {}
    if node is None:
        return found
    found[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            found.update(_line_numbers(value, (*path, key.value)))
            found[(*path, key.value)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found.update(_line_numbers(item, (*path, index)))
    return found


def _suggest_key(model: type[BaseModel], location: KeyPath) -> str:
    for part in location[:-1]:
        if isinstance(part, int):
            continue
        nested = _nested_model(model, str(part))
        if nested is None:
            break
        model = nested
    known = sorted(field.alias or name for name, field in model.model_fields.items())
    close = difflib.get_close_matches(str(location[-1]), known, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"{hint}remove it or use one of: {', '.join(known)}"


def _nested_model(model: type[BaseModel], alias: str) -> type[BaseModel] | None:
    """The model a key of `model` holds (directly, optionally, or as a list of)."""
    for name, field in model.model_fields.items():
        if (field.alias or name) != alias:
            continue
        pending = [field.annotation]
        while pending:
            annotation = pending.pop()
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                return annotation
            pending.extend(getattr(annotation, "__args__", ()))
    return None
