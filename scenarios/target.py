"""The target description: which FirecREST deployment the suites judge, how
to get its tokens, its users, what it offers, and what ground truth it grants.

Written by `testbuild up` for the local sandbox (target.yaml in its state folder)
and by hand for any other deployment. Parsed once, strictly; errors name the
file, the key and a fix. Values may come from the environment: `${NAME}` in
the file, and the variables other FirecREST tools use override the file
(FIRECREST_URL, FIRECREST_TOKEN_URI, FIRECREST_CLIENT_ID,
FIRECREST_CLIENT_SECRET, FIRECREST_MACHINE).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from firecrest_testbuild.common import strictyaml
from firecrest_testbuild.common.strictyaml import FileProblems, Strict

ENVIRONMENT_OVERRIDES = {
    "FIRECREST_URL": ("api", "url"),
    "FIRECREST_TOKEN_URI": ("auth", "tokenUrl"),
    "FIRECREST_CLIENT_ID": ("auth", "clientId"),
    "FIRECREST_CLIENT_SECRET": ("auth", "clientSecret"),
    "FIRECREST_MACHINE": ("system", "name"),
}
GUIDE = "scenarios/README.md"
SECRET_KEYS = {"clientSecret", "password", "secretKey", "caPrivateKey"}


class TargetError(FileProblems):
    """The target file cannot be used; `problems` say where, why and how to fix it."""


class Api(Strict):
    url: Annotated[str, Field(pattern=r"^https?://\S+$")]
    # What the deployment says it implements; its generation (1.x or 2.x)
    # selects the suites and how `capabilities` is read.
    version: Annotated[str, Field(pattern=r"^[12]\.\d+(\.\d+)*$")] = "1.16.1"

    @property
    def generation(self) -> int:
        return int(self.version.split(".", 1)[0])


class ExpiryProbe(Strict):
    """A client whose tokens live a few seconds, to check that expired ones are refused."""

    client_id: str
    client_secret: str


class Auth(Strict):
    token_url: Annotated[str, Field(pattern=r"^https?://\S+$")]
    client_id: str
    client_secret: str
    expiry_probe: ExpiryProbe | None = None


class Identity(Strict):
    """Whom the suites act as: a user (password grant) or the client's service account."""

    name: str  # the user name on the system
    password: str | None = None  # None: client credentials (the service account)


class System(Strict):
    name: str
    # Each run works in <workDir>/<unique name>; {user} is the identity's name.
    work_dir: str = "/home/{user}"
    filesystems: tuple[str, ...] = ()
    partition: str | None = None  # for jobs; None: the default partition
    account: str | None = None  # a Slurm account the first identity may use
    # A node type (feature) reservations may ask for (POST /reservations nodeType),
    # for targets offering the `reservations` endpoints; None: no reservation is made.
    reservation_node_type: str | None = None


class Capabilities(Strict):
    """What a 1.x target offers (api.version 1.x)."""

    api_version: str = "1.16"
    scheduler: bool = True  # /compute works against a real scheduler
    transfer: Literal["s3", "none"] = "s3"  # /storage/xfer-external
    internal_transfers: bool = True  # /storage/xfer-internal
    ssh_auth: Literal["certificate", "static-key"] = "certificate"
    # "reservations": /reservations is offered
    optional_endpoints: tuple[Literal["reservations"], ...] = ()

    def offers(self, capability: str) -> bool:
        """Whether a suite's `requires(capability)` holds for this target."""
        if capability == "api-1":
            return True
        if capability == "scheduler":
            return self.scheduler
        if capability == "s3-transfer":
            return self.transfer == "s3"
        if capability == "internal-transfers":
            return self.internal_transfers and self.scheduler
        return capability in self.optional_endpoints


class CapabilitiesV2(Strict):
    """What a 2.x target offers (api.version 2.x)."""

    scheduler: Literal["slurm", "pbs", "none"] = "slurm"  # the system's scheduler type
    # How large files travel (transferDirectives.transferMethod): s3 (presigned
    # multipart parts), streamer, or none (only the small-file ops).
    transfer: Literal["s3", "streamer", "none"] = "s3"
    # "attach": PUT /compute/{system}/jobs/{id}/attach is offered (srun --overlap).
    optional_endpoints: tuple[Literal["attach"], ...] = ()

    def offers(self, capability: str) -> bool:
        if capability == "api-2":
            return True
        if capability == "scheduler":
            return self.scheduler != "none"
        if capability in ("slurm", "pbs"):
            return self.scheduler == capability
        if capability == "s3-transfer":
            return self.transfer == "s3" and self.scheduler != "none"
        # Transfer operations (cp, mv, rm, compress, extract) run as scheduler jobs.
        if capability == "transfer-jobs":
            return self.scheduler != "none"
        return capability in self.optional_endpoints


