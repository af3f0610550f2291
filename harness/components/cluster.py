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
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from string import Template

import paramiko

from firecrest_testbuild.harness.archive import pack
from firecrest_testbuild.harness.components import Context
from firecrest_testbuild.harness.config import SLURM_RELEASES, Cluster, EnvironmentConfig
from firecrest_testbuild.harness.contracts import ClusterEndpoints, SshEndpoints
from firecrest_testbuild.harness.errors import TestbuildError
from firecrest_testbuild.harness.images import ImageSpec
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
    return (
        _template(
            "slurm.conf.template",
            cluster_name=cluster.name,
            controller=cluster.name,
            node_names=",".join(cluster.compute_node_names),
            cpus=cluster.cpus_per_node or engine_cpus,
        )
        + (CLUSTER / f"slurm-{cluster.slurm}.conf").read_bytes()
    )


class ClusterComponent:
    name = NAME
    requires: tuple[str, ...] = ()
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
            ports=(
                PortBinding(
                    SSH_PORT,
                    context.config.bind_address,
                    self._ssh_port(context),
                    "cluster.sshPort",
                ),
            ),
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

    def _controller_files(self, context: Context) -> dict[str, tuple[bytes, int]]:
        state = context.state
        keys_file = (
            ".ssh/authorized_keys" if context.config.cluster.ssh_auth == "static-key" else "none"
        )
        return {
            "slurmdbd.conf": (
                _template("slurmdbd.conf.template", storage_password=state.password("slurmdbd")),
                0o600,
            ),
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
        nodes = [CONTROLLER, *context.config.cluster.compute_node_names]
        with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
            list(pool.map(lambda node: self._seed_node(context, node, table), nodes))

    def _seed_node(self, context: Context, node: str, table: bytes) -> None:
        context.runtime.container(node).put_archive(
            "/etc/testbuild", pack({"users.tsv": (table, 0o600)})
        )
        command = ["testbuild-seed-users"] + (["--accounting"] if node == CONTROLLER else [])
        result = context.runtime.execute(node, command)
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
        return [
            Probe(NAME, "all compute nodes idle in sinfo", lambda: self._nodes_idle(context)),
            Probe(
                NAME,
                f"sshd accepts a certificate login as {first_user}",
                lambda: self._login_works(context, first_user),
                timeout=30,
                transient=(OSError, paramiko.SSHException),
            ),
        ]

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
            network_ssh_host=cluster.name,
            network_ssh_port=SSH_PORT,
        )

    def _ssh_port(self, context: Context) -> int:
        return context.port("cluster.sshPort", context.config.cluster.ssh_port)

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
