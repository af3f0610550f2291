"""The Keycloak realm, made to match the environment file through the admin REST API.

Idempotent: every object is read first and written only when it differs, so
running the seed again changes nothing, and objects the file does not name
are left alone, except users this seeder created (members of the group
`testbuild-users`) who are no longer in the file.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from firecrest_testbuild.harness.config import SERVICE_ACCOUNT_PREFIX, EnvironmentConfig, User
from firecrest_testbuild.harness.errors import TestbuildError
from firecrest_testbuild.harness.keys import new_rsa_key

MANAGED_GROUP = "testbuild-users"
TIMEOUT = 15


class TokenRefused(Exception):
    """The token endpoint said no; the message has its answer."""


def token_request(token_url: str, client_id: str, secret: str | None, form: dict[str, str]) -> str:
    """An access token from the token endpoint (no secret: a public client)."""
    credentials = {"client_id": client_id} | ({"client_secret": secret} if secret else {})
    response = requests.post(token_url, data={**form, **credentials}, timeout=TIMEOUT)
    if response.status_code != 200:
        raise TokenRefused(f"HTTP {response.status_code} from {token_url}: {response.text[:200]}")
    return str(response.json()["access_token"])


EXTRA_AUDIENCE = "testbuild-extra-audience"


def client_mappers(client_id: str, audience: str | None = None) -> list[dict[str, Any]]:
    """The mappers of a configured client: `clientId`, itself in `aud`, and
    the environment's extra audience when it has one."""
    mappers = [client_id_mapper(), audience_mapper(client_id)]
    return mappers + ([extra_audience_mapper(audience)] if audience else [])


def extra_audience_mapper(audience: str) -> dict[str, Any]:
    """`audience` in every access token of the client (FirecREST v2 checks one)."""
    return {
        "name": EXTRA_AUDIENCE,
        "protocol": "openid-connect",
        "protocolMapper": "oidc-audience-mapper",
        "config": {
            "included.custom.audience": audience,
            "access.token.claim": "true",
            "id.token.claim": "false",
            "introspection.token.claim": "true",
        },
    }


def audience_mapper(client_id: str) -> dict[str, Any]:
    """The client in `aud`, so that token introspection by the client accepts the token."""
    return {
        "name": f"{client_id}-audience",
        "protocol": "openid-connect",
        "protocolMapper": "oidc-audience-mapper",
        "config": {
            "included.client.audience": client_id,
            "access.token.claim": "true",
            "id.token.claim": "false",
            "introspection.token.claim": "true",
        },
    }


def client_id_mapper() -> dict[str, Any]:
    """Service-account tokens carry `clientId` (what FirecREST v1 reads).

    Keycloak 26 keeps the client's id in the session note `client_id`, which
    only service-account sessions have, so user tokens get no `clientId`.
    """
    return {
        "name": "clientId",
        "protocol": "openid-connect",
        "protocolMapper": "oidc-usersessionmodel-note-mapper",
        "config": {
            "user.session.note": "client_id",
            "claim.name": "clientId",
            "jsonType.label": "String",
            "access.token.claim": "true",
            "id.token.claim": "true",
            "introspection.token.claim": "true",
        },
    }


def client_representation(client_id: str, secret: str) -> dict[str, Any]:
    return {
        "clientId": client_id,
        "enabled": True,
        "protocol": "openid-connect",
        "publicClient": False,
        "clientAuthenticatorType": "client-secret",
        "secret": secret,
        "serviceAccountsEnabled": True,
        "directAccessGrantsEnabled": True,
        "standardFlowEnabled": False,
        "implicitFlowEnabled": False,
    }


# A client whose tokens expire within seconds, so that conformance suites can
# check that expired tokens are refused without waiting for a real one.
EXPIRY_PROBE = "testbuild-expiry-probe"
EXPIRY_PROBE_LIFESPAN = 3


