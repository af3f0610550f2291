"""The stack's configuration file, parsed once into typed objects.

The harness writes it for the testbuild; a site can write its own. Unknown
keys are errors, and every error names the file, the key and a fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import Field

from firecrest_testbuild.common import strictyaml
from firecrest_testbuild.common.strictyaml import FileProblems, Strict

ServiceName = Literal[
    "certificator", "compute", "reservations", "status", "storage", "tasks", "utilities"
]
SERVICES: tuple[ServiceName, ...] = get_args(ServiceName)
GUIDE = "stack/README.md"


class ConfigFileError(FileProblems):
    """The configuration file cannot be used; `problems` say why and how to fix it."""

    @property
    def path(self) -> str:
        return self.source


class Filesystem(Strict):
    name: str  # HOME, SCRATCH, ...
    path: Annotated[str, Field(pattern=r"^/[^\s]*$")]
    description: str = ""


class System(Strict):
    """A machine users reach over SSH (the login node of a cluster)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]
    host: str
    port: Annotated[int, Field(ge=1, le=65535)] = 22
    host_key: Annotated[str, Field(pattern=r"^(ssh|ecdsa)-[^ ]+ [A-Za-z0-9+/=]+")]
    description: str = "System ready"
    filesystems: tuple[Filesystem, ...] = ()


class Auth(Strict):
    jwks_url: str
    issuer: str
    audience: str | None = None  # checked when set
    required_scopes: tuple[str, ...] = ()  # each must be in the token's `scope`
    username_claim: str = "preferred_username"


class Ssh(Strict):
    ca_private_key: Path
    certificate_lifetime: Annotated[int, Field(ge=10, le=3600)] = 60
    connect_timeout: Annotated[float, Field(gt=0, le=120)] = 10


class Limits(Strict):
    utilities_max_file_size_mb: Annotated[int, Field(ge=1, le=1024)] = 5
    utilities_timeout: Annotated[int, Field(ge=1, le=600)] = 5  # seconds per command
    compute_timeout: Annotated[int, Field(ge=1, le=600)] = 30


class Status(Strict):
    # How long a system's probe (its SSH banner) answers status requests:
    # concurrent clients cost one probe; a stopped system shows within it. 0: every request probes.
    probe_cache_seconds: Annotated[float, Field(ge=0, le=300)] = 2.0


class Tasks(Strict):
    redis_url: str
    expiry_seconds: Annotated[int, Field(ge=60)] = 7 * 24 * 3600
    workers: Annotated[int, Field(ge=1, le=256)] = 16


class Compute(Strict):
    jobs_folder: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.][A-Za-z0-9_./-]{0,99}$")] = (
        "firecrest"
    )


class Storage(Strict):
    """The S3 staging area of large transfers (MinIO in the testbuild)."""

    # Public address: it is in every presigned URL, so clients and the
    # systems' nodes must reach the object store there.
    s3_url: Annotated[str, Field(pattern=r"^https?://[^\s/]+$")]
    # Where the stack itself reaches the store (default: s3Url).
    s3_internal_url: Annotated[str, Field(pattern=r"^https?://[^\s/]+$")] | None = None
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    url_expiry_seconds: Annotated[int, Field(ge=60, le=7 * 24 * 3600)] = 7 * 24 * 3600
    object_expiry_days: Annotated[int, Field(ge=1, le=3650)] = 7
    transfer_timeout: Annotated[int, Field(ge=10, le=24 * 3600)] = 3600  # one move on a system
    poll_interval: Annotated[float, Field(gt=0, le=60)] = 1.0  # checks for arrived uploads
    xfer_partition: str = "xfer"
    xfer_time_limit: Annotated[str, Field(pattern=r"^(\d+-)?\d{1,2}(:\d{2}){0,2}$")] = "2:00:00"


class StackConfig(Strict):
    """Everything the service stack needs to answer requests."""

    public_url: str = "http://127.0.0.1:8000"  # where task_url points
    services: tuple[ServiceName, ...] = SERVICES  # served by this process
    # Services running in other processes: requests for their paths are
    # forwarded there (the gateway), and /status/services probes them.
    peers: dict[ServiceName, Annotated[str, Field(pattern=r"^https?://[^\s/]+$")]] = Field(
        default_factory=dict
    )
    systems: Annotated[tuple[System, ...], Field(min_length=1)]
    auth: Auth
    ssh: Ssh
    tasks: Tasks
    limits: Limits = Limits()
    status: Status = Status()
    compute: Compute = Compute()
    storage: Storage | None = None  # required when the storage service is served

    def system(self, name: str) -> System | None:
        return next((system for system in self.systems if system.name == name), None)


def load(path: Path) -> StackConfig:
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigFileError(str(path), [f"cannot read it: {error.strerror}"]) from error
    try:
        return strictyaml.validate(StackConfig, strictyaml.read(text, str(path)), guide=GUIDE)
    except FileProblems as problems:
        raise ConfigFileError(problems.source, problems.problems) from problems


def parse(data: object, source: str) -> StackConfig:
    """Validate an already decoded configuration (a mapping)."""
    if not isinstance(data, dict):
        raise ConfigFileError(source, ["the top level must be a mapping (key: value lines)"])
    document = strictyaml.Document(source, data, {})
    try:
        return strictyaml.validate(StackConfig, document, guide=GUIDE)
    except FileProblems as problems:
        raise ConfigFileError(source, problems.problems) from problems
