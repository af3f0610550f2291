"""Errors the CLI turns into a one-screen explanation instead of a traceback."""

from __future__ import annotations


class TestbuildError(Exception):
    """A failure a user can act on: what failed, where, and how to fix it."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self,
        component: str,
        message: str,
        fix: str | None = None,
        details: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.component = component
        self.message = message
        self.fix = fix
        self.details = details or []

    def explain(self) -> str:
        lines = [f"✗ {self.component}: {self.message}"]
        lines += [f"  {line}" for line in self.details]
        if self.fix:
            lines.append(f"  fix: {self.fix}")
        return "\n".join(lines)


class ConfigError(TestbuildError):
    """The environment file is invalid; `problems` name the key and the fix."""

    def __init__(self, path: str, problems: list[str]) -> None:
        super().__init__(
            "config",
            f"{path} is not a valid testbuild environment",
            details=problems,
        )
        self.path = path
        self.problems = problems
