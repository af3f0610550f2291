"""Keycloak: the identity provider whose tokens FirecREST accepts.

Built from Keycloak's server distribution on Maven Central (downloaded on the
host, cached), served under /auth with one fixed public base URL: the token
issuer is http://<bindAddress>:<port>/auth/realms/<realm> whether a token is
fetched from the host or from a container (which reaches the same address
through the cluster nodes' loopback forwards, or keycloak:8080 directly).
The realm is seeded from the users file through the admin REST API.
"""

from __future__ import annotations

from typing import Any

import requests

from firecrest_testbuild.harness.components import Context
from firecrest_testbuild.harness.images import Download, ImageSpec
from firecrest_testbuild.harness.keycloak_realm import (
    EXPIRY_PROBE,
    RealmSeeder,
    TokenRefused,
    token_request,
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


class KeycloakComponent:
    name = NAME
    image = ImageSpec(
        "keycloak",
        debian_release="trixie",
        downloads=(Download(DISTRIBUTION, "downloads/keycloak.zip", DISTRIBUTION + ".sha1"),),
    )
    volumes = ("keycloak-data",)

    def port(self, context: Context) -> int:
        return context.port("keycloak.port", context.config.keycloak.port)

    def base_url(self, context: Context) -> str:
        return f"http://{context.config.bind_address}:{self.port(context)}/auth"

    def internal_base_url(self) -> str:
        """The direct route inside the environment's network (same issuer in tokens)."""
        return f"http://{NODE}:{HTTP_PORT}/auth"

    def forwards(self, context: Context) -> list[Forward]:
        return [Forward(context.config.bind_address, self.port(context), NODE, HTTP_PORT)]

    def containers(self, context: Context) -> list[ContainerSpec]:
        return [
            ContainerSpec(
                component=NAME,
                node=NODE,
                image=context.images[self.image.folder],
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

    def endpoints(self, context: Context) -> dict[str, Any]:
        realm = context.config.keycloak.realm
        issuer = f"{self.base_url(context)}/realms/{realm}"
        return {
            "url": self.base_url(context),
            "realm": realm,
            "issuer": issuer,
            "token_url": f"{issuer}/protocol/openid-connect/token",
            "jwks_url": f"{issuer}/protocol/openid-connect/certs",
            "admin": {"user": ADMIN_USER, "password": admin_password(context)},
            "clients": [
                {
                    "client_id": client.client_id,
                    "secret": client_secret(context, client.client_id),
                    "service_account": client.service_account,
                }
                for client in context.config.keycloak.clients
            ],
            # Tokens that expire after a few seconds, for expiry checks.
            "expiry_probe": {
                "client_id": EXPIRY_PROBE,
                "secret": client_secret(context, EXPIRY_PROBE),
            },
        }

    def token(self, context: Context, user: str | None = None, client: str | None = None) -> str:
        """An access token: a user's (password grant) or a client's (client credentials)."""
        endpoints = self.endpoints(context)
        clients = {entry["client_id"]: entry["secret"] for entry in endpoints["clients"]}
        client_id = client or next(iter(clients))
        if user is None:
            form = {"grant_type": "client_credentials"}
        else:
            form = {
                "grant_type": "password",
                "username": user,
                "password": context.config.user(user).password,
            }
        return token_request(endpoints["token_url"], client_id, clients[client_id], form)

    def _grants_work(self, context: Context) -> str | None:
        people = context.config.people
        if people:
            self.token(context, user=people[0].name)
        for client in context.config.keycloak.clients:
            self.token(context, client=client.client_id)
        return None


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
