"""The Slurm cluster: a controller/login node and N compute nodes.

One image serves every node; the entrypoint's argument picks the role. The
controller runs MariaDB, slurmdbd, slurmctld and sshd; compute nodes run
slurmd. /home and /scratch are volumes shared by all nodes. Configuration is
generated from the templates in cluster/ and copied in before start. The
nodes' memory (RealMemory, DefMemPerCPU) is not known here: each node's
entrypoint fills it into slurm.conf at start from what its container has
(images/cluster/files/usr/local/libexec/testbuild-slurm-conf), since only
there is a container's memory limit visible, and `testbuild compose` renders
the same file without any engine.

The Slurm generation is the config's `cluster.slurm`: Debian bookworm's 22.05
(image testbuild/cluster) or Debian trixie's 24.11 (testbuild/cluster-slurm-24.11,
the same images/cluster/ folder on the trixie base); `up` builds the one the
config picks. slurm.conf differs between them only by
cluster/slurm-<version>.conf.

With 24.11 the controller also runs slurmrestd (cluster.slurmrestd), with
auth/jwt checking Keycloak's tokens against the realm's signing key, which
slurmdbd and slurmctld read once, at start. The harness makes that key before
anything starts and hands the controller its JWKS as a file, so the cluster
starts and is seeded while Keycloak is still booting (starts_after is empty);
it requires keycloak for that file and for readiness, a real call with the
first user's token.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from string import Template
from typing import Any

import paramiko
import requests

from firecrest_testbuild.harness.archive import pack
from firecrest_testbuild.harness.components import Context
from firecrest_testbuild.harness.config import SLURM_RELEASES, Cluster, EnvironmentConfig
from firecrest_testbuild.harness.contracts import (
    ClusterEndpoints,
    KeycloakEndpoints,
    SlurmrestdEndpoints,
    SshEndpoints,
)
from firecrest_testbuild.harness.errors import TestbuildError
from firecrest_testbuild.harness.images import ImageSpec
from firecrest_testbuild.harness.keycloak_realm import TokenRefused
from firecrest_testbuild.harness.paths import CLUSTER
from firecrest_testbuild.harness.readiness import Probe
from firecrest_testbuild.harness.runtime import ContainerSpec, Forward, PortBinding

NAME = "cluster"
CONTROLLER = "controller"
SSH_PORT = 22
SHARED_VOLUMES = {"home": "/home", "scratch": "/scratch"}
PARTITIONS = ("part01", "part02", "xfer")  # as cluster/slurm.conf.template defines them
# Per Slurm generation: the packages beyond the common ones. The slurm.conf
# lines that differ are in cluster/slurm-<version>.conf, appended to the
# common template.
EXTRA_PACKAGES = {"22.05": "", "24.11": "slurmrestd slurm-wlm-jwt-plugin"}
# slurmrestd's port inside the controller, and the REST API versions each
# Slurm generation's slurmrestd serves (its data_parser plugins); readiness
# checks the running one's /openapi/v3 against this.
SLURMRESTD_PORT = 6820
SLURMRESTD_VERSIONS = {"24.11": ("v0.0.40", "v0.0.41", "v0.0.42")}
# Where the controller's entrypoint puts the realm's signing key (the harness's
# /etc/testbuild/jwks.json); slurmctld and slurmdbd read it at start.
JWKS_FILE = "/etc/slurm/jwks.json"
# auth/jwt beside munge (slurm.conf and slurmdbd.conf, Slurm's jwt.html):
# RS256 keys from the JWKS file, the user from Keycloak's preferred_username
# claim (userclaimfield, 23.02+), no HS256 key and no `scontrol token`.
AUTH_ALT = (
    "AuthAltTypes=auth/jwt\n"
    f"AuthAltParameters=jwks={JWKS_FILE},userclaimfield=preferred_username,"
    "disable_token_creation\n"
)
_VERSION_PATH = re.compile(r"^/slurm(?:db)?/(v\d+\.\d+\.\d+)/")


def served_versions(openapi: Mapping[str, Any]) -> tuple[str, ...]:
    """The REST API versions of slurmrestd's OpenAPI description (its paths), oldest first."""
    found = {match[1] for path in openapi.get("paths", {}) if (match := _VERSION_PATH.match(path))}
    return tuple(sorted(found, key=lambda v: tuple(int(part) for part in v[1:].split("."))))


