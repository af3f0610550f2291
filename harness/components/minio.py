"""MinIO: the S3 staging area, built from source (its images left Docker Hub).

Reached at one address from everywhere: published on bindAddress:port on the
host and forwarded to the same address inside the cluster nodes, so a
presigned URL (whose S3v4 signature covers the Host header) made on either
side works on the other. One bucket per user is seeded, with objects
expiring after minio.objectExpiryDays.
"""

from __future__ import annotations

import urllib3
from minio import Minio
from minio.error import S3Error

from firecrest_testbuild.common.buckets import bucket_of, ensure_bucket
from firecrest_testbuild.harness.components import Context
from firecrest_testbuild.harness.config import EnvironmentConfig
from firecrest_testbuild.harness.contracts import MinioEndpoints
from firecrest_testbuild.harness.errors import TestbuildError
from firecrest_testbuild.harness.images import Artefact, ImageSpec
from firecrest_testbuild.harness.readiness import Probe
from firecrest_testbuild.harness.runtime import ContainerSpec, Forward, PortBinding

NAME = "minio"
NODE = "minio"
API_PORT = 9000
CONSOLE_PORT = 9001
VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
ACCESS_KEY_LENGTH = 20
REGION = "us-east-1"
SERVER_COMMAND = [
    "server",
    "/data",
    "--address",
    f":{API_PORT}",
    "--console-address",
    f":{CONSOLE_PORT}",
]

# The server binary is compiled once per version and kept in the user cache.
IMAGE = ImageSpec(
    "minio",
    debian_release="trixie",
    build_args=(("MINIO_VERSION", VERSION),),
    artefacts=(Artefact("minio", "minio/compile", "/out/minio", "artefacts/minio"),),
)


class MinioComponent:
    name = NAME
    requires: tuple[str, ...] = ()
    starts_after: tuple[str, ...] = ()
    volumes = ("minio-data",)
    endpoints_type = MinioEndpoints

    def image(self, config: EnvironmentConfig) -> ImageSpec:
        return IMAGE

    def forwards(self, context: Context) -> list[Forward]:
        return [Forward(context.config.bind_address, self.port(context), NODE, API_PORT)]

    def port(self, context: Context) -> int:
        return context.port("minio.port", context.config.minio.port)

    def console_port(self, context: Context) -> int:
        return context.port("minio.consolePort", context.config.minio.console_port)

    def containers(self, context: Context) -> list[ContainerSpec]:
        address = context.config.bind_address
        access_key, secret_key = credentials(context)
        return [
            ContainerSpec(
                component=NAME,
                node=NODE,
                image=context.images[IMAGE.repository],
                command=SERVER_COMMAND,
                hostname=NODE,
                volumes={"minio-data": "/data"},
                ports=(
                    PortBinding(API_PORT, address, self.port(context), "minio.port"),
                    PortBinding(
                        CONSOLE_PORT, address, self.console_port(context), "minio.consolePort"
                    ),
                ),
                environment={"MINIO_ROOT_USER": access_key, "MINIO_ROOT_PASSWORD": secret_key},
            )
        ]

    def started(self, context: Context) -> list[Probe]:
        return [Probe(NAME, "MinIO answers /minio/health/ready", lambda: self._healthy(context))]

    def seed(self, context: Context) -> None:
        client = self.client(context)
        try:
            for bucket in self.buckets(context):
                ensure_bucket(client, bucket, context.config.minio.object_expiry_days)
        except S3Error as error:
            raise TestbuildError(NAME, f"seeding buckets failed: {error}") from error

    def ready(self, context: Context) -> list[Probe]:
        return [Probe(NAME, "every user's bucket exists", lambda: self._buckets_exist(context))]

    def endpoints(self, context: Context) -> MinioEndpoints:
        access_key, secret_key = credentials(context)
        address = context.config.bind_address
        return MinioEndpoints(
            url=f"http://{address}:{self.port(context)}",
            console_url=f"http://{address}:{self.console_port(context)}",
            access_key=access_key,
            secret_key=secret_key,
            region=REGION,
            buckets=self.buckets(context),
            object_expiry_days=context.config.minio.object_expiry_days,
            network_url=f"http://{NODE}:{API_PORT}",
        )

    def client(self, context: Context) -> Minio:
        return self.endpoints(context).client()

    def buckets(self, context: Context) -> tuple[str, ...]:
        return tuple(bucket_of(user.name) for user in context.config.users)

    def _healthy(self, context: Context) -> str | None:
        url = f"http://{context.config.bind_address}:{self.port(context)}/minio/health/ready"
        response = urllib3.request("GET", url, timeout=2, retries=False)
        return None if response.status == 200 else f"HTTP {response.status}"

    def _buckets_exist(self, context: Context) -> str | None:
        existing = {bucket.name for bucket in self.client(context).list_buckets()}
        missing = [bucket for bucket in self.buckets(context) if bucket not in existing]
        return f"missing buckets: {', '.join(missing)}" if missing else None


def credentials(context: Context) -> tuple[str, str]:
    """Access and secret keys made per environment."""
    return (
        "tb" + context.state.password("minio-access-key")[: ACCESS_KEY_LENGTH - 2],
        context.state.password("minio-secret-key"),
    )


COMPONENT = MinioComponent()
