"""Status probes shared for a short time: many callers, one probe."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from firecrest_testbuild.stack.probecache import ProbeCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_result_serves_until_it_is_ttl_old_then_the_system_is_probed_again():
    clock, answers = Clock(), iter(["available", "unavailable"])
    cache: ProbeCache[str] = ProbeCache(2.0, clock)
    assert cache.get("cluster", lambda: next(answers)) == "available"
    clock.now += 1.9
    assert cache.get("cluster", lambda: "never asked") == "available"
    clock.now += 0.2
    assert cache.get("cluster", lambda: next(answers)) == "unavailable"


def test_concurrent_callers_wait_for_the_one_probe_in_flight():
    cache: ProbeCache[str] = ProbeCache(2.0)
    started, release, probes = threading.Event(), threading.Event(), []

    def slow_probe() -> str:
        probes.append(1)
        started.set()
        release.wait(5)
        return "available"

    with ThreadPoolExecutor(max_workers=20) as pool:
        first = pool.submit(cache.get, "cluster", slow_probe)
        assert started.wait(5)
        others = [pool.submit(cache.get, "cluster", slow_probe) for _ in range(19)]
        release.set()
        results = [first.result(5), *(other.result(5) for other in others)]
    assert results == ["available"] * 20 and len(probes) == 1


def test_systems_are_probed_apart_and_a_failed_probe_is_not_kept():
    cache: ProbeCache[str] = ProbeCache(2.0)
    assert cache.get("a", lambda: "A") == "A" and cache.get("b", lambda: "B") == "B"

    def broken() -> str:
        raise OSError("refused")

    with pytest.raises(OSError):
        cache.get("c", broken)
    assert cache.get("c", lambda: "C") == "C"


def test_a_ttl_of_zero_probes_every_time():
    cache: ProbeCache[int] = ProbeCache(0)
    counter = iter(range(10))
    assert [cache.get("x", lambda: next(counter)) for _ in range(3)] == [0, 1, 2]
