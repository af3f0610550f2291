"""The environment file (testbuild.yaml), parsed once into typed objects.

The file is versioned (apiVersion/kind) and decoded strictly: unknown keys
are errors. Every error names the file, the line, the key and a fix.
"""

from __future__ import annotations

import difflib
import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from harness.errors import ConfigError

API_VERSION = "testbuild/v1"
SERVICE_ACCOUNT_PREFIX = "service-account-"
DEFAULT_CA_FOLDER = Path("/usr/local/share/ca-certificates")

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,29}$")]
UserName = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")]
Port = Annotated[int, Field(ge=0, le=65535)]


class _Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class User(_Strict):
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


class Cluster(_Strict):
    """The Slurm cluster: one controller/login node and N compute nodes."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9]{0,19}$")] = "cluster"
    compute_nodes: Annotated[int, Field(ge=1, le=16)] = 2
    cpus_per_node: Annotated[int, Field(ge=1, le=256)] | None = None
    ssh_auth: Literal["certificate", "static-key"] = "certificate"
    ssh_port: Port = 2222

    @property
    def compute_node_names(self) -> list[str]:
        return [f"c{index}" for index in range(1, self.compute_nodes + 1)]


class Client(_Strict):
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


class Keycloak(_Strict):
    """The identity provider issuing the tokens FirecREST accepts."""

    port: Port = 8080
    realm: Name = "kcrealm"
    access_token_lifespan: Annotated[int, Field(ge=5, le=86400)] = 300
    clients: list[Client] = [Client(client_id="firecrest-sample")]


class Minio(_Strict):
    """The S3 staging area for large transfers."""

    port: Port = 9000
    console_port: Port = 9001
    object_expiry_days: Annotated[int, Field(ge=1, le=3650)] = 7


class Firecrest(_Strict):
    """The FirecREST v1 service stack (stack/) and its task store."""

    port: Port = 8000
    # single: one process serves every service; split: one container per
    # service behind a gateway container on the port.
    layout: Literal["single", "split"] = "single"
    max_file_size_mb: Annotated[int, Field(ge=1, le=1024)] = 5
    utilities_timeout: Annotated[int, Field(ge=1, le=600)] = 5
    task_expiry_seconds: Annotated[int, Field(ge=60)] = 7 * 24 * 3600


class Images(_Strict):
    """How images are made: base OS source and certificates for builds."""

    ca_certificates: Literal["auto", "none"] | list[Path] = "auto"
    debian_mirror: str = "http://deb.debian.org/debian"

    def ca_certificate_files(self) -> list[Path]:
        if self.ca_certificates == "none":
            return []
        if self.ca_certificates == "auto":
            return sorted(DEFAULT_CA_FOLDER.glob("*.crt")) if DEFAULT_CA_FOLDER.is_dir() else []
        return list(self.ca_certificates)


class EnvironmentConfig(_Strict):
    """The whole environment, as the file describes it."""

    api_version: Literal["testbuild/v1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["Environment"] = "Environment"
    name: Name = "testbuild"
    bind_address: str = "127.0.0.1"
    state_dir: Path = Path(".testbuild")
    cluster: Cluster = Cluster()
    keycloak: Keycloak = Keycloak()
    minio: Minio = Minio()
    firecrest: Firecrest = Firecrest()
    images: Images = Images()
    users: Annotated[list[User], Field(min_length=1)] = list(DEFAULT_USERS)

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


def load(path: Path | None) -> tuple[EnvironmentConfig, Path]:
    """Read and validate an environment file; no file means all defaults."""
    if path is None:
        return EnvironmentConfig(), Path.cwd()
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(str(path), [f"cannot read the file: {error.strerror}"]) from error
    return parse(text, str(path)), path.resolve().parent


def parse(text: str, source: str = "<string>") -> EnvironmentConfig:
    try:
        document = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(source, [f"not valid YAML: {error}"]) from error
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, ["the top level must be a mapping (key: value lines)"])
    lines = _line_numbers(document)
    try:
        config = EnvironmentConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(
            source, [_describe(problem, source, lines) for problem in error.errors()]
        ) from error
    problems = _duplicate_users(config, source, lines) + _clients_without_users(
        config, source, lines
    )
    if problems:
        raise ConfigError(source, problems)
    return config


def _clients_without_users(
    config: EnvironmentConfig, source: str, lines: dict[tuple, int]
) -> list[str]:
    names = {user.name for user in config.users}
    problems = []
    for index, client in enumerate(config.keycloak.clients):
        if client.service_account not in names:
            line = _closest_line(("keycloak", "clients", index), lines)
            problems.append(
                f"{source}:{line}: keycloak.clients[{index}]: client '{client.client_id}' needs"
                f" a user named '{client.service_account}' (fix: add it to users, so the"
                " service account exists on the cluster too)"
            )
    return problems


def _duplicate_users(config: EnvironmentConfig, source: str, lines: dict[tuple, int]) -> list[str]:
    problems = []
    for key in ("name", "uid"):
        first_use: dict[object, int] = {}
        for index, user in enumerate(config.users):
            value = getattr(user, key)
            if value in first_use:
                line = _closest_line(("users", index, key), lines)
                problems.append(
                    f"{source}:{line}: users[{index}].{key}: {value!r} is already used by"
                    f" users[{first_use[value]}] (fix: give every user a unique {key})"
                )
            first_use.setdefault(value, index)
    return problems


def _line_numbers(node: yaml.Node | None, path: tuple[Any, ...] = ()) -> dict[tuple, int]:
    """Map each key path of the document to its 1-based line number."""
    found: dict[tuple, int] = {}
    if node is None:
        return found
    found[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            found.update(_line_numbers(value, (*path, key.value)))
            found[(*path, key.value)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found.update(_line_numbers(item, (*path, index)))
    return found


def _describe(problem: Any, source: str, lines: dict[tuple, int]) -> str:
    location = tuple(problem["loc"])
    key = _dotted(location)
    line = _closest_line(location, lines)
    where = f"{source}:{line}" if line else source
    kind = problem["type"]
    if kind == "extra_forbidden":
        return f"{where}: unknown key '{key}' (fix: {_suggest_key(location)})"
    message = str(problem["msg"]).removeprefix("Value error, ")
    fix = _FIXES.get(str(location[-1]) if location else "", "see testbuild.yaml in the repository")
    return f"{where}: {key or '(top level)'}: {message}, got {problem.get('input')!r} (fix: {fix})"


_FIXES = {
    "computeNodes": "use a whole number from 1 to 16",
    "sshPort": "use a port from 1 to 65535, or 0 for any free port",
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
    "maxFileSizeMb": "use a number of megabytes from 1 to 1024",
    "layout": "use 'single' (one process) or 'split' (a container per service and a gateway)",
    "utilitiesTimeout": "use a number of seconds from 1 to 600",
    "taskExpirySeconds": "use a number of seconds, at least 60",
}


def _dotted(location: tuple[Any, ...]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _closest_line(location: tuple[Any, ...], lines: dict[tuple, int]) -> int | None:
    for end in range(len(location), -1, -1):
        if location[:end] in lines:
            return lines[location[:end]]
    return None


def _suggest_key(location: tuple[Any, ...]) -> str:
    model: type[BaseModel] = EnvironmentConfig
    for part in location[:-1]:
        if isinstance(part, int):
            continue
        field = _field_by_alias(model, part)
        annotation = field.annotation if field else None
        inner = getattr(annotation, "__args__", (annotation,))
        nested = [arg for arg in inner if isinstance(arg, type) and issubclass(arg, BaseModel)]
        if not nested:
            break
        model = nested[0]
    known = sorted(field.alias or name for name, field in model.model_fields.items())
    close = difflib.get_close_matches(str(location[-1]), known, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"{hint}remove it or use one of: {', '.join(known)}"


def _field_by_alias(model: type[BaseModel], alias: str):
    for name, field in model.model_fields.items():
        if (field.alias or name) == alias:
            return field
    return None
