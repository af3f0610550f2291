"""Every operation of the FirecREST v1 API (1.16), by area: the rows of the
conformance matrix. Operations out of the suites' scope would carry the reason."""

from __future__ import annotations

import re

API_VERSION = "1.16.1"

# (method, path template, area)
OPERATIONS: tuple[tuple[str, str, str], ...] = (
    ("GET", "/status/services", "status"),
    ("GET", "/status/services/{servicename}", "status"),
    ("GET", "/status/systems", "status"),
    ("GET", "/status/systems/{machinename}", "status"),
    ("GET", "/status/filesystems", "status"),
    ("GET", "/status/filesystems/{machinename}", "status"),
    ("GET", "/status/parameters", "status"),
    ("GET", "/utilities/ls", "utilities"),
    ("POST", "/utilities/mkdir", "utilities"),
    ("PUT", "/utilities/rename", "utilities"),
    ("PUT", "/utilities/chmod", "utilities"),
    ("PUT", "/utilities/chown", "utilities"),
    ("POST", "/utilities/copy", "utilities"),
    ("GET", "/utilities/file", "utilities"),
    ("GET", "/utilities/head", "utilities"),
    ("GET", "/utilities/stat", "utilities"),
    ("POST", "/utilities/symlink", "utilities"),
    ("GET", "/utilities/tail", "utilities"),
    ("GET", "/utilities/download", "utilities"),
    ("POST", "/utilities/upload", "utilities"),
    ("DELETE", "/utilities/rm", "utilities"),
    ("GET", "/utilities/checksum", "utilities"),
    ("GET", "/utilities/view", "utilities"),
    ("GET", "/utilities/whoami", "utilities"),
    ("POST", "/utilities/compress", "utilities"),
    ("POST", "/utilities/extract", "utilities"),
    ("POST", "/compute/jobs/upload", "compute"),
    ("POST", "/compute/jobs/path", "compute"),
    ("GET", "/compute/jobs", "compute"),
    ("GET", "/compute/jobs/{jobid}", "compute"),
    ("DELETE", "/compute/jobs/{jobid}", "compute"),
    ("GET", "/compute/acct", "compute"),
    ("GET", "/compute/nodes", "compute"),
    ("GET", "/compute/nodes/{nodeName}", "compute"),
    ("GET", "/compute/partitions", "compute"),
    ("GET", "/compute/reservations", "compute"),
    ("POST", "/storage/xfer-internal/rsync", "storage"),
    ("POST", "/storage/xfer-internal/mv", "storage"),
    ("POST", "/storage/xfer-internal/cp", "storage"),
    ("POST", "/storage/xfer-internal/rm", "storage"),
    ("POST", "/storage/xfer-internal/compress", "storage"),
    ("POST", "/storage/xfer-internal/extract", "storage"),
    ("POST", "/storage/xfer-external/upload", "storage"),
    ("POST", "/storage/xfer-external/download", "storage"),
    ("POST", "/storage/xfer-external/invalidate", "storage"),
    ("GET", "/tasks", "tasks"),
    ("GET", "/tasks/{taskid}", "tasks"),
    ("GET", "/reservations", "reservations"),
    ("POST", "/reservations", "reservations"),
    ("PUT", "/reservations/{reservation}", "reservations"),
    ("DELETE", "/reservations/{reservation}", "reservations"),
)

# Operations the suites do not judge, with the reason (none at present: the
# reservations service, deprecated in 1.16, is judged where a target offers it).
OUT_OF_SCOPE: dict[tuple[str, str], str] = {}

AREAS = ("status", "utilities", "compute", "storage", "tasks", "reservations", "auth")


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "/?$")


_PATTERNS = [(method, template, _pattern(template)) for method, template, _ in OPERATIONS]


def operation_of(method: str, path: str) -> tuple[str, str] | None:
    """The (method, template) a concrete request exercised; the most specific wins."""
    found = [
        (method, template)
        for op_method, template, pattern in _PATTERNS
        if op_method == method.upper() and pattern.match(path)
    ]
    # "/tasks/{taskid}" and "/compute/jobs/upload" both match their own paths:
    # prefer the template with the fewest parameters.
    return min(found, key=lambda op: op[1].count("{"), default=None)


def area_of(template: str) -> str:
    return next(area for _, path, area in OPERATIONS if path == template)
