"""Keycloak issues the tokens FirecREST accepts, seeded from the users file.

The environment under test is the v2 login environment (conftest's
V2_LOGIN_CLUSTER: a realm without an extra audience); the split environment,
whose realm adds one, is the other environment the comparisons need. (Both
are up on the worker that runs these files already: see tests/conftest.py.)"""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest
import requests
from keycloak import KeycloakAdmin

from firecrest_testbuild.harness.environment import Environment
from firecrest_testbuild.harness.keycloak_realm import key_id, signing_jwks
from tests.integration.conftest import (
    V2_AUDIENCE,
    keycloak,
    keycloak_of,
    login_node,
    output_of,
    short_lived_token,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def endpoints(v2_login_environment: Environment) -> dict[str, Any]:
    return keycloak(v2_login_environment).as_json()  # as `testbuild env --json` shows it


@pytest.fixture(scope="module")
def admin(endpoints: dict[str, Any]) -> KeycloakAdmin:
    return KeycloakAdmin(
        server_url=endpoints["url"] + "/",
        username=endpoints["admin"]["user"],
        password=endpoints["admin"]["password"],
        realm_name=endpoints["realm"],
        user_realm_name="master",
    )


def grant(endpoints: dict[str, Any], **form: str) -> requests.Response:
    client = endpoints["clients"][0]
    data = {"client_id": client["client_id"], "client_secret": client["secret"], **form}
    return requests.post(endpoints["token_url"], data=data, timeout=15)


def verified(endpoints: dict[str, Any], token: str) -> dict[str, Any]:
    key = jwt.PyJWKClient(endpoints["jwks_url"]).get_signing_key_from_jwt(token)
    return jwt.decode(
        token,
        key.key,
        algorithms=["RS256"],
        issuer=endpoints["issuer"],
        audience=endpoints["clients"][0]["client_id"],
    )


def test_password_grant_gives_an_rs256_token_for_the_user(endpoints: dict[str, Any]):
    response = grant(endpoints, grant_type="password", username="test1", password="test11")
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = verified(endpoints, token)
    assert claims["preferred_username"] == "test1"
    assert "clientId" not in claims
    assert claims["iss"].endswith("/auth/realms/kcrealm")


def test_tokens_carry_the_configured_audience_and_none_without_it(
    endpoints: dict[str, Any], split_environment: Environment
):
    plain = grant(endpoints, grant_type="password", username="test1", password="test11")
    assert V2_AUDIENCE not in audiences(plain.json()["access_token"])
    configured = keycloak(split_environment).as_json()
    for form in (
        {"grant_type": "password", "username": "test1", "password": "test11"},
        {"grant_type": "client_credentials"},
    ):
        answer = grant(configured, **form)
        assert answer.status_code == 200, answer.text
        claims = verified(configured, answer.json()["access_token"])
        assert {V2_AUDIENCE, configured["clients"][0]["client_id"]} <= audiences(claims), claims


def audiences(token_or_claims: str | dict[str, Any]) -> set[str]:
    claims = (
        jwt.decode(token_or_claims, options={"verify_signature": False})
        if isinstance(token_or_claims, str)
        else token_or_claims
    )
    aud = claims.get("aud", [])
    return {aud} if isinstance(aud, str) else set(aud)


def test_client_credentials_give_the_service_account_with_client_id(endpoints: dict[str, Any]):
    response = grant(endpoints, grant_type="client_credentials")
    assert response.status_code == 200, response.text
    claims = verified(endpoints, response.json()["access_token"])
    assert claims["preferred_username"] == "service-account-firecrest-sample"
    assert claims["clientId"] == "firecrest-sample"


def test_the_master_realm_holds_only_the_environments_admin(endpoints: dict[str, Any]):
    """The image's database was made by a start at build time with a throwaway
    admin: none of it may be left, and the environment's admin must work."""
    master = KeycloakAdmin(
        server_url=endpoints["url"] + "/",
        username=endpoints["admin"]["user"],
        password=endpoints["admin"]["password"],
        realm_name="master",
    )
    assert [user["username"] for user in master.get_users()] == [endpoints["admin"]["user"]]
    refused = requests.post(
        endpoints["url"] + "/realms/master/protocol/openid-connect/token",
        data={
            "grant_type": "password",
            "client_id": "admin-cli",
            "username": endpoints["admin"]["user"],
            "password": endpoints["admin"]["password"] + "x",
        },
        timeout=15,
    )
    assert refused.json()["error"] == "invalid_grant", refused.text


def test_every_environment_has_its_own_keys(
    endpoints: dict[str, Any], split_environment: Environment
):
    """Neither the image (master realm) nor the harness (the realm's keys it
    makes) hands two environments the same key."""
    other = keycloak(split_environment).as_json()

    def kids(base: dict[str, Any], realm: str) -> set[str]:
        url = f"{base['url']}/realms/{realm}/protocol/openid-connect/certs"
        return {key["kid"] for key in requests.get(url, timeout=15).json()["keys"]}

    for realm in ("master", endpoints["realm"]):
        mine, theirs = kids(endpoints, realm), kids(other, realm)
        assert mine and theirs and not mine & theirs, realm
    served = requests.get(endpoints["jwks_url"], timeout=15).json()["keys"]
    assert {(key["alg"], key["use"]) for key in served} == {("RS256", "sig"), ("RSA-OAEP", "enc")}


def test_the_realm_signs_with_the_key_the_cluster_was_given_before_it_started(
    v2_login_environment: Environment, endpoints: dict[str, Any]
):
    """The harness makes the realm's signing key; Slurm (slurmdbd, slurmctld and
    slurmrestd, which read keys once, at start) is handed its JWKS as a file
    instead of fetching it from a Keycloak that may still be booting."""
    state_key = v2_login_environment.state.keycloak_key("realm-signing").public_key()
    served = requests.get(endpoints["jwks_url"], timeout=15).json()["keys"]
    [signing] = [key for key in served if key["use"] == "sig"]
    [given] = json.loads(signing_jwks(state_key))["keys"]
    assert {f: signing[f] for f in given} == given
    controller = v2_login_environment.runtime.container("controller")
    assert json.loads(output_of(controller, ["cat", "/etc/slurm/jwks.json"])) == {"keys": [given]}
    user = v2_login_environment.config.people[0]
    token = keycloak(v2_login_environment).token(user=user)
    assert jwt.get_unverified_header(token)["kid"] == given["kid"]


def test_the_master_realm_is_imported_with_the_environments_keys_and_its_admin_works(
    v2_login_environment: Environment, endpoints: dict[str, Any], admin: KeycloakAdmin
):
    """Keycloak imports the master realm the harness renders instead of
    generating its keys on a cold JVM; the bootstrap admin still logs in."""
    state = v2_login_environment.state
    url = f"{endpoints['url']}/realms/master/protocol/openid-connect/certs"
    served = {key["use"]: key["kid"] for key in requests.get(url, timeout=15).json()["keys"]}
    assert served == {
        "sig": key_id(state.keycloak_key("master-signing").public_key()),
        "enc": key_id(state.keycloak_key("master-encryption").public_key()),
    }
    assert endpoints["realm"] in {realm["realm"] for realm in admin.get_realms()}


def test_wrong_password_and_wrong_secret_are_refused(endpoints: dict[str, Any]):
    wrong_password = grant(endpoints, grant_type="password", username="test1", password="nope")
    assert wrong_password.status_code == 400
    assert wrong_password.json()["error"] == "invalid_grant"
    wrong_secret = requests.post(
        endpoints["token_url"],
        data={
            "grant_type": "client_credentials",
            "client_id": "firecrest-sample",
            "client_secret": "x",
        },
        timeout=15,
    )
    assert wrong_secret.status_code == 401


def test_a_token_past_its_expiry_is_rejected_by_the_verifier(
    v2_login_environment: Environment, endpoints: dict[str, Any]
):
    with short_lived_token(v2_login_environment, lifespan=2) as token:
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["exp"] - claims["iat"] == 2
        time.sleep(3)
        key = jwt.PyJWKClient(endpoints["jwks_url"]).get_signing_key_from_jwt(token)
        with pytest.raises(jwt.ExpiredSignatureError):
            jwt.decode(token, key.key, algorithms=["RS256"], options={"verify_aud": False})


def test_the_issuer_is_the_same_inside_the_cluster(
    endpoints: dict[str, Any], v2_login_environment: Environment
):
    login = login_node(v2_login_environment)
    client = endpoints["clients"][0]
    form = (
        f"-d grant_type=client_credentials -d client_id={client['client_id']}"
        f" -d client_secret={client['secret']}"
    )
    internal = endpoints["token_url"].replace(endpoints["url"], "http://keycloak:8080/auth")
    for url in (endpoints["token_url"], internal):
        result = login.run("test1", f"curl --silent --fail {form} {url}")
        assert result.exit_status == 0, (url, result.stderr)
        token = json.loads(result.stdout)["access_token"]
        assert verified(endpoints, token)["iss"] == endpoints["issuer"]


def test_admin_client_lists_seeded_users_and_client_and_reseeding_changes_nothing(
    v2_login_environment: Environment, admin: KeycloakAdmin
):
    usernames = {user["username"] for user in admin.get_users()}
    assert {"test1", "test2", "testuser"} <= usernames
    [client] = [c for c in admin.get_clients() if c["clientId"] == "firecrest-sample"]
    assert client["serviceAccountsEnabled"] and not client["publicClient"]
    service_account = admin.get_client_service_account_user(client["id"])
    assert service_account["username"] == "service-account-firecrest-sample"
    before = {user["username"]: user["id"] for user in admin.get_users()}

    keycloak = keycloak_of(v2_login_environment)
    assert keycloak.seeder(v2_login_environment.context()).apply() == []
    assert {user["username"]: user["id"] for user in admin.get_users()} == before
