"""The environment file (testbuild.yaml), parsed once into typed objects.

The file is versioned (apiVersion/kind) and decoded strictly: unknown keys
are errors. Every error names the file, the line, the key and a fix.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Final, Literal

import yaml
from pydantic import Field, field_validator

from firecrest_testbuild.common import strictyaml
from firecrest_testbuild.common.strictyaml import Strict
from firecrest_testbuild.harness.errors import ConfigError
from firecrest_testbuild.harness.state import STATE_HOME_VARIABLE, state_home

API_VERSION: Final = "testbuild/v1"
DEFAULT_FILE = "testbuild.yaml"
DEFAULT_NAME = "testbuild"
GUIDE = "testbuild.yaml in the repository"
SERVICE_ACCOUNT_PREFIX = "service-account-"
DEFAULT_CA_FOLDER = Path("/usr/local/share/ca-certificates")

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,29}$")]
UserName = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")]
Port = Annotated[int, Field(ge=0, le=65535)]


class User(Strict):
    """A person (or service account) who exists on every node and in Slurm."""

    name: UserName
    uid: Annotated[int, Field(ge=1000, le=60000)]
    password: Annotated[str, Field(min_length=1, pattern=r"^[^\t\n\r]+$")]
    account: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,29}$")] = "testbuild"


DEFAULT_USERS = (
    User(name="test1", uid=1001, password="test11"),
    User(name="test2", uid=1002, password="test22"),
    User(name="testuser", uid=1003, password="testuser"),
    User(name="service-account-firecrest-sample", uid=1004, password="firecrest-sample"),
)


# The Slurm generations a cluster can run, each with the Debian release whose
# packages it is (README: Slurm versions).
SLURM_RELEASES: Final = {"22.05": "bookworm", "24.11": "trixie"}
SlurmVersion = Literal["22.05", "24.11"]
DEFAULT_SLURM: Final = "22.05"
# slurmrestd with auth/jwt needs the user claim option (userclaimfield, Slurm
# 23.02 and later): Keycloak's tokens name the user in preferred_username,
# which 22.05's auth/jwt does not read (README: Slurm versions).
SLURMRESTD_SLURM: Final = "24.11"
SLURMRESTD_PORT: Final = 6820


class Slurmrestd(Strict):
    """Slurm's REST API on the controller, authenticating Keycloak's tokens."""

    # None: on with Slurm 24.11, off with 22.05 (which cannot have it).
    enabled: bool | None = None
    port: Port = SLURMRESTD_PORT


class Cluster(Strict):
    """The Slurm cluster: one controller/login node and N compute nodes."""

    slurm: SlurmVersion = DEFAULT_SLURM
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9]{0,19}$")] = "cluster"
    compute_nodes: Annotated[int, Field(ge=1, le=16)] = 2
    cpus_per_node: Annotated[int, Field(ge=1, le=256)] | None = None
    ssh_auth: Literal["certificate", "static-key"] = "certificate"
    # What the login node's command wrapper accepts as the SSH command: the
    # certificate text (FirecREST v1), the command line itself (v2, over a
    # static key or a certificate without force-command), or both.
    ssh_commands: Literal["certificate-as-command", "plain", "both"] = "both"
    ssh_port: Port = 2222
    slurmrestd: Slurmrestd = Slurmrestd()

    @field_validator("slurm", mode="before")
    @classmethod
    def _version_as_written(cls, value: object) -> object:
        """`slurm: 24.11` unquoted is a YAML float: read it as the version it spells."""
        return format(value, ".2f") if isinstance(value, float) else value

    @property
    def debian_release(self) -> str:
        return SLURM_RELEASES[self.slurm]

    @property
    def slurmrestd_enabled(self) -> bool:
        """Whether the controller runs slurmrestd (by default: with 24.11)."""
        enabled = self.slurmrestd.enabled
        return self.slurm == SLURMRESTD_SLURM if enabled is None else enabled

    @property
    def compute_node_names(self) -> list[str]:
        return [f"c{index}" for index in range(1, self.compute_nodes + 1)]


class Client(Strict):
    """A confidential Keycloak client with a service account.

    Its service-account user (service-account-<clientId>) must be in `users`
    so that it exists on the cluster too. Without a secret, one is generated
    per environment.
    """

    client_id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,40}$")]
    secret: Annotated[str, Field(min_length=8)] | None = None

    @property
    def service_account(self) -> str:
        return f"{SERVICE_ACCOUNT_PREFIX}{self.client_id}"


class Keycloak(Strict):
    """The identity provider issuing the tokens FirecREST accepts."""

    port: Port = 8080
    realm: Name = "kcrealm"
    access_token_lifespan: Annotated[int, Field(ge=5, le=86400)] = 300
    clients: tuple[Client, ...] = (Client(client_id="firecrest-sample"),)
    # An audience every client puts in its tokens besides itself: FirecREST v2
    # deployments may require one (e.g. Firecrest-v2); None adds none.
    audience: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$")] | None = None


class Minio(Strict):
    """The S3 staging area for large transfers."""

    port: Port = 9000
    console_port: Port = 9001
    object_expiry_days: Annotated[int, Field(ge=1, le=3650)] = 7


class StackV2(Strict):
    """The FirecREST v2 API of the service stack (stack/v2/), on its own port."""

    enabled: bool = True
    port: Port = 8001
    # How it logs in as the user: certificates from the SSH CA service
    # (component sshca) by its /sign protocol (sshca) or its key-service one
    # (sshservice), or the per-user static keys (needs cluster.sshAuth static-key).
    ssh_credentials: Literal["sshca", "sshservice", "static-key"] = "sshca"
    # Files up to this size go through ops/upload and ops/download.
    max_ops_file_size_mb: Annotated[int, Field(ge=1, le=1024)] = 5
    # The scheduler over SSH commands, or slurmrestd with the user's token
    # (rest; hybrid: slurmrestd and SSH for what it cannot do). rest and
    # hybrid need cluster.slurmrestd (Slurm 24.11).
    connection_mode: Literal["ssh", "rest", "hybrid"] = "ssh"


class Stack(Strict):
    """The FirecREST service stack (stack/): v1 on `port`, v2 on `v2.port`, and its task store."""

    v1_enabled: bool = True
    port: Port = 8000  # of v1
    # single: one process serves every service; split: one container per
    # service behind a gateway container on the port.
    layout: Literal["single", "split"] = "single"
    max_file_size_mb: Annotated[int, Field(ge=1, le=1024)] = 5
    utilities_timeout: Annotated[int, Field(ge=1, le=600)] = 5
    task_expiry_seconds: Annotated[int, Field(ge=60)] = 7 * 24 * 3600
    v2: StackV2 = StackV2()


class Sshca(Strict):
    """The SSH CA service: signs users' keys for FirecREST v2 (SSHCA, SSHService)."""

    port: Port = 2280
    # The longest validity of a certificate it signs, in seconds.
    certificate_lifetime: Annotated[int, Field(ge=10, le=86400)] = 300


