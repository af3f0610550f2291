"""Bearer tokens are checked against the provider's JWKS, served here on loopback."""

from __future__ import annotations

import time

import jwt
import pytest

from firecrest_testbuild.stack.auth import TokenVerifier
from firecrest_testbuild.stack.config import Auth
from firecrest_testbuild.stack.errors import ApiError, Unauthorized
from tests.unit.identity_provider import ISSUER, OTHER_KEY, token


def refusal(verifier: TokenVerifier, header: str | None) -> dict:
    with pytest.raises(Unauthorized) as raised:
        verifier.user_of(header)
    assert raised.value.status == 401
    return raised.value.body or {}


def test_a_valid_token_names_its_user(jwks_url: str):
    verifier = TokenVerifier(Auth(jwks_url=jwks_url, issuer=ISSUER))
    assert verifier.user_of(f"Bearer {token()}") == "test1"
    assert verifier.user_of(f"bearer {token(preferred_username='service-account-x')}") == (
        "service-account-x"
    )


def test_refusals_carry_the_gateways_bodies(jwks_url: str):
    verifier = TokenVerifier(Auth(jwks_url=jwks_url, issuer=ISSUER))
    assert refusal(verifier, None) == {"description": "No Authorization Header given"}
    assert refusal(verifier, "Basic abc") == {"message": "Bad token; invalid JSON"}
    assert refusal(verifier, "Bearer not.a.jwt") == {"message": "Bad token; invalid JSON"}
    assert refusal(verifier, f"Bearer {token(exp=int(time.time()) - 5)}") == {
        "exp": "token expired"
    }
    assert refusal(verifier, f"Bearer {token(key=OTHER_KEY)}") == {"message": "Invalid signature"}
    assert refusal(verifier, f"Bearer {token(kid='unknown')}") == {"message": "Invalid signature"}
    assert refusal(verifier, f"Bearer {token(iss='http://elsewhere')}") == {
        "message": "No credentials found for given 'iss'"
    }
    assert refusal(verifier, f"Bearer {token(preferred_username=None)}") == {
        "message": "Token names no user"
    }
    unsigned = jwt.encode({"iss": ISSUER, "exp": int(time.time()) + 60}, None, "none")
    assert refusal(verifier, f"Bearer {unsigned}") == {"message": "Invalid signature"}


def test_audience_and_scopes_are_checked_when_configured(jwks_url: str):
    verifier = TokenVerifier(
        Auth(jwks_url=jwks_url, issuer=ISSUER, audience="firecrest", required_scopes=("firecrest",))
    )
    good = token(aud="firecrest", scope="openid firecrest")
    assert verifier.user_of(f"Bearer {good}") == "test1"
    assert refusal(verifier, f"Bearer {token(aud='other', scope='firecrest')}") == {
        "message": "Invalid audience"
    }
    assert refusal(verifier, f"Bearer {token(aud='firecrest', scope='openid')}") == {
        "message": "Token lacks a required scope"
    }


def test_an_unreachable_provider_is_a_503_not_a_client_error():
    verifier = TokenVerifier(Auth(jwks_url="http://127.0.0.1:9/certs", issuer=ISSUER))
    with pytest.raises(ApiError) as raised:
        verifier.user_of(f"Bearer {token()}")
    assert raised.value.status == 503
