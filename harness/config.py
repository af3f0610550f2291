"""The environment file (testbuild.yaml), parsed once into typed objects.

The file is versioned (apiVersion/kind) and decoded strictly: unknown keys
are errors. Every error names the file, the line, the key and a fix.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import yaml
from pydantic import AfterValidator, Field, field_validator

from firecrest_testbuild.common import strictyaml
from firecrest_testbuild.common.strictyaml import Strict
from firecrest_testbuild.harness import templates
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
DEFAULT_SLURM: Final = "24.11"
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

    def without_slurmrestd(self) -> Cluster:
        return self.model_copy(update={"slurmrestd": Slurmrestd(enabled=False)})

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


# The Python a source tree's virtual environment is made with: each is the
# python3 of a Debian release the testbuild builds images of.
PYTHON_RELEASES: Final = {"3.11": "bookworm", "3.13": "trixie"}
PythonVersion = Literal["3.11", "3.13"]
# A path inside a tree or under /etc/testbuild: relative, no '..'.
GATEWAY: Final = "gateway"  # the node of an implementation's gateway: no process is named so


def _no_parent_step(path: str) -> str:
    if ".." in path.split("/"):
        raise ValueError("'..' may not be part of it")
    return path


def _not_the_gateway(name: str) -> str:
    if name == GATEWAY:
        raise ValueError(f"'{GATEWAY}' is the name of the gateway's container")
    return name


RelativePath = Annotated[
    str,
    Field(pattern=r"^[A-Za-z0-9_.][A-Za-z0-9_./-]{0,199}$"),
    AfterValidator(_no_parent_step),
]
ProcessName = Annotated[
    str, Field(pattern=r"^[a-z][a-z0-9]{0,19}$"), AfterValidator(_not_the_gateway)
]


class TemplateFile(Strict):
    """A file rendered from a template into /etc/testbuild/<path> of each of
    the implementation's containers, with the mode it demands."""

    path: RelativePath
    template: str
    mode: Annotated[int, Field(ge=0, le=0o7777)] = 0o644

    @field_validator("mode", mode="before")
    @classmethod
    def _octal_text(cls, value: object) -> object:
        """'0400' (quoted, or a mode YAML did not take as octal) is octal, as chmod reads it."""
        if isinstance(value, str) and value.isdigit():
            return int(value, 8)
        return value


class Process(Strict):
    """One process of an implementation: a container of its own, reachable
    in the environment's network at <implementation>-<name>:<port>."""

    name: ProcessName = "main"
    # None: the image's own command (image implementations only).
    command: tuple[str, ...] | None = None
    environment: dict[str, str] = Field(default_factory=dict)
    port: Annotated[int, Field(ge=1, le=65535)] = 8000  # where it listens in its container


class Route(Strict):
    """Requests whose path starts with `path` go to `process` (longest prefix wins)."""

    path: Annotated[str, Field(pattern=r"^/[A-Za-z0-9_./-]*$")]
    process: ProcessName


class Source(Strict):
    """A local source tree, run in a virtual environment of its requirements."""

    path: Path  # the tree, mounted read-only at /src (a relative path: from the file's folder)
    requirements: RelativePath = "requirements.txt"  # in the tree
    python: PythonVersion = "3.13"

    @field_validator("python", mode="before")
    @classmethod
    def _version_as_written(cls, value: object) -> object:
        """`python: 3.11` unquoted is a YAML float: read it as the version it spells."""
        return format(value, ".2f") if isinstance(value, float) else value

    @property
    def debian_release(self) -> str:
        return PYTHON_RELEASES[self.python]


class Health(Strict):
    """What says the implementation is up: a GET on its published port."""

    path: Annotated[str, Field(pattern=r"^/\S*$")] = "/"
    status: Annotated[int, Field(ge=100, le=599)] = 200
    token: bool = False  # send a token of the first client (client credentials)
    timeout: Annotated[int, Field(ge=5, le=1800)] = 120


class Implementation(Strict):
    """A FirecREST implementation hosted in the environment and judged by the suites."""

    name: Name
    api: Literal["v1", "v2"]
    port: Port = 0  # published on bindAddress (0 picks a free one)
    image: Annotated[str, Field(pattern=r"^[a-z0-9][A-Za-z0-9._/:@-]*$")] | None = None
    source: Source | None = None
    processes: Annotated[tuple[Process, ...], Field(min_length=1)] = (Process(),)
    gateway: tuple[Route, ...] = ()  # with a source tree: nginx in front of the processes
    files: tuple[TemplateFile, ...] = ()
    health: Health = Health()
    # Keys merged into the target file `up` writes for it (scenarios/README.md):
    # its API version, limits, capabilities.
    target: dict[str, Any] = Field(default_factory=dict)

    @property
    def published_process(self) -> Process | None:
        """The process on the published port (None: the gateway is)."""
        return None if self.gateway else self.processes[0]


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
    implementations: tuple[Implementation, ...] = ()

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
    _resolve_source_paths(document)
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
        + _implementation_problems(config, document)
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