def expiry_probe_representation(secret: str) -> dict[str, Any]:
    return {
        **client_representation(EXPIRY_PROBE, secret),
        "directAccessGrantsEnabled": False,
        "attributes": {"access.token.lifespan": str(EXPIRY_PROBE_LIFESPAN)},
    }


KEY_PROVIDER = "org.keycloak.keys.KeyProvider"


def key_providers(
    signing_key: rsa.RSAPrivateKey, encryption_key: rsa.RSAPrivateKey
) -> dict[str, list[dict[str, Any]]]:
    """A realm's keys, the same set Keycloak would make, with the two RSA keys
    made by the harness: Keycloak generating them on its cold, C1-only JVM
    takes seconds, OpenSSL milliseconds. The HMAC and AES keys Keycloak
    still makes itself (cheap)."""
    return {
        KEY_PROVIDER: [
            _rsa_provider("rsa", "RS256", signing_key),
            _rsa_provider("rsa-enc", "RSA-OAEP", encryption_key),
            _generated_provider("hmac-generated", "HS512"),
            _generated_provider("aes-generated", None),
        ]
    }


USER_PROFILE_PROVIDER = "org.keycloak.userprofile.UserProfileProvider"
USER_PROFILE_CONFIG = "kc.user.profile.config"


def _profile_attribute(name: str, validations: dict[str, Any]) -> dict[str, Any]:
    everyone = ["admin", "user"]
    return {
        "name": name,
        "displayName": "${" + name + "}",
        "validations": validations,
        "permissions": {"view": everyone, "edit": everyone},
        "multivalued": False,
    }


# The user profile of the master realm as Keycloak 26 makes it at its first
# start (read from one): like any realm's, but no attribute is required, so
# that the bootstrap admin (a user name and a password only) may log in. An
# imported realm gets the required ones instead, and the admin's login then
# ends in "Account is not fully set up".
MASTER_USER_PROFILE = {
    "attributes": [
        _profile_attribute(
            "username",
            {
                "length": {"min": 3, "max": 255},
                "username-prohibited-characters": {},
                "up-username-not-idn-homograph": {},
            },
        ),
        _profile_attribute("email", {"email": {}, "length": {"max": 255}}),
        _profile_attribute(
            "firstName", {"length": {"max": 255}, "person-name-prohibited-characters": {}}
        ),
        _profile_attribute(
            "lastName", {"length": {"max": 255}, "person-name-prohibited-characters": {}}
        ),
    ],
    "groups": [
        {
            "name": "user-metadata",
            "displayHeader": "User metadata",
            "displayDescription": "Attributes, which refer to user metadata",
        }
    ],
}


def master_realm(
    signing_key: rsa.RSAPrivateKey, encryption_key: rsa.RSAPrivateKey
) -> dict[str, Any]:
    """The master realm Keycloak imports at its first start instead of making
    its own: its settings where they differ from an import's defaults, its
    user profile, and the environment's RSA keys, which Keycloak would spend
    seconds generating (its bootstrap admin is still made from
    KC_BOOTSTRAP_ADMIN_*, after the import)."""
    profile = {
        "providerId": "declarative-user-profile",
        "subComponents": {},
        "config": {USER_PROFILE_CONFIG: [json.dumps(MASTER_USER_PROFILE)]},
    }
    components = key_providers(signing_key, encryption_key) | {USER_PROFILE_PROVIDER: [profile]}
    return {
        "realm": "master",
        "enabled": True,
        # Where Keycloak's own master realm differs from an imported one's
        # defaults (compared on 26.7.3): admin tokens last a minute.
        "accessTokenLifespan": 60,
        "displayName": "Keycloak",
        "displayNameHtml": '<div class="kc-logo-text"><span>Keycloak</span></div>',
        "components": components,
    }


def _rsa_provider(provider: str, algorithm: str, key: rsa.RSAPrivateKey) -> dict[str, Any]:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    config = {"privateKey": [pem], "priority": ["100"], "algorithm": [algorithm]}
    return {"name": provider, "providerId": provider, "config": config}