class Limits(Strict):
    upload_max_mb: Annotated[float, Field(gt=0)] = 5
    command_timeout: Annotated[float, Field(gt=0)] = 5
    task_timeout: Annotated[float, Field(gt=0)] = 120  # seconds a task may take to finish


class SshTruth(Strict):
    """Ground truth over SSH: commands run as each identity, signed by the CA."""

    host: str
    port: int = 22
    host_key: str
    ca_private_key: Path


class S3Truth(Strict):
    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+$")]
    access_key: str
    secret_key: str
    region: str = "us-east-1"


class GroundTruth(Strict):
    ssh: SshTruth | None = None
    s3: S3Truth | None = None


class Target(Strict):
    api_version: Literal["testbuild/v1"] = Field(default="testbuild/v1", alias="apiVersion")
    kind: Literal["Target"] = "Target"
    name: str
    api: Api
    auth: Auth
    identities: Annotated[tuple[Identity, ...], Field(min_length=2)]
    system: System
    # Read as Capabilities or CapabilitiesV2 by api.version (see `parse`).
    capabilities: Capabilities | CapabilitiesV2 = Capabilities()
    limits: Limits = Limits()
    ground_truth: GroundTruth = GroundTruth()

    @model_validator(mode="after")
    def _distinct_identities(self) -> Target:
        if len({identity.name for identity in self.identities}) < 2:
            raise ValueError("identities must name two different users")
        return self

    @property
    def generation(self) -> int:
        """1 or 2: the API generation the target implements (api.version)."""
        return self.api.generation

    def public(self) -> dict:
        """The description without secrets, for reports."""
        return _redacted(self.model_dump(mode="json", by_alias=True))


def load(path: Path, environ: dict[str, str] | None = None) -> Target:
    environ = dict(os.environ if environ is None else environ)
    try:
        text = path.read_text()
    except OSError as error:
        raise TargetError(str(path), [f"cannot read it: {error.strerror}"]) from error
    return parse(text, str(path), environ)


def parse(text: str, source: str, environ: dict[str, str]) -> Target:
    missing: list[str] = []
    text = re.sub(r"\$\{(\w+)\}", lambda m: _from_environment(m.group(1), environ, missing), text)
    if missing:
        raise TargetError(
            source,
            [f"${{{name}}} is used but not set (fix: export {name}=...)" for name in missing],
        )
    try:
        document = strictyaml.read(text, source)
        for variable, (section, key) in ENVIRONMENT_OVERRIDES.items():
            if environ.get(variable):
                document.data.setdefault(section, {})[key] = environ[variable]
        model = TargetV2 if _declared_generation(document.data) == "2" else TargetV1
        return strictyaml.validate(model, document, fixes=FIXES, guide=GUIDE)
    except FileProblems as problems:
        raise TargetError(source, problems.problems) from problems


class TargetV1(Target):
    """A 1.x target: its capabilities are read as Capabilities."""

    capabilities: Capabilities = Capabilities()


class TargetV2(Target):
    """A 2.x target: its capabilities are read as CapabilitiesV2 (unknown
    keys, e.g. v1's internalTransfers, are errors naming the v2 keys)."""

    capabilities: CapabilitiesV2 = CapabilitiesV2()


FIXES = {
    "version": "give the API version the deployment implements: 1.x (e.g. 1.16.1) or 2.x"
    " (e.g. 2.5.6)",
    "scheduler": "a 1.x target: true or false; a 2.x target: slurm, pbs or none",
    "transfer": "a 1.x target: s3 or none; a 2.x target: s3, streamer or none",
    "optionalEndpoints": "a 1.x target: [reservations]; a 2.x target: [attach]",
}


def _declared_generation(data: dict) -> str:
    """The generation api.version names ("1" when absent or unreadable: the
    version's own check then explains what is wrong)."""
    api = data.get("api")
    version = api.get("version") if isinstance(api, dict) else None
    return str(version).split(".", 1)[0] if version is not None else "1"


def _from_environment(name: str, environ: dict[str, str], missing: list[str]) -> str:
    if name not in environ:
        missing.append(name)
        return ""
    return environ[name]


def _redacted(value):
    if isinstance(value, dict):
        return {
            key: ("***" if key in SECRET_KEYS and item else _redacted(item))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    return value
