"""Every operation of each FirecREST API generation, by area: the rows of
the conformance matrix (v1: API 1.16, 51 operations; v2: API 2.5.6, 35).
Operations out of the suites' scope would carry the reason."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

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


# FirecREST v2 (API 2.5.6, firecrest-api-v2.5.6.yaml): systems are a path segment.
API_VERSION_V2 = "2.5.6"
_FS = "/filesystem/{system_name}"
_JOB = "/compute/{system_name}/jobs/{job_id}"
OPERATIONS_V2: tuple[tuple[str, str, str], ...] = (
    ("GET", "/status/liveness/", "status"),
    ("GET", "/status/systems", "status"),
    ("GET", "/status/{system_name}/nodes", "status"),
    ("GET", "/status/{system_name}/partitions", "status"),
    ("GET", "/status/{system_name}/reservations", "status"),
    ("GET", "/status/{system_name}/userinfo", "status"),
    *(
        ("GET", f"{_FS}/ops/{name}", "filesystem")
        for name in ("ls", "head", "tail", "view", "checksum", "file", "stat", "download")
    ),
    ("PUT", f"{_FS}/ops/chmod", "filesystem"),
    ("PUT", f"{_FS}/ops/chown", "filesystem"),
    *(
        ("POST", f"{_FS}/ops/{name}", "filesystem")
        for name in ("mkdir", "symlink", "upload", "compress", "extract")
    ),
    ("DELETE", f"{_FS}/ops/rm", "filesystem"),
    *(
        ("POST", f"{_FS}/transfer/{name}", "transfer")
        for name in ("upload", "download", "cp", "mv", "compress", "extract")
    ),
    ("DELETE", f"{_FS}/transfer/rm", "transfer"),
    ("GET", "/compute/{system_name}/jobs", "compute"),
    ("POST", "/compute/{system_name}/jobs", "compute"),
    ("GET", _JOB, "compute"),
    ("DELETE", _JOB, "compute"),
    ("GET", f"{_JOB}/metadata", "compute"),
    ("PUT", f"{_JOB}/attach", "compute"),
)
AREAS_V2 = ("status", "filesystem", "transfer", "compute")


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile(
        "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template.rstrip("/"))) + "/?$"
    )


@dataclass(frozen=True)
class Catalog:
    """One API generation's operations: the matrix's rows and how a request
    maps to the operation it exercised."""

    generation: int
    api_version: str
    operations: tuple[tuple[str, str, str], ...]
    areas: tuple[str, ...]
    out_of_scope: dict[tuple[str, str], str]
    # The look at a long-running piece of work (v1: a task; v2: a job, which
    # is how a transfer is followed): it serves the operation that made it.
    follow_up: tuple[str, str]
    _patterns: list[tuple[str, str, re.Pattern[str]]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        patterns = [(method, path, _pattern(path)) for method, path, _ in self.operations]
        object.__setattr__(self, "_patterns", patterns)

    def operation_of(self, method: str, path: str) -> tuple[str, str] | None:
        """The (method, template) a concrete request exercised; the most specific wins."""
        found = [
            (method, template)
            for op_method, template, pattern in self._patterns
            if op_method == method.upper() and pattern.match(path)
        ]
        # "/tasks/{taskid}" and "/compute/jobs/upload" both match their own paths:
        # prefer the template with the fewest parameters.
        return min(found, key=lambda op: op[1].count("{"), default=None)

    @property
    def suite(self) -> str:
        return f"firecrest-v{self.generation}-conformance"


V1 = Catalog(1, API_VERSION, OPERATIONS, AREAS, OUT_OF_SCOPE, ("GET", "/tasks/{taskid}"))
V2 = Catalog(2, API_VERSION_V2, OPERATIONS_V2, AREAS_V2, {}, ("GET", _JOB))
CATALOGS = {1: V1, 2: V2}


def operation_of(method: str, path: str) -> tuple[str, str] | None:
    """The v1 operation a request exercised (see Catalog.operation_of)."""
    return V1.operation_of(method, path)
