"""Templates of a hosted implementation's configuration: `{{ name }}` placeholders
the environment fills (README: Hosting an implementation).

The names are known before anything runs, so an unknown one is an error of
the environment file, with its line; the values come from the running
environment and are computed only for the names a template uses (the
realm's public key, say, is asked of Keycloak).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")

# Every fixed name, with what it is. Addresses are those an implementation
# reaches from inside the environment's network, unless they say "on the host".
NAMES: Mapping[str, str] = {
    "environment.name": "the environment's name",
    "implementation.name": "the entry's name",
    "implementation.url": "its public URL on the host (what clients and the target file use)",
    "implementation.port": "its published port on the host",
    "keycloak.url": "Keycloak's public base URL (.../auth)",
    "keycloak.realm": "the realm's name",
    "keycloak.issuer": "the tokens' issuer (iss)",
    "keycloak.tokenUrl": "the token endpoint",
    "keycloak.publicTokenUrl": "the token endpoint on the host",
    "keycloak.jwksUrl": "the realm's keys (JWKS)",
    "keycloak.realmPublicKey": "the realm's RSA public key (base64 DER, as Keycloak shows it)",
    "keycloak.realmPublicKeyPem": "the realm's RSA public key as a PEM block",
    "keycloak.audience": "the extra audience of every token (keycloak.audience), or empty",
    "client.id": "the first Keycloak client (its service account is a user)",
    "client.secret": "that client's secret",
    "cluster.name": "the system's name (Slurm ClusterName)",
    "cluster.slurmVersion": "the Slurm generation (22.05 or 24.11)",
    "ssh.host": "the login node's sshd host",
    "ssh.port": "its port",
    "ssh.hostKey": "the login node's public host key (one line)",
    "ssh.caPrivateKey": "the SSH user CA's private key (OpenSSH PEM text)",
    "ssh.caPublicKey": "the SSH user CA's public key (one line)",
    "sshca.url": "the SSH CA service (SSHCA /sign, SSHService /api/v1/ssh-keys)",
    "slurmrestd.url": "slurmrestd (cluster.slurm 24.11)",
    "s3.privateUrl": "MinIO's S3 API",
    "s3.publicUrl": "MinIO's S3 API on the host (in presigned URLs)",
    "s3.accessKey": "MinIO's access key",
    "s3.secretKey": "MinIO's secret key",
    "s3.region": "MinIO's region",
    "redis.url": "Redis (redis://host:port/0)",
    "redis.host": "Redis's host",
    "redis.port": "Redis's port",
}
# Names of the form users.<user>.<field> and processes.<process>.url.
USER_FIELDS: Mapping[str, str] = {
    "name": "the user's name",
    "password": "the user's password",
    "sshPrivateKey": "the user's static key (cluster.sshAuth: static-key), OpenSSH PEM text",
    "sshPublicKey": "the public half of that key (one line)",
}
PROCESS_FIELDS: Mapping[str, str] = {
    "url": "http://<host>:<port> of one of the entry's processes",
}

Values = Mapping[str, Callable[[], str]]


@dataclass(frozen=True)
class Scope:
    """The names one entry's templates may use: the fixed ones, and those
    of the environment's users and the entry's processes."""

    users: tuple[str, ...]
    processes: tuple[str, ...]

    def known(self, name: str) -> bool:
        if name in NAMES:
            return True
        family, _, rest = name.partition(".")
        owner, _, field = rest.rpartition(".")
        if family == "users":
            return owner in self.users and field in USER_FIELDS
        if family == "processes":
            return owner in self.processes and field in PROCESS_FIELDS
        return False

    def names(self) -> list[str]:
        """Every name this scope knows, spelled out."""
        return [
            *NAMES,
            *(f"users.{user}.{field}" for user in self.users for field in USER_FIELDS),
            *(f"processes.{name}.{field}" for name in self.processes for field in PROCESS_FIELDS),
        ]

    def hint(self, name: str) -> str:
        """A fix for an unknown placeholder: the closest known name, and where the list is."""
        close = difflib.get_close_matches(name, self.names(), n=1)
        suggestion = f"did you mean '{{{{ {close[0]} }}}}'? " if close else ""
        return (
            f"{suggestion}the placeholders are listed in README.md (Hosting an implementation)"
            " and by 'testbuild placeholders'"
        )

    def unknown(self, template: str) -> list[str]:
        """The placeholders of `template` this scope does not know, in order."""
        return [name for name in used(template) if not self.known(name)]


def used(template: str) -> list[str]:
    """The placeholder names of `template`, each once, in order of appearance."""
    return list(dict.fromkeys(PLACEHOLDER.findall(template)))


class Unfilled(Exception):
    """A placeholder whose value the environment cannot give (the reason says why)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{{{{ {name} }}}}: {reason}")
        self.name = name
        self.reason = reason


def render(template: str, values: Values) -> str:
    """`template` with every placeholder replaced by its value.

    Names were checked when the file was read; a value that cannot be made
    raises Unfilled (from the value's function) with the reason.
    """
    cache: dict[str, str] = {}

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in cache:
            if name not in values:
                raise Unfilled(name, "no such placeholder")
            cache[name] = values[name]()
        return cache[name]

    return PLACEHOLDER.sub(value, template)


def catalogue(scope_users: Iterable[str] = ("<user>",)) -> list[str]:
    """Every placeholder with what it is, one line each."""
    rows = list(NAMES.items())
    rows += [
        (f"users.{user}.{field}", what)
        for user in scope_users
        for field, what in USER_FIELDS.items()
    ]
    rows += [(f"processes.<process>.{field}", what) for field, what in PROCESS_FIELDS.items()]
    width = max(len(name) for name, _ in rows) + 6
    return [f"{'{{ ' + name + ' }}':<{width}} {what}" for name, what in rows]
