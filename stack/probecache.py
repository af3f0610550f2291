"""Probe results shared by concurrent requests for a short time.

`/status/systems` reads each system's SSH banner. Twenty clients asking at
once should cost one probe, not twenty, while a system that goes down still
shows within a few seconds: each result is kept `ttl` seconds, and while a
probe runs, the other callers wait for its result instead of probing too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Generic, TypeVar

V = TypeVar("V")


class ProbeCache(Generic[V]):
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._results: dict[Hashable, tuple[float, V]] = {}
        self._running: dict[Hashable, Future[V]] = {}

    def get(self, key: Hashable, probe: Callable[[], V]) -> V:
        """The result of `probe` for `key`: a fresh one, or one under `ttl` seconds old."""
        with self._lock:
            cached = self._results.get(key)
            if cached is not None and self._clock() - cached[0] < self.ttl:
                return cached[1]
            running = self._running.get(key)
            if running is None:
                mine: Future[V] = Future()
                self._running[key] = mine
        if running is not None:
            return running.result()
        return self._probe(key, probe, mine)

    def _probe(self, key: Hashable, probe: Callable[[], V], future: Future[V]) -> V:
        try:
            value = probe()
        except BaseException as error:
            with self._lock:
                del self._running[key]
            future.set_exception(error)
            raise
        with self._lock:
            if self.ttl > 0:
                self._results[key] = (self._clock(), value)
            del self._running[key]
        future.set_result(value)
        return value