def _resolve_source_paths(document: strictyaml.Document) -> None:
    """A relative source tree is relative to the environment file's folder, so
    the saved config (and every later command) names the same tree."""
    source_file = Path(document.source)
    base = source_file.parent if source_file.is_file() else Path.cwd()
    entries = document.data.get("implementations")
    for entry in entries if isinstance(entries, list) else []:
        source = entry.get("source") if isinstance(entry, dict) else None
        if isinstance(source, dict) and isinstance(source.get("path"), str):
            source["path"] = str((base / source["path"]).resolve())


# Records a problem at a key of one implementation entry.
Report = Callable[[tuple[Any, ...], str], None]


def _implementation_problems(config: EnvironmentConfig, document: strictyaml.Document) -> list[str]:
    problems = []
    first_use: dict[str, int] = {}
    for index, entry in enumerate(config.implementations):

        def problem(location: tuple[Any, ...], text: str, index: int = index) -> None:
            where = document.where(("implementations", index, *location))
            dotted = strictyaml.dotted(("implementations", index, *location))
            problems.append(f"{where}: {dotted}: {text}")

        if entry.name in first_use:
            problem(
                ("name",),
                f"'{entry.name}' is already the name of"
                f" implementations[{first_use[entry.name]}] (fix: give each a unique name)",
            )
        first_use.setdefault(entry.name, index)
        if (entry.image is None) == (entry.source is None):
            problem(
                (),
                "give exactly one of 'image' (an image in the engine) or 'source'"
                " (a local source tree) (fix: keep the one the implementation runs from)",
            )
        _process_problems(entry, problem)
        _placeholder_problems(config, entry, problem)
    return problems


def _process_problems(entry: Implementation, problem: Report) -> None:
    names = [process.name for process in entry.processes]
    for index, name in enumerate(names):
        if name in names[:index]:
            problem(
                ("processes", index, "name"),
                f"'{name}' names two processes (fix: give each process a unique name)",
            )
        if entry.source is not None and entry.processes[index].command is None:
            problem(
                ("processes", index),
                "a process of a source tree needs a 'command'"
                " (fix: the command line that starts it, run in the tree)",
            )
    if entry.gateway and entry.source is None:
        problem(
            ("gateway",),
            "the gateway runs beside a source tree only"
            " (fix: remove it, or put the routing in the image)",
        )
    for index, route in enumerate(entry.gateway):
        if route.process not in names:
            problem(
                ("gateway", index, "process"),
                f"no process is named '{route.process}'"
                f" (fix: use one of {', '.join(sorted(set(names)))})",
            )


def _placeholder_problems(
    config: EnvironmentConfig, entry: Implementation, problem: Report
) -> None:
    scope = templates.Scope(
        users=tuple(user.name for user in config.users),
        processes=tuple(process.name for process in entry.processes),
    )
    texts: list[tuple[tuple[Any, ...], str]] = [
        (("files", index, "template"), file.template) for index, file in enumerate(entry.files)
    ]
    for index, process in enumerate(entry.processes):
        texts += [
            (("processes", index, "command", position), argument)
            for position, argument in enumerate(process.command or ())
        ]
        texts += [
            (("processes", index, "environment", variable), value)
            for variable, value in process.environment.items()
        ]
    for location, text in texts:
        for name in scope.unknown(text):
            problem(location, f"unknown placeholder {{{{ {name} }}}} (fix: {scope.hint(name)})")


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


# Every port an environment publishes, as its file names them: 0 picks a free one.
FREE_PORTS: Final[dict[str, Any]] = {
    "keycloak": {"port": 0},
    "minio": {"port": 0, "consolePort": 0},
    "sshca": {"port": 0},
    "stack": {"port": 0, "v2": {"port": 0}},
    "cluster": {"sshPort": 0, "slurmrestd": {"port": 0}},
}


def with_free_ports(document: dict[str, Any]) -> dict[str, Any]:
    """An environment file's settings with every published port it does not
    name set to a free one: for environments that run beside others (tests,
    `make bench`), never on the ports a user's `make up` publishes."""
    return merged(FREE_PORTS, document)


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`base` with `changes` over it: mappings merge key by key, anything else replaces."""
    result = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result
