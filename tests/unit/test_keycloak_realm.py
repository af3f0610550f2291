"""The realm's client mappers: what every token of a configured client carries."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from firecrest_testbuild.harness.keycloak_realm import (
    EXTRA_AUDIENCE,
    KEY_PROVIDER,
    client_mappers,
    key_providers,
)


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


def test_a_new_realm_gets_fresh_signing_and_encryption_keys_and_generates_the_rest():
    first, second = key_providers()[KEY_PROVIDER], key_providers()[KEY_PROVIDER]
    keys = rsa_keys(first)
    assert set(keys) == {"RS256", "RSA-OAEP"}
    assert all(key.key_size == 2048 for key in keys.values())
    assert keys["RS256"].private_numbers() != keys["RSA-OAEP"].private_numbers()
    again = rsa_keys(second)
    assert keys["RS256"].private_numbers() != again["RS256"].private_numbers()
    generated = {p["providerId"] for p in first if "privateKey" not in p["config"]}
    assert generated == {"hmac-generated", "aes-generated"}