def key_id(public_key: rsa.RSAPublicKey) -> str:
    """The key id ("kid") Keycloak gives an RSA key: the unpadded base64url
    SHA-256 of its SubjectPublicKeyInfo (checked against a running realm)."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return _base64url(hashlib.sha256(der).digest())


def signing_jwks(public_key: rsa.RSAPublicKey) -> str:
    """The JWKS of the realm's signing key, as the realm publishes it (the
    fields a verifier such as Slurm's auth/jwt reads)."""
    numbers = public_key.public_numbers()
    key = {
        "kid": key_id(public_key),
        "kty": "RSA",
        "alg": "RS256",
        "use": "sig",
        "n": _base64url(_unsigned_bytes(numbers.n)),
        "e": _base64url(_unsigned_bytes(numbers.e)),
    }
    return json.dumps({"keys": [key]}, indent=2) + "\n"


def _unsigned_bytes(number: int) -> bytes:
    return number.to_bytes((number.bit_length() + 7) // 8, "big")


def _base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _generated_provider(provider: str, algorithm: str | None) -> dict[str, Any]:
    config = {"priority": ["100"]} | ({"algorithm": [algorithm]} if algorithm else {})
    return {"name": provider, "providerId": provider, "config": config}


def user_representation(user: User) -> dict[str, Any]:
    # First and last name and an address, so Keycloak's user profile has
    # nothing to ask for and the password grant is not refused with
    # "Account is not fully set up".
    return {
        "username": user.name,
        "enabled": True,
        "emailVerified": True,
        "firstName": user.name,
        "lastName": "Testbuild",
        "email": f"{user.name}@testbuild.invalid",
        "requiredActions": [],
    }


@dataclass
class RealmSeeder:
    base_url: str
    admin_user: str
    admin_password: str
    config: EnvironmentConfig
    client_secrets: dict[str, str]
    signing_key: rsa.RSAPrivateKey
    changes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.session = requests.Session()
        self.realm = self.config.keycloak.realm
        self.admin = f"{self.base_url}/admin/realms/{self.realm}"

    def apply(self) -> list[str]:
        """Make the realm match the config; returns what had to change."""
        self.changes = []
        self._login()
        realm = self._call("GET", "")
        if realm.status_code == 404:
            self._create_realm()
        else:
            self._update_realm(realm.json())
        self.check_signing_key()
        return self.changes

    def check_signing_key(self) -> None:
        """The realm must sign with the environment's key, which the cluster's
        Slurm was given before Keycloak started. A realm made before the
        harness kept its key, or whose keys were changed by hand, signs with
        another (of the keys it publishes, the one of highest priority)."""
        wanted = key_id(self.signing_key.public_key())
        active = self._call("GET", "/keys").json().get("active", {}).get("RS256", "(none)")
        if active != wanted:
            raise TestbuildError(
                "keycloak",
                f"the realm signs with key {active}, not with the environment's key {wanted},"
                " which the cluster trusts",
                fix="remove the environment ('testbuild down') and bring it up again",
            )

    def _update_realm(self, realm: dict[str, Any]) -> None:
        """An existing realm: each object compared with the config, written if it differs."""
        self._ensure_lifespan(realm)
        for client in self.config.keycloak.clients:
            secret = self.client_secrets[client.client_id]
            self._ensure_client(client.client_id, client_representation(client.client_id, secret))
        self._ensure_client(
            EXPIRY_PROBE, expiry_probe_representation(self.client_secrets[EXPIRY_PROBE])
        )
        group = self._ensure_group()
        wanted = self.config.people
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda user: self._ensure_user(user, group), wanted))
        self._remove_stale_users(group, {user.name for user in wanted})

    def _create_realm(self) -> None:
        """A new realm with everything in it, in one request (much faster than one
        request per object on a cold Keycloak)."""
        clients = [
            {
                **client_representation(c.client_id, self.client_secrets[c.client_id]),
                "protocolMappers": client_mappers(c.client_id, self.config.keycloak.audience),
            }
            for c in self.config.keycloak.clients
        ] + [
            # The same mappers as a later seeding ensures, so that it finds nothing to add.
            {
                **expiry_probe_representation(self.client_secrets[EXPIRY_PROBE]),
                "protocolMappers": client_mappers(EXPIRY_PROBE, self.config.keycloak.audience),
            }
        ]
        service_accounts = [
            {"username": c.service_account, "enabled": True, "serviceAccountClientId": c.client_id}
            for c in self.config.keycloak.clients
        ] + [
            {
                "username": f"{SERVICE_ACCOUNT_PREFIX}{EXPIRY_PROBE}",
                "enabled": True,
                "serviceAccountClientId": EXPIRY_PROBE,
            }
        ]
        people = [
            {
                **user_representation(user),
                "credentials": [{"type": "password", "value": user.password, "temporary": False}],
                "groups": [f"/{MANAGED_GROUP}"],
            }
            for user in self.config.people
        ]
        realm = {
            "realm": self.realm,
            "enabled": True,
            "accessTokenLifespan": self.config.keycloak.access_token_lifespan,
            "groups": [{"name": MANAGED_GROUP}],
            "clients": clients,
            "users": people + service_accounts,
            # The signing key is the environment's, which the cluster trusts
            # from its start; the encryption key is fresh for every realm.
            "components": key_providers(self.signing_key, new_rsa_key()),
        }
        response = self.session.post(f"{self.base_url}/admin/realms", json=realm, timeout=60)
        if response.status_code != 201:
            raise TestbuildError(
                "keycloak",
                f"creating realm {self.realm} failed with HTTP {response.status_code}",
                details=[response.text[:300]],
            )
        self.changes.append(
            f"created realm {self.realm} with {len(people)} users, {len(clients)} clients"
        )

    def _login(self) -> None:
        response = self.session.post(
            f"{self.base_url}/realms/master/protocol/openid-connect/token",
            data={
                "grant_type": "password",
                "client_id": "admin-cli",
                "username": self.admin_user,
                "password": self.admin_password,
            },
            timeout=TIMEOUT,
        )
        if response.status_code != 200:
            raise TestbuildError(
                "keycloak",
                f"the admin login was refused (HTTP {response.status_code})",
                fix="the keycloak-data volume holds another admin: 'testbuild down' and 'up' again",
            )
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        response = self.session.request(method, f"{self.admin}{path}", timeout=TIMEOUT, **kwargs)
        if response.status_code >= 400 and not (method == "GET" and response.status_code == 404):
            raise TestbuildError(
                "keycloak",
                f"{method} {path or '/'} failed with HTTP {response.status_code}",
                details=[response.text[:300]],
            )
        return response

    def _ensure_lifespan(self, realm: dict[str, Any]) -> None:
        lifespan = self.config.keycloak.access_token_lifespan
        if realm.get("accessTokenLifespan") != lifespan:
            self._call("PUT", "", json={"accessTokenLifespan": lifespan})
            self.changes.append(f"set accessTokenLifespan={lifespan}")

    def _ensure_client(self, client_id: str, wanted: dict[str, Any]) -> None:
        secret = wanted["secret"]
        found = self._call("GET", "/clients", params={"clientId": client_id}).json()
        if not found:
            mappers = client_mappers(client_id, self.config.keycloak.audience)
            self._call("POST", "/clients", json={**wanted, "protocolMappers": mappers})
            self.changes.append(f"created client {client_id}")
            return
        current, uuid = found[0], found[0]["id"]
        current_secret = self._call("GET", f"/clients/{uuid}/client-secret").json().get("value")
        if _differs(current, wanted, ignore={"secret"}) or current_secret != secret:
            self._call("PUT", f"/clients/{uuid}", json={**current, **wanted})
            self.changes.append(f"updated client {client_id}")
        self._ensure_mappers(client_id, uuid, current.get("protocolMappers", []))

    def _ensure_mappers(self, client_id: str, uuid: str, existing: list[dict[str, Any]]) -> None:
        present = {mapper["name"]: mapper for mapper in existing}
        models = f"/clients/{uuid}/protocol-mappers/models"
        wanted = client_mappers(client_id, self.config.keycloak.audience)
        stale = present.get(EXTRA_AUDIENCE)
        if stale is not None and EXTRA_AUDIENCE not in {mapper["name"] for mapper in wanted}:
            self._call("DELETE", f"{models}/{stale['id']}")
            self.changes.append(f"removed mapper {EXTRA_AUDIENCE} from {client_id}")
        for expected in wanted:
            mapper = present.get(expected["name"])
            if mapper is None:
                self._call("POST", models, json=expected)
                self.changes.append(f"added mapper {expected['name']} to {client_id}")
            elif _differs(mapper, expected) or _differs(mapper["config"], expected["config"]):
                body = {**mapper, **expected, "config": {**mapper["config"], **expected["config"]}}
                self._call("PUT", f"{models}/{mapper['id']}", json=body)
                self.changes.append(f"updated mapper {expected['name']} of {client_id}")

    def _ensure_group(self) -> str:
        groups = self._call("GET", "/groups", params={"search": MANAGED_GROUP, "exact": "true"})
        for group in groups.json():
            if group["name"] == MANAGED_GROUP:
                return str(group["id"])
        self._call("POST", "/groups", json={"name": MANAGED_GROUP})
        self.changes.append(f"created group {MANAGED_GROUP}")
        return self._ensure_group()

    def _ensure_user(self, user: User, group: str) -> None:
        wanted = user_representation(user)
        found = self._call("GET", "/users", params={"username": user.name, "exact": "true"}).json()
        if not found:
            credentials = [{"type": "password", "value": user.password, "temporary": False}]
            self._call("POST", "/users", json={**wanted, "credentials": credentials})
            uuid = self._call(
                "GET", "/users", params={"username": user.name, "exact": "true"}
            ).json()[0]["id"]
            self._call("PUT", f"/users/{uuid}/groups/{group}")
            self.changes.append(f"created user {user.name}")
            return
        current, uuid = found[0], found[0]["id"]
        if _differs(current, wanted):
            self._call("PUT", f"/users/{uuid}", json={**current, **wanted})
            self.changes.append(f"updated user {user.name}")
        if not self._password_works(user):
            self._call(
                "PUT",
                f"/users/{uuid}/reset-password",
                json={"type": "password", "value": user.password, "temporary": False},
            )
            self.changes.append(f"set the password of {user.name}")
        groups = self._call("GET", f"/users/{uuid}/groups").json()
        if group not in {entry["id"] for entry in groups}:
            self._call("PUT", f"/users/{uuid}/groups/{group}")

    def _password_works(self, user: User) -> bool:
        # admin-cli: the public client with direct grants every realm has.
        token_url = f"{self.base_url}/realms/{self.realm}/protocol/openid-connect/token"
        form = {"grant_type": "password", "username": user.name, "password": user.password}
        try:
            token_request(token_url, "admin-cli", None, form)
        except TokenRefused:
            return False
        return True

    def _remove_stale_users(self, group: str, wanted: set[str]) -> None:
        members = self._call("GET", f"/groups/{group}/members", params={"max": "1000"}).json()
        for member in members:
            if member["username"] not in wanted:
                self._call("DELETE", f"/users/{member['id']}")
                self.changes.append(f"removed user {member['username']}")


def _differs(current: dict[str, Any], wanted: dict[str, Any], ignore: Collection[str] = ()) -> bool:
    """True when a key we set has another value (keys Keycloak adds are ignored)."""
    return any(
        current.get(key) != value
        for key, value in wanted.items()
        if key not in ignore and not isinstance(value, dict)
    )
