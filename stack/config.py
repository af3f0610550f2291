"""The stack's configuration file, parsed once into typed objects.

The harness writes it for the testbuild; a site can write its own. Unknown
keys are errors, and every error names the file, the key and a fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

SERVICES = ("certificator", "compute", "status", "storage", "tasks", "utilities")
ServiceName = Literal["certificator", "compute", "status", "storage", "tasks", "utilities"]


class ConfigFileError(Exception):
    """The configuration file cannot be used; `problems` say why and how to fix it."""

    def __init__(self, path: str, problems: list[str]) -> None:
        super().__init__(f"{path}: " + "; ".join(problems))
        self.path = path
        self.problems = problems


class _Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class Filesystem(_Strict):
    name: str  # HOME, SCRATCH, ...
    path: Annotated[str, Field(pattern=r"^/[^\s]*$")]
    description: str = ""


class System(_Strict):
    """A machine users reach over SSH (the login node of a cluster)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]
    host: str
    port: Annotated[int, Field(ge=1, le=65535)] = 22
    host_key: Annotated[str, Field(pattern=r"^(ssh|ecdsa)-[^ ]+ [A-Za-z0-9+/=]+")]
    description: str = "System ready"
    filesystems: tuple[Filesystem, ...] = ()


class Auth(_Strict):
    jwks_url: str
    issuer: str
    audience: str | None = None  # checked when set
    required_scopes: tuple[str, ...] = ()  # each must be in the token's `scope`
    username_claim: str = "preferred_username"


class Ssh(_Strict):
    ca_private_key: Path
    certificate_lifetime: Annotated[int, Field(ge=10, le=3600)] = 60
    connect_timeout: Annotated[float, Field(gt=0, le=120)] = 10


class Limits(_Strict):
    utilities_max_file_size_mb: Annotated[int, Field(ge=1, le=1024)] = 5
    utilities_timeout: Annotated[int, Field(ge=1, le=600)] = 5  # seconds per command
    compute_timeout: Annotated[int, Field(ge=1, le=600)] = 30


class Tasks(_Strict):
    redis_url: str
    expiry_seconds: Annotated[int, Field(ge=60)] = 7 * 24 * 3600
    workers: Annotated[int, Field(ge=1, le=256)] = 16


class Compute(_Strict):
    jobs_folder: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.][A-Za-z0-9_./-]{0,99}$")] = (
        "firecrest"
    )


class Storage(_Strict):
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


class StackConfig(_Strict):
    """Everything the service stack needs to answer requests."""

    public_url: str = "http://127.0.0.1:8000"  # where task_url points
    services: tuple[ServiceName, ...] = SERVICES  # served by this process
    # Services running in other processes: requests for their paths are
    # forwarded there (the gateway), and /status/services probes them.
    peers: dict[ServiceName, Annotated[str, Field(pattern=r"^https?://[^\s/]+$")]] = {}
    systems: Annotated[tuple[System, ...], Field(min_length=1)]
    auth: Auth
    ssh: Ssh
    tasks: Tasks
    limits: Limits = Limits()
    compute: Compute = Compute()
    storage: Storage | None = None  # required when the storage service is served

    def system(self, name: str) -> System | None:
        return next((system for system in self.systems if system.name == name), None)


def load(path: Path) -> StackConfig:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise ConfigFileError(str(path), [f"cannot read it: {error.strerror}"]) from error
    except yaml.YAMLError as error:
        raise ConfigFileError(str(path), [f"not valid YAML: {error}"]) from error
    return parse(data, str(path))


def parse(data: object, source: str) -> StackConfig:
    if not isinstance(data, dict):
        raise ConfigFileError(source, ["the top level must be a mapping (key: value lines)"])
    try:
        return StackConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigFileError(source, [_describe(problem) for problem in error.errors()]) from error


def _describe(problem: dict) -> str:
    key = ".".join(str(part) for part in problem["loc"]) or "(top level)"
    if problem["type"] == "extra_forbidden":
        return f"unknown key '{key}' (fix: remove it; see stack/README.md for the keys)"
    if problem["type"] == "missing":
        return f"'{key}' is required (fix: add it; see stack/README.md)"
    return f"{key}: {problem['msg']}, got {problem.get('input')!r} (fix: see stack/README.md)"
