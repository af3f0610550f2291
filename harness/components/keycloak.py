"""Keycloak: the identity provider whose tokens FirecREST accepts.

Built from Keycloak's server distribution on Maven Central (downloaded on the
host, cached), served under /auth with one fixed public base URL: the token
issuer is http://<bindAddress>:<port>/auth/realms/<realm> whether a token is
fetched from the host or from a container (which reaches the same address
through the cluster nodes' loopback forwards, or keycloak:8080 directly).
The realm is seeded from the users file through the admin REST API; its token
signing key is the environment's (made by the harness before anything
starts), so verifiers that read keys once, at start, need not wait for it.
The master realm is imported at Keycloak's first start from a file the
harness renders with the environment's keys (Keycloak would otherwise spend
seconds generating them); Keycloak then adds the bootstrap admin.
"""

from __future__ import annotations

import json

import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from firecrest_testbuild.harness.components import Context
from firecrest_testbuild.harness.config import EnvironmentConfig
from firecrest_testbuild.harness.contracts import (
    AdminCredentials,
    ClientSecret,
    KeycloakClient,
    KeycloakEndpoints,
)
from firecrest_testbuild.harness.images import Download, ImageSpec
from firecrest_testbuild.harness.keycloak_realm import (
    EXPIRY_PROBE,
    RealmSeeder,
    TokenRefused,
    master_realm,
    signing_jwks,
)
from firecrest_testbuild.harness.readiness import Probe
from firecrest_testbuild.harness.runtime import ContainerSpec, Forward, PortBinding

NAME = "keycloak"
NODE = "keycloak"
HTTP_PORT = 8080
VERSION = "26.7.3"
DISTRIBUTION = (
    "https://repo1.maven.org/maven2/org/keycloak/keycloak-quarkus-dist/"
    f"{VERSION}/keycloak-quarkus-dist-{VERSION}.zip"
)
ADMIN_USER = "testbuild-admin"
# Under /etc/testbuild: realms the image's entrypoint hands Keycloak to import.
IMPORT_FOLDER = "realms"

IMAGE = ImageSpec(
    "keycloak",
    debian_release="trixie",
    downloads=(Download(DISTRIBUTION, "downloads/keycloak.zip", DISTRIBUTION + ".sha1"),),
)


class KeycloakComponent:
    name = NAME
    requires: tuple[str, ...] = ()
    starts_after: tuple[str, ...] = ()
    volumes = ("keycloak-data",)
    endpoints_type = KeycloakEndpoints

    def image(self, config: EnvironmentConfig) -> ImageSpec:
        return IMAGE

    def port(self, context: Context) -> int:
        return context.port("keycloak.port", context.config.keycloak.port)

    def base_url(self, context: Context) -> str:
        return f"http://{context.config.bind_address}:{self.port(context)}/auth"

    def forwards(self, context: Context) -> list[Forward]:
        return [Forward(context.config.bind_address, self.port(context), NODE, HTTP_PORT)]

    def containers(self, context: Context) -> list[ContainerSpec]:
        return [
            ContainerSpec(
                component=NAME,
                node=NODE,
                image=context.images[IMAGE.repository],
                command=[],
                hostname=NODE,
                volumes={"keycloak-data": "/opt/keycloak/data"},
                ports=(
                    PortBinding(
                        HTTP_PORT, context.config.bind_address, self.port(context), "keycloak.port"
                    ),
                ),
                environment={
                    "KC_HOSTNAME": self.base_url(context),
                    "KC_BOOTSTRAP_ADMIN_USERNAME": ADMIN_USER,
                    "KC_BOOTSTRAP_ADMIN_PASSWORD": admin_password(context),
                },
                # Imported at the first start (the entrypoint's --import-realm).
                files={f"{IMPORT_FOLDER}/master-realm.json": (master_realm_file(context), 0o600)},
            )
        ]

    def started(self, context: Context) -> list[Probe]:
        url = f"{self.base_url(context)}/realms/master/.well-known/openid-configuration"
        return [Probe(NAME, "Keycloak serves the master realm", lambda: _answers(url), timeout=120)]

    def seed(self, context: Context) -> None:
        self.seeder(context).apply()

    def seeder(self, context: Context) -> RealmSeeder:
        return RealmSeeder(
            base_url=self.base_url(context),
            admin_user=ADMIN_USER,
            admin_password=admin_password(context),
            config=context.config,
            client_secrets={
                client.client_id: client_secret(context, client.client_id)
                for client in context.config.keycloak.clients
            }
            | {EXPIRY_PROBE: client_secret(context, EXPIRY_PROBE)},
            signing_key=realm_signing_key(context),
        )

    def ready(self, context: Context) -> list[Probe]:
        realm = f"{self.base_url(context)}/realms/{context.config.keycloak.realm}"
        return [
            Probe(
                NAME,
                "the realm is published",
                lambda: _answers(f"{realm}/.well-known/openid-configuration"),
            ),
            Probe(
                NAME,
                "a real token grant works",
                lambda: self._grants_work(context),
                transient=(OSError, TokenRefused),
            ),
        ]

    def endpoints(self, context: Context) -> KeycloakEndpoints:
        realm = context.config.keycloak.realm
        issuer = f"{self.base_url(context)}/realms/{realm}"
        # The direct route inside the environment's network (same issuer in tokens).
        network_realm = f"http://{NODE}:{HTTP_PORT}/auth/realms/{realm}"
        return KeycloakEndpoints(
            url=self.base_url(context),
            realm=realm,
            issuer=issuer,
            token_url=f"{issuer}/protocol/openid-connect/token",
            jwks_url=f"{issuer}/protocol/openid-connect/certs",
            admin=AdminCredentials(ADMIN_USER, admin_password(context)),
            clients=tuple(
                KeycloakClient(
                    client.client_id,
                    client_secret(context, client.client_id),
                    client.service_account,
                )
                for client in context.config.keycloak.clients
            ),
            expiry_probe=ClientSecret(EXPIRY_PROBE, client_secret(context, EXPIRY_PROBE)),
            network_jwks_url=f"{network_realm}/protocol/openid-connect/certs",
            signing_jwks=signing_jwks(realm_signing_key(context).public_key()),
        )

    def _grants_work(self, context: Context) -> str | None:
        endpoints = self.endpoints(context)
        people = context.config.people
        if people:
            endpoints.token(user=people[0])
        for client in endpoints.clients:
            endpoints.token(client=client.client_id)
        return None


def realm_signing_key(context: Context) -> rsa.RSAPrivateKey:
    """The realm's token signing key, which the cluster trusts from its start."""
    return context.state.keycloak_key("realm-signing")


def master_realm_file(context: Context) -> bytes:
    state = context.state
    realm = master_realm(
        state.keycloak_key("master-signing"), state.keycloak_key("master-encryption")
    )
    return json.dumps(realm, indent=1).encode()


def admin_password(context: Context) -> str:
    return context.state.password("keycloak-admin")


def client_secret(context: Context, client_id: str) -> str:
    for client in context.config.keycloak.clients:
        if client.client_id == client_id and client.secret:
            return client.secret
    return context.state.password(f"keycloak-client-{client_id}")


def _answers(url: str) -> str | None:
    response = requests.get(url, timeout=5)
    return None if response.status_code == 200 else f"HTTP {response.status_code} from {url}"


COMPONENT = KeycloakComponent()
