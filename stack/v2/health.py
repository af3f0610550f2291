"""Each system's health as v2 reports it in /status/systems: SSH, the
scheduler, every filesystem and S3, each with whether it is healthy, when
it was checked, how long the check took and what went wrong.

Upstream probes on a schedule with a service account; the testbuild's
users are its only logins, so the caller's request probes, and the result
answers every caller for `interval` seconds (`stack.probecache`).
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable
from typing import Any

from firecrest_testbuild.stack.commands import quote
from firecrest_testbuild.stack.errors import ApiError
from firecrest_testbuild.stack.probecache import ProbeCache
from firecrest_testbuild.stack.v2.api import Call

Check = Callable[[], str | None]  # None: healthy; else what is wrong


class Health:
    def __init__(self, interval: float, s3_healthy: Callable[[], bool] | None) -> None:
        self.interval = interval
        self.s3_healthy = s3_healthy
        self._cache: ProbeCache[dict[str, Any]] = ProbeCache(interval)
        self._lock = threading.Lock()
        self._last: dict[str, str] = {}

    def of(self, call: Call) -> dict[str, Any]:
        """The system's health, probed now as the caller or up to `interval` seconds ago."""
        return self._cache.get(call.system.name, lambda: self._probe(call))

    def last_runs(self) -> dict[str, str]:
        """System name -> when it was last probed (ISO 8601)."""
        with self._lock:
            return dict(self._last)

    def _probe(self, call: Call) -> dict[str, Any]:
        version: list[str] = []
        services = [
            _entry("ssh", lambda: _succeeds(call, "true")),
            _entry("scheduler", lambda: _scheduler(call, version)),
            *(_filesystem(call, fs.path) for fs in call.system.filesystems),
        ]
        if self.s3_healthy is not None:
            s3 = self.s3_healthy
            services.append(_entry("s3", lambda: None if s3() else "S3 does not answer"))
        checked = _now()
        with self._lock:
            self._last[call.system.name] = checked
        return {
            "services": services,
            "lastChecked": checked,
            "schedulerVersion": version[0] if version else "",
            "interval": self.interval,
        }


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


def _entry(kind: str, check: Check, path: str | None = None) -> dict[str, Any]:
    started = time.monotonic()
    try:
        problem = check()
    except ApiError as error:
        problem = error.error
    entry: dict[str, Any] = {
        "serviceType": kind,
        "healthy": problem is None,
        "lastChecked": _now(),
        "latency": round(time.monotonic() - started, 3),
        "message": problem,
    }
    if path is not None:
        entry["path"] = path
    return entry


def _filesystem(call: Call, path: str) -> dict[str, Any]:
    return _entry("filesystem", lambda: _succeeds(call, f"stat -- {quote(path)}"), path)


def _succeeds(call: Call, command: str) -> str | None:
    output = call.run(f"timeout 5 {command}", timeout=15)
    return None if output.exit_status == 0 else output.stderr.strip() or "failed"


def _scheduler(call: Call, version: list[str]) -> str | None:
    output = call.run("timeout 5 scontrol ping && timeout 5 sinfo --version", timeout=15)
    if output.exit_status != 0 or "is UP" not in output.text:
        return output.stderr.strip() or output.text.strip() or "the controller does not answer"
    # "slurm 22.05.8", or "slurm-wlm 22.05.8" from Debian's packages: the number.
    version.append(output.text.split()[-1])
    return None