class Images(Strict):
    """How images are made: base OS source and certificates for builds."""

    ca_certificates: Literal["auto", "none"] | list[Path] = "auto"
    debian_mirror: str = "http://deb.debian.org/debian"

    def ca_certificate_files(self) -> list[Path]:
        if self.ca_certificates == "none":
            return []
        if self.ca_certificates == "auto":
            return sorted(DEFAULT_CA_FOLDER.glob("*.crt")) if DEFAULT_CA_FOLDER.is_dir() else []
        return list(self.ca_certificates)


class EnvironmentConfig(Strict):
    """The whole environment, as the file describes it."""

    api_version: Literal["testbuild/v1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["Environment"] = "Environment"
    name: Name = DEFAULT_NAME
    bind_address: str = "127.0.0.1"
    cluster: Cluster = Cluster()
    keycloak: Keycloak = Keycloak()
    minio: Minio = Minio()
    stack: Stack = Stack()
    sshca: Sshca = Sshca()
    images: Images = Images()
    users: Annotated[tuple[User, ...], Field(min_length=1)] = DEFAULT_USERS

    @field_validator("bind_address")
    @classmethod
    def _is_ip_address(cls, value: str) -> str:
        ipaddress.ip_address(value)
        return value

    @property
    def people(self) -> list[User]:
        """The users who log in with a password (not clients' service accounts)."""
        return [user for user in self.users if not user.name.startswith(SERVICE_ACCOUNT_PREFIX)]

    def user(self, name: str) -> User:
        for user in self.users:
            if user.name == name:
                return user
        known = ", ".join(user.name for user in self.users)
        raise ConfigError("users", [f"no user named {name!r} (known users: {known})"])


def default_path(given: Path | None) -> Path | None:
    """The environment file: given, else $TESTBUILD_CONFIG, else ./testbuild.yaml if any."""
    if given is None and os.environ.get("TESTBUILD_CONFIG"):
        given = Path(os.environ["TESTBUILD_CONFIG"])
    if given is None and Path(DEFAULT_FILE).is_file():
        given = Path(DEFAULT_FILE)
    return given


def load(path: Path | None) -> EnvironmentConfig:
    """Read and validate an environment file; no file means all defaults."""
    if path is None:
        return EnvironmentConfig()
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(str(path), [f"cannot read the file: {error.strerror}"]) from error
    return parse(text, str(path))


def parse(text: str, source: str = "<string>") -> EnvironmentConfig:
    try:
        document = strictyaml.read(text, source)
    except strictyaml.FileProblems as unreadable:
        raise ConfigError(source, unreadable.problems) from unreadable
    removed = _state_dir_removed(document)
    try:
        config = strictyaml.validate(
            EnvironmentConfig, _without(document, STATE_DIR), _FIXES, GUIDE
        )
    except strictyaml.FileProblems as invalid:
        raise ConfigError(source, removed + invalid.problems) from invalid
    problems = (
        removed
        + _duplicate_users(config, document)
        + _clients_without_users(config, document)
        + _slurmrestd_without_24_11(config, document)
        + _static_keys_without_cluster_keys(config, document)
        + _rest_without_slurmrestd(config, document)
    )
    if problems:
        raise ConfigError(source, problems)
    return config


def dump(config: EnvironmentConfig) -> str:
    """The config as an environment file that `parse` reads back into an equal config."""
    return yaml.safe_dump(config.model_dump(mode="json", by_alias=True), sort_keys=False)


# A key of older files: said to be removed (and where state went), not "unknown".
STATE_DIR = "stateDir"


def _state_dir_removed(document: strictyaml.Document) -> list[str]:
    if STATE_DIR not in document.data:
        return []
    name = str(document.data.get("name", DEFAULT_NAME))
    return [
        f"{document.where((STATE_DIR,))}: {STATE_DIR} was removed: state lives in"
        f" {state_home() / name}; set {STATE_HOME_VARIABLE} to move it"
        f" (fix: delete the {STATE_DIR} line)"
    ]


def _without(document: strictyaml.Document, key: str) -> strictyaml.Document:
    data = {name: value for name, value in document.data.items() if name != key}
    return strictyaml.Document(document.source, data, document.lines)


def _clients_without_users(config: EnvironmentConfig, document: strictyaml.Document) -> list[str]:
    names = {user.name for user in config.users}
    problems = []
    for index, client in enumerate(config.keycloak.clients):
        if client.service_account not in names:
            where = document.where(("keycloak", "clients", index))
            problems.append(
                f"{where}: keycloak.clients[{index}]: client '{client.client_id}' needs"
                f" a user named '{client.service_account}' (fix: add it to users, so the"
                " service account exists on the cluster too)"
            )
    return problems


def _slurmrestd_without_24_11(
    config: EnvironmentConfig, document: strictyaml.Document
) -> list[str]:
    cluster = config.cluster
    if not cluster.slurmrestd_enabled or cluster.slurm == SLURMRESTD_SLURM:
        return []
    where = document.where(("cluster", "slurmrestd", "enabled"))
    return [
        f"{where}: cluster.slurmrestd.enabled: slurmrestd needs Slurm {SLURMRESTD_SLURM}, the"
        f" cluster runs {cluster.slurm}, whose auth/jwt cannot take the user from Keycloak's"
        f' preferred_username claim (fix: set cluster.slurm to "{SLURMRESTD_SLURM}", or'
        " cluster.slurmrestd.enabled to false)"
    ]


def _rest_without_slurmrestd(config: EnvironmentConfig, document: strictyaml.Document) -> list[str]:
    v2 = config.stack.v2
    if not v2.enabled or v2.connection_mode == "ssh" or config.cluster.slurmrestd_enabled:
        return []
    where = document.where(("stack", "v2", "connectionMode"))
    return [
        f"{where}: stack.v2.connectionMode: {v2.connection_mode} needs slurmrestd, which the"
        f' cluster does not run (fix: set cluster.slurm to "{SLURMRESTD_SLURM}", or'
        ' stack.v2.connectionMode to "ssh")'
    ]


def _static_keys_without_cluster_keys(
    config: EnvironmentConfig, document: strictyaml.Document
) -> list[str]:
    v2 = config.stack.v2
    if not v2.enabled or v2.ssh_credentials != "static-key":
        return []
    if config.cluster.ssh_auth == "static-key":
        return []
    where = document.where(("stack", "v2", "sshCredentials"))
    return [
        f"{where}: stack.v2.sshCredentials: static-key needs the users' keys on the cluster,"
        f" whose sshAuth is {config.cluster.ssh_auth} (fix: set cluster.sshAuth to"
        ' "static-key", or stack.v2.sshCredentials to "sshca")'
    ]


def _duplicate_users(config: EnvironmentConfig, document: strictyaml.Document) -> list[str]:
    problems = []
    for key in ("name", "uid"):
        first_use: dict[object, int] = {}
        for index, user in enumerate(config.users):
            value = getattr(user, key)
            if value in first_use:
                where = document.where(("users", index, key))
                problems.append(
                    f"{where}: users[{index}].{key}: {value!r} is already used by"
                    f" users[{first_use[value]}] (fix: give every user a unique {key})"
                )
            first_use.setdefault(value, index)
    return problems


_FIXES = {
    "computeNodes": "use a whole number from 1 to 16",
    "sshPort": "use a port from 1 to 65535, or 0 for any free port",
    "enabled": "use true or false",
    "uid": "use a whole number from 1000 to 60000, different for every user",
    "name": "use lower-case letters, digits and '-', starting with a letter",
    "sshAuth": "use 'certificate' or 'static-key'",
    "bindAddress": "use an IP address such as 127.0.0.1",
    "apiVersion": f"use '{API_VERSION}'",
    "kind": "use 'Environment'",
    "caCertificates": "use 'auto', 'none' or a list of certificate files",
    "port": "use a port from 1 to 65535, or 0 for any free port",
    "consolePort": "use a port from 1 to 65535, or 0 for any free port",
    "accessTokenLifespan": "use a number of seconds from 5 to 86400",
    "audience": "use letters, digits and . _ : / -, e.g. Firecrest-v2",
    "maxFileSizeMb": "use a number of megabytes from 1 to 1024",
    "layout": "use 'single' (one process) or 'split' (a container per service and a gateway)",
    "utilitiesTimeout": "use a number of seconds from 1 to 600",
    "sshCredentials": "use 'sshca' or 'sshservice' (the SSH CA service) or 'static-key'",
    "maxOpsFileSizeMb": "use a number of megabytes from 1 to 1024",
    "v1Enabled": "use true or false",
    "connectionMode": "use 'ssh', 'rest' or 'hybrid'",
    "taskExpirySeconds": "use a number of seconds, at least 60",
    "certificateLifetime": "use a number of seconds from 10 to 86400",
}
