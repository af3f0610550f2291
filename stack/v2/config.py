"""The v2 stack's configuration file, parsed once into typed objects.

It shares the v1 file's sections for systems, tokens and the S3 staging
area (`stack.config`), and has its own for SSH: v2 logs in as the user with
credentials from an SSH CA service or per-user static keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from firecrest_testbuild.common import strictyaml
from firecrest_testbuild.common.strictyaml import FileProblems, Strict
from firecrest_testbuild.stack.config import Auth, ConfigFileError, Storage, System

GUIDE = "stack/README.md (FirecREST v2)"
SshCredentials = Literal["sshca", "sshservice", "static-key"]


class Ssh(Strict):
    """How the stack logs in to the systems as the user (FirecREST v2's `ssh_credentials`)."""

    credentials: SshCredentials
    # sshca / sshservice: the service's base URL; POST <url>/sign (the DeiC SSH
    # CA protocol) or <url>/api/v1/ssh-keys (a key service), with the user's token.
    sshca_url: Annotated[str, Field(pattern=r"^https?://[^\s]+$")] | None = None
    # static-key: a folder holding one OpenSSH private key per user, named as the user.
    static_keys_folder: Path | None = None
    connect_timeout: Annotated[float, Field(gt=0, le=120)] = 10
    command_timeout: Annotated[int, Field(ge=1, le=600)] = 5  # `timeout N` of file commands
    # A user's connection is closed after this many seconds without a command.
    idle_timeout: Annotated[float, Field(gt=0, le=3600)] = 60
    max_connections: Annotated[int, Field(ge=1, le=1000)] = 100  # users connected at once

    @model_validator(mode="after")
    def _source_of_credentials(self) -> Ssh:
        if self.credentials in ("sshca", "sshservice") and self.sshca_url is None:
            raise ValueError(
                f"credentials '{self.credentials}' needs sshcaUrl (the SSH CA service's URL)"
            )
        if self.credentials == "static-key" and self.static_keys_folder is None:
            raise ValueError(
                "credentials 'static-key' needs staticKeysFolder (one private key per user)"
            )
        return self


class Transfer(Strict):
    """Large transfers: multipart presigned S3 URLs and jobs on the transfer partition."""

    max_ops_file_size: Annotated[int, Field(ge=1, le=1024**3)] = 5 * 1024 * 1024
    max_part_size: Annotated[int, Field(ge=5 * 1024 * 1024, le=5 * 1024**3)] = 1024**3
    partition: str = "xfer"
    time_limit: Annotated[str, Field(pattern=r"^(\d+-)?\d{1,2}(:\d{2}){0,2}$")] = "2:00:00"
    jobs_folder: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.][A-Za-z0-9_./-]{0,99}$")] = (
        "firecrest-transfers"
    )


class Scheduler(Strict):
    """How a system's scheduler is reached (FirecREST v2's `connection_mode`):
    ssh: Slurm's commands over SSH; rest: slurmrestd with the user's token
    (script paths, metadata and attach are refused); hybrid: slurmrestd, and
    SSH for what it cannot do."""

    connection_mode: Literal["ssh", "rest", "hybrid"] = "ssh"
    api_url: Annotated[str, Field(pattern=r"^https?://[^\s/]+$")] | None = None
    api_version: Annotated[str, Field(pattern=r"^0\.0\.\d{2}$")] = "0.0.41"

    @model_validator(mode="after")
    def _rest_needs_its_url(self) -> Scheduler:
        if self.connection_mode != "ssh" and self.api_url is None:
            raise ValueError(
                f"connectionMode '{self.connection_mode}' needs apiUrl (slurmrestd's URL)"
            )
        return self


class V2Config(Strict):
    """Everything the v2 stack needs to answer requests."""

    systems: Annotated[tuple[System, ...], Field(min_length=1)]
    auth: Auth
    ssh: Ssh
    scheduler_timeout: Annotated[int, Field(ge=1, le=600)] = 30  # seconds per Slurm command
    # System name -> its scheduler's connection; a system not named uses SSH.
    schedulers: dict[str, Scheduler] = Field(default_factory=dict)
    transfer: Transfer = Transfer()
    storage: Storage | None = None  # without it, transfer/upload|download answer 503

    def system(self, name: str) -> System | None:
        """The system named `name`; like upstream, names are matched case-insensitively."""
        wanted = name.lower()
        return next((system for system in self.systems if system.name.lower() == wanted), None)

    def scheduler(self, system: System) -> Scheduler:
        return self.schedulers.get(system.name, Scheduler())


def load(path: Path) -> V2Config:
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigFileError(str(path), [f"cannot read it: {error.strerror}"]) from error
    try:
        return strictyaml.validate(V2Config, strictyaml.read(text, str(path)), guide=GUIDE)
    except FileProblems as problems:
        raise ConfigFileError(problems.source, problems.problems) from problems
