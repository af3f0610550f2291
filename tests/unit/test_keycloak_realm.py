"""The realm's client mappers: what every token of a configured client carries."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from firecrest_testbuild.harness.config import parse
from firecrest_testbuild.harness.errors import TestbuildError
from firecrest_testbuild.harness.keycloak_realm import (
    EXTRA_AUDIENCE,
    KEY_PROVIDER,
    USER_PROFILE_CONFIG,
    USER_PROFILE_PROVIDER,
    RealmSeeder,
    client_mappers,
    key_id,
    key_providers,
    master_realm,
    signing_jwks,
)
from firecrest_testbuild.harness.keys import new_rsa_key


def test_a_client_puts_itself_in_aud_and_the_extra_audience_only_when_configured():
    plain = {mapper["name"]: mapper for mapper in client_mappers("firecrest-sample")}
    assert set(plain) == {"clientId", "firecrest-sample-audience"}
    assert plain["firecrest-sample-audience"]["config"]["included.client.audience"] == (
        "firecrest-sample"
    )
    extra = {m["name"]: m for m in client_mappers("firecrest-sample", "Firecrest-v2")}
    assert set(extra) == {"clientId", "firecrest-sample-audience", EXTRA_AUDIENCE}
    config = extra[EXTRA_AUDIENCE]["config"]
    assert config["included.custom.audience"] == "Firecrest-v2"
    assert config["access.token.claim"] == "true"


def rsa_keys(providers: list[dict[str, Any]]) -> dict[str, rsa.RSAPrivateKey]:
    keys = {}
    for provider in providers:
        if "privateKey" in provider["config"]:
            [pem] = provider["config"]["privateKey"]
            key = serialization.load_pem_private_key(pem.encode(), password=None)
            assert isinstance(key, rsa.RSAPrivateKey)
            keys[provider["config"]["algorithm"][0]] = key
    return keys


def test_a_realm_signs_and_encrypts_with_the_given_keys_and_generates_the_rest():
    signing, encryption = new_rsa_key(), new_rsa_key()
    providers = key_providers(signing, encryption)[KEY_PROVIDER]
    keys = rsa_keys(providers)
    assert set(keys) == {"RS256", "RSA-OAEP"}
    assert keys["RS256"].private_numbers() == signing.private_numbers()
    assert keys["RSA-OAEP"].private_numbers() == encryption.private_numbers()
    generated = {p["providerId"] for p in providers if "privateKey" not in p["config"]}
    assert generated == {"hmac-generated", "aes-generated"}


def test_the_master_realm_to_import_has_the_keys_and_requires_no_profile_attribute():
    """Keycloak's own master realm requires no attribute of a user's profile;
    an imported one would (the bootstrap admin could not log in)."""
    signing, encryption = new_rsa_key(), new_rsa_key()
    realm = master_realm(signing, encryption)
    assert (realm["realm"], realm["enabled"]) == ("master", True)
    assert realm["accessTokenLifespan"] == 60  # as Keycloak's own master realm: not 300
    keys = rsa_keys(realm["components"][KEY_PROVIDER])
    assert keys["RS256"].private_numbers() == signing.private_numbers()
    assert keys["RSA-OAEP"].private_numbers() == encryption.private_numbers()
    [profile] = realm["components"][USER_PROFILE_PROVIDER]
    [config] = profile["config"][USER_PROFILE_CONFIG]
    attributes = json.loads(config)["attributes"]
    assert [a["name"] for a in attributes] == ["username", "email", "firstName", "lastName"]
    assert not any("required" in attribute for attribute in attributes)


def test_the_published_signing_key_verifies_tokens_of_that_key_under_keycloaks_key_id():
    key = new_rsa_key()
    [published] = json.loads(signing_jwks(key.public_key()))["keys"]
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
    assert published["kid"] == key_id(key.public_key()) == digest
    assert {published[f] for f in ("kty", "alg", "use")} == {"RSA", "RS256", "sig"}
    token = jwt.encode({"sub": "test1"}, key, algorithm="RS256", headers={"kid": published["kid"]})
    verifier = jwt.PyJWKSet.from_dict({"keys": [published]})[published["kid"]]
    assert jwt.decode(token, verifier.key, algorithms=["RS256"]) == {"sub": "test1"}
    other = jwt.encode({"sub": "test1"}, new_rsa_key(), algorithm="RS256")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(other, verifier.key, algorithms=["RS256"])


class KeysAnswer:
    """The admin API's answer to GET /admin/realms/<realm>/keys, as far as read."""

    def __init__(self, active: str) -> None:
        self.active = active

    def json(self) -> dict[str, Any]:
        return {"active": {"RS256": self.active, "RSA-OAEP": "encryption"}}


def test_up_refuses_a_realm_whose_active_signing_key_is_not_the_environments(
    monkeypatch: pytest.MonkeyPatch,
):
    """Listed among the realm's keys is not enough: a key of higher priority
    would sign the tokens, and Slurm, given the environment's key, refuses them."""
    signing = new_rsa_key()
    seeder = RealmSeeder("http://keycloak", "admin", "pw", parse(""), {}, signing)
    ours = key_id(signing.public_key())
    monkeypatch.setattr(seeder, "_call", lambda method, path: KeysAnswer(ours))
    seeder.check_signing_key()
    monkeypatch.setattr(seeder, "_call", lambda method, path: KeysAnswer("another"))
    with pytest.raises(TestbuildError) as caught:
        seeder.check_signing_key()
    assert caught.value.message == (
        f"the realm signs with key another, not with the environment's key {ours},"
        " which the cluster trusts"
    )
    assert caught.value.fix == "remove the environment ('testbuild down') and bring it up again"