def image_for(slurm: str) -> ImageSpec:
    """The cluster image of a Slurm generation (a key of SLURM_RELEASES)."""
    release = SLURM_RELEASES[slurm]
    extra = EXTRA_PACKAGES[slurm]
    return ImageSpec(
        "cluster",
        debian_release=release,
        build_args=(("EXTRA_PACKAGES", extra),) if extra else (),
        name="" if slurm == "22.05" else f"cluster-slurm-{slurm}",
    )


def _template(name: str, **values: object) -> bytes:
    return Template((CLUSTER / name).read_text()).substitute(values).encode()


def slurm_conf(cluster: Cluster, engine_cpus: int) -> bytes:
    """slurm.conf for a cluster section (memory placeholders left for the node)."""
    jwt = (
        f"# slurmrestd (cluster.slurmrestd): Keycloak's tokens through auth/jwt.\n{AUTH_ALT}"
        if cluster.slurmrestd_enabled
        else ""
    )
    return (
        _template(
            "slurm.conf.template",
            cluster_name=cluster.name,
            controller=cluster.name,
            node_names=",".join(cluster.compute_node_names),
            cpus=cluster.cpus_per_node or engine_cpus,
        )
        + (CLUSTER / f"slurm-{cluster.slurm}.conf").read_bytes()
        + jwt.encode()
    )


def slurmdbd_conf(cluster: Cluster, storage_password: str) -> bytes:
    return _template(
        "slurmdbd.conf.template",
        storage_password=storage_password,
        auth_alt=AUTH_ALT if cluster.slurmrestd_enabled else "",
    )


