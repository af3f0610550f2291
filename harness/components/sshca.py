"""The SSH CA (sshca/) on http://<bindAddress>:<port>: signs users' keys with
the environment's user CA after checking their Keycloak token.

It speaks the two protocols FirecREST v2's SSH credential providers use, so
one URL serves as a v2 system's `SSHCA` url (`POST <url>/sign`, the DeiC SSH
CA's) and as its `SSHService` url (`POST <url>/api/v1/ssh-keys`). Its
certificates name the token's user, carry no force-command (v2 sends plain
commands) and log in to the cluster's login node, which trusts the same CA.
"""

from __future__ import annotations

import datetime
import json

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from firecrest_testbuild.harness.components import Context
from firecrest_testbuild.harness.config import EnvironmentConfig
from firecrest_testbuild.harness.contracts import KeycloakEndpoints, SshcaEndpoints
from firecrest_testbuild.harness.images import ImageSpec
from firecrest_testbuild.harness.readiness import Probe
from firecrest_testbuild.harness.runtime import ContainerSpec, Forward, PortBinding

NAME = "sshca"
NODE = "sshca"
HTTP_PORT = 8000
CA_KEY_IN_CONTAINER = "/run/sshca/user_ca"


IMAGE = ImageSpec("sshca", debian_release="trixie", sources=("sshca", "common"))


class SshcaComponent:
    name = NAME
    # Tokens come from Keycloak; the CA key is the environment's (state), the
    # one the cluster's login node trusts.
    requires = ("keycloak",)
    starts_after = requires

    def image(self, config: EnvironmentConfig) -> ImageSpec:
        return IMAGE

    volumes: tuple[str, ...] = ()
    endpoints_type = SshcaEndpoints

    def port(self, context: Context) -> int:
        return context.port("sshca.port", context.config.sshca.port)

    def url(self, context: Context) -> str:
        return f"http://{context.config.bind_address}:{self.port(context)}"

    def forwards(self, context: Context) -> list[Forward]:
        return []

    def containers(self, context: Context) -> list[ContainerSpec]:
        port = PortBinding(HTTP_PORT, context.config.bind_address, self.port(context), "sshca.port")
        return [
            ContainerSpec(
                component=NAME,
                node=NODE,
                image=context.images[IMAGE.repository],
                command=[],
                hostname=NODE,
                ports=(port,),
                files={
                    "sshca.json": (self.service_config(context).encode(), 0o644),
                    "user_ca": (context.state.user_ca.private_path.read_bytes(), 0o600),
                },
            )
        ]

    def service_config(self, context: Context) -> str:
        """The service's configuration file (see sshca/app.py's Settings)."""
        keycloak = context.endpoints(KeycloakEndpoints)
        document = {
            # Keys over the network's direct route; the issuer is the public URL.
            "jwksUrl": keycloak.network_jwks_url,
            "issuer": keycloak.issuer,
            "usernameClaim": "preferred_username",
            "caPrivateKey": CA_KEY_IN_CONTAINER,
            "certificateLifetime": context.config.sshca.certificate_lifetime,
        }
        return json.dumps(document, indent=2) + "\n"

    def started(self, context: Context) -> list[Probe]:
        return [Probe(NAME, "the SSH CA answers /_health", lambda: self._healthy(context))]

    def seed(self, context: Context) -> None:
        return None  # users and tokens are Keycloak's, the CA key is the state's

    def ready(self, context: Context) -> list[Probe]:
        return [
            Probe(
                NAME,
                "a real token gets a certificate of the environment's CA from both protocols",
                lambda: self._signs(context),
                timeout=30,
                transient=(OSError, requests.RequestException),
            )
        ]

    def endpoints(self, context: Context) -> SshcaEndpoints:
        url = self.url(context)
        return SshcaEndpoints(
            url=url,
            sign_url=f"{url}/sign",
            ssh_keys_url=f"{url}/api/v1/ssh-keys",
            certificate_lifetime=context.config.sshca.certificate_lifetime,
            network_url=f"http://{NODE}:{HTTP_PORT}",
        )

    def _healthy(self, context: Context) -> str | None:
        response = requests.get(f"{self.url(context)}/_health", timeout=5)
        return None if response.status_code == 200 else f"HTTP {response.status_code}"

    def _signs(self, context: Context) -> str | None:
        """Both protocols with a real token; each certificate must be the CA's, for the user."""
        keycloak = context.endpoints(KeycloakEndpoints)
        people = context.config.people
        if people:
            user, token = people[0].name, keycloak.token(user=people[0])
        else:
            user, token = keycloak.clients[0].service_account, keycloak.token()
        endpoints = self.endpoints(context)
        public = ed25519.Ed25519PrivateKey.generate().public_key()
        line = public.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        ).decode()
        signed = requests.post(
            endpoints.sign_url, data=json.dumps({"PublicKey": line, "OTT": token}), timeout=10
        )
        if signed.status_code != 200:
            return f"POST /sign: HTTP {signed.status_code}: {signed.text[:200]}"
        generated = requests.post(
            endpoints.ssh_keys_url,
            headers={"Authorization": f"Bearer {token}"},
            json={"duration": "1min", "username": user},
            timeout=10,
        )
        if generated.status_code != 201:
            return f"POST /api/v1/ssh-keys: HTTP {generated.status_code}: {generated.text[:200]}"
        certificate = str(generated.json()["sshKey"]["publicKey"])
        ca = context.state.user_ca.private_key().public_key()
        return certificate_problem(signed.text, ca, user) or certificate_problem(
            certificate, ca, user
        )


def certificate_problem(text: str, ca: ed25519.Ed25519PublicKey, user: str) -> str | None:
    """What is wrong with a certificate line the CA answered, if anything."""
    try:
        certificate = serialization.load_ssh_public_identity(text.strip().encode())
    except ValueError as error:
        return f"not an OpenSSH certificate: {error}"
    if not isinstance(certificate, serialization.SSHCertificate):
        return "a plain public key, not a certificate"
    try:
        certificate.verify_cert_signature()
    except InvalidSignature:
        return "its signature does not verify"
    if certificate.signature_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ) != ca.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH):
        return "signed by another CA than the environment's"
    if certificate.valid_principals != [user.encode()]:
        return f"principals {certificate.valid_principals!r}, not [{user!r}]"
    now = datetime.datetime.now(datetime.UTC).timestamp()
    if not certificate.valid_after <= now < certificate.valid_before:
        return "not valid now"
    return None


COMPONENT = SshcaComponent()
