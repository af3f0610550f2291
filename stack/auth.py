"""Bearer tokens: RS256 JWTs from the identity provider, checked against its
JWKS (signature, expiry, issuer, and audience and scopes when configured).

A refusal is a 401 with the bodies FirecREST v1's gateway answers with, so
clients that match on them keep working.
"""

from __future__ import annotations

import jwt

from firecrest_testbuild.stack.config import Auth
from firecrest_testbuild.stack.errors import ApiError, Unauthorized

NO_HEADER = {"description": "No Authorization Header given"}
MALFORMED = {"message": "Bad token; invalid JSON"}
EXPIRED = {"exp": "token expired"}
BAD_SIGNATURE = {"message": "Invalid signature"}
WRONG_ISSUER = {"message": "No credentials found for given 'iss'"}
WRONG_AUDIENCE = {"message": "Invalid audience"}
MISSING_SCOPE = {"message": "Token lacks a required scope"}
NO_USER = {"message": "Token names no user"}

ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384"]


class TokenVerifier:
    """Turns an Authorization header into the user it speaks for."""

    def __init__(self, settings: Auth) -> None:
        self.settings = settings
        self.keys = jwt.PyJWKClient(settings.jwks_url, cache_keys=True, lifespan=300, timeout=10)

    def user_of(self, authorization: str | None) -> str:
        if not authorization:
            raise Unauthorized(NO_HEADER)
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized(MALFORMED)
        claims = self._verified_claims(token.strip())
        self._check_scopes(claims)
        user = claims.get(self.settings.username_claim)
        if not isinstance(user, str) or not user:
            raise Unauthorized(NO_USER)
        return user

    def _verified_claims(self, token: str) -> dict:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as error:
            raise Unauthorized(MALFORMED) from error
        if header.get("alg") not in ALGORITHMS:
            raise Unauthorized(BAD_SIGNATURE)
        key = self._signing_key(token)
        try:
            return jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                issuer=self.settings.issuer,
                audience=self.settings.audience,
                options={
                    "require": ["exp", "iss"],
                    "verify_aud": self.settings.audience is not None,
                },
            )
        except jwt.ExpiredSignatureError as error:
            raise Unauthorized(EXPIRED) from error
        except jwt.InvalidIssuerError as error:
            raise Unauthorized(WRONG_ISSUER) from error
        except jwt.InvalidAudienceError as error:
            raise Unauthorized(WRONG_AUDIENCE) from error
        except jwt.InvalidSignatureError as error:
            raise Unauthorized(BAD_SIGNATURE) from error
        except jwt.InvalidTokenError as error:
            raise Unauthorized(MALFORMED) from error

    def _signing_key(self, token: str):
        try:
            return self.keys.get_signing_key_from_jwt(token).key
        except jwt.PyJWKClientConnectionError as error:
            raise ApiError(503, "The identity provider's signing keys cannot be fetched") from error
        except (jwt.PyJWKClientError, jwt.DecodeError) as error:
            # No key of the provider has this token's kid: not signed by it.
            raise Unauthorized(BAD_SIGNATURE) from error

    def _check_scopes(self, claims: dict) -> None:
        granted = set(str(claims.get("scope", "")).split())
        if not set(self.settings.required_scopes) <= granted:
            raise Unauthorized(MISSING_SCOPE)