class ClusterComponent:
    name = NAME
    # Keycloak's keys are what slurmrestd's auth/jwt checks tokens with.
    requires: tuple[str, ...] = ("keycloak",)
    starts_after: tuple[str, ...] = ()
    volumes = tuple(SHARED_VOLUMES)
    endpoints_type = ClusterEndpoints

    def image(self, config: EnvironmentConfig) -> ImageSpec:
        return image_for(config.cluster.slurm)

    def forwards(self, context: Context) -> list[Forward]:
        return []  # SSH is reached from the host only

    def containers(self, context: Context) -> list[ContainerSpec]:
        cluster = context.config.cluster
        tag = context.images[self.image(context.config).repository]
        forwards = "".join(f"{forward.line()}\n" for forward in context.forwards)
        common = {
            "slurm.conf": (self._slurm_conf(context), 0o644),
            "munge.key": (context.state.secret("munge.key", 1024), 0o400),
            "forwards": (forwards.encode(), 0o644),
        }
        controller = ContainerSpec(
            component=NAME,
            node=CONTROLLER,
            image=tag,
            command=["controller"],
            hostname=cluster.name,
            volumes=SHARED_VOLUMES,
            ports=self._controller_ports(context),
            files=common | self._controller_files(context),
        )
        computes = [
            ContainerSpec(
                component=NAME,
                node=node,
                image=tag,
                command=["compute"],
                hostname=node,
                volumes=SHARED_VOLUMES,
                files=common,
            )
            for node in cluster.compute_node_names
        ]
        return [controller, *computes]

    def _slurm_conf(self, context: Context) -> bytes:
        return slurm_conf(context.config.cluster, context.engine_cpus)

    def _controller_ports(self, context: Context) -> tuple[PortBinding, ...]:
        bind = context.config.bind_address
        ssh = PortBinding(SSH_PORT, bind, self._ssh_port(context), "cluster.sshPort")
        if not context.config.cluster.slurmrestd_enabled:
            return (ssh,)
        rest = PortBinding(
            SLURMRESTD_PORT, bind, self._slurmrestd_port(context), "cluster.slurmrestd.port"
        )
        return (ssh, rest)

    def _controller_files(self, context: Context) -> dict[str, tuple[bytes, int]]:
        state = context.state
        cluster = context.config.cluster
        keys_file = ".ssh/authorized_keys" if cluster.ssh_auth == "static-key" else "none"
        rest: dict[str, tuple[bytes, int]] = {}
        if cluster.slurmrestd_enabled:
            rest["jwks.json"] = (context.endpoints(KeycloakEndpoints).signing_jwks.encode(), 0o644)
        return rest | {
            "slurmdbd.conf": (slurmdbd_conf(cluster, state.password("slurmdbd")), 0o600),
            "sshd_config": (
                _template(
                    "sshd_config.template",
                    authorized_keys_file=keys_file,
                    ssh_commands=context.config.cluster.ssh_commands,
                ),
                0o644,
            ),
            "allowed-commands": ((CLUSTER / "allowed-commands").read_bytes(), 0o644),
            "ssh_user_ca.pub": (state.user_ca.public_path.read_bytes(), 0o644),
            "ssh_host_ed25519_key": (state.host_key.private_path.read_bytes(), 0o600),
            "ssh_host_ed25519_key.pub": (state.host_key.public_path.read_bytes(), 0o644),
        }

    def started(self, context: Context) -> list[Probe]:
        name = context.config.cluster.name
        return [
            Probe(
                NAME,
                "slurmctld answers 'scontrol ping'",
                lambda: self._expect(context, ["scontrol", "ping"], "is UP"),
            ),
            Probe(
                NAME,
                "slurmdbd has the cluster registered",
                lambda: self._expect(
                    context,
                    ["sacctmgr", "--noheader", "--parsable2", "list", "cluster", "format=cluster"],
                    name,
                ),
            ),
        ]

    def seed(self, context: Context) -> None:
        table = self.users_table(context)
        # The controller first: it makes the homes, whose login files the compute
        # nodes' cache of each user's login environment reads.
        self._seed_node(context, CONTROLLER, table, "--accounting")
        nodes = context.config.cluster.compute_node_names
        with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
            list(pool.map(lambda node: self._seed_node(context, node, table, "--env-cache"), nodes))

    def _seed_node(self, context: Context, node: str, table: bytes, role: str) -> None:
        context.runtime.container(node).put_archive(
            "/etc/testbuild", pack({"users.tsv": (table, 0o600)})
        )
        result = context.runtime.execute(node, ["testbuild-seed-users", role])
        if result.exit_code != 0:
            raise TestbuildError(
                NAME,
                f"seeding users on {node} failed (exit {result.exit_code})",
                details=result.output.splitlines()[-15:],
                fix="check the users in the environment file",
            )

    def users_table(self, context: Context) -> bytes:
        static = context.config.cluster.ssh_auth == "static-key"
        rows = []
        for user in context.config.users:
            key = context.state.user_key(user.name).public_line() if static else ""
            rows.append("\t".join([user.name, str(user.uid), user.password, user.account, key]))
        return ("\n".join(rows) + "\n").encode()

    def ready(self, context: Context) -> list[Probe]:
        first_user = context.config.users[0].name
        probes = [
            Probe(NAME, "all compute nodes idle in sinfo", lambda: self._nodes_idle(context)),
            Probe(
                NAME,
                f"sshd accepts a certificate login as {first_user}",
                lambda: self._login_works(context, first_user),
                timeout=30,
                transient=(OSError, paramiko.SSHException),
            ),
        ]
        if context.config.cluster.slurmrestd_enabled:
            user = self._rest_user(context)
            probes.append(
                Probe(
                    NAME,
                    f"slurmrestd lists {user}'s jobs with {user}'s Keycloak token",
                    lambda: self._slurmrestd_works(context),
                    timeout=60,
                    transient=(OSError, TokenRefused, ValueError),
                )
            )
        return probes

    def endpoints(self, context: Context) -> ClusterEndpoints:
        cluster = context.config.cluster
        user_ca = context.state.user_ca
        return ClusterEndpoints(
            system=cluster.name,
            ssh=SshEndpoints(
                host=context.config.bind_address,
                port=self._ssh_port(context),
                auth=cluster.ssh_auth,
                user_ca_private_key=str(user_ca.private_path),
                user_ca_public_key=str(user_ca.public_path),
                host_key=context.state.host_key.public_line(),
            ),
            compute_nodes=tuple(cluster.compute_node_names),
            partitions=PARTITIONS,
            slurmrestd=SlurmrestdEndpoints(
                url=f"http://{context.config.bind_address}:{self._slurmrestd_port(context)}",
                versions=SLURMRESTD_VERSIONS[cluster.slurm],
            )
            if cluster.slurmrestd_enabled
            else None,
            network_ssh_host=cluster.name,
            network_ssh_port=SSH_PORT,
            network_slurmrestd_url=f"http://{cluster.name}:{SLURMRESTD_PORT}"
            if cluster.slurmrestd_enabled
            else None,
        )

    def _ssh_port(self, context: Context) -> int:
        return context.port("cluster.sshPort", context.config.cluster.ssh_port)

    def _slurmrestd_port(self, context: Context) -> int:
        return context.port("cluster.slurmrestd.port", context.config.cluster.slurmrestd.port)

    def _rest_user(self, context: Context) -> str:
        return (context.config.people or list(context.config.users))[0].name

    def _slurmrestd_works(self, context: Context) -> str | None:
        """A real authenticated call: the first person's jobs, with their token;
        then the API versions served are the ones `testbuild env` lists."""
        rest = self.endpoints(context).slurmrestd
        assert rest is not None
        user = context.config.user(self._rest_user(context))
        token = context.endpoints(KeycloakEndpoints).token(user=user)
        headers = rest.headers(user.name, token)
        jobs = requests.get(
            f"{rest.url}/slurm/{rest.versions[-1]}/jobs", headers=headers, timeout=10
        )
        if jobs.status_code != 200:
            return f"HTTP {jobs.status_code} from GET {jobs.url}: {jobs.text[:200]}"
        openapi = requests.get(f"{rest.url}/openapi/v3", headers=headers, timeout=10)
        if openapi.status_code != 200:
            return f"HTTP {openapi.status_code} from GET /openapi/v3"
        served = served_versions(openapi.json())
        if served != rest.versions:
            return (
                f"it serves API versions {', '.join(served) or 'none'}, not the"
                f" {', '.join(rest.versions)} SLURMRESTD_VERSIONS lists for Slurm"
                f" {context.config.cluster.slurm}"
            )
        return None

    def _expect(self, context: Context, command: list[str], expected: str) -> str | None:
        result = context.runtime.execute(CONTROLLER, command)
        output = result.output.strip()
        return (
            None
            if result.exit_code == 0 and expected in output
            else (output[-200:] or f"exit {result.exit_code}")
        )

    def _nodes_idle(self, context: Context) -> str | None:
        result = context.runtime.execute(
            CONTROLLER, ["sinfo", "--noheader", "--Node", "--format=%N %t"]
        )
        rows = [line.split() for line in result.output.splitlines()]
        states = {row[0]: row[1] for row in rows if len(row) == 2}
        wanted = context.config.cluster.compute_node_names
        waiting = [
            f"{node}={states.get(node, 'missing')}" for node in wanted if states.get(node) != "idle"
        ]
        return ", ".join(waiting) if waiting else None

    def _login_works(self, context: Context, user: str) -> str | None:
        result = self.endpoints(context).login_node().run(user, "id -un")
        return (
            None
            if result.exit_status == 0 and result.stdout.strip() == user
            else result.stderr[-200:]
        )


COMPONENT = ClusterComponent()
