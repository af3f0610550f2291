"""One status line per stage, ending in ✓ or ✗ with the time it took."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class Progress:
    """Prints stage lines and keeps each stage's duration for the summary."""

    stream: TextIO = field(default_factory=lambda: sys.stderr)
    quiet: bool = False
    durations: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, title: str) -> Iterator[None]:
        self._print(f"• {title} ...")
        started = time.monotonic()
        try:
            yield
        except BaseException:
            self._print(f"✗ {title} ({time.monotonic() - started:.1f}s)")
            raise
        elapsed = time.monotonic() - started
        self.durations[title] = elapsed
        self._print(f"✓ {title} ({elapsed:.1f}s)")

    def detail(self, text: str) -> None:
        self._print(f"    {text}")

    def _print(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.stream, flush=True)
