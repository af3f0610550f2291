"""Access tokens: RS256 JWTs of the realm, checked against its JWKS
(signature, expiry, issuer; audience only when configured, as FirecREST v2
does not check it by default). The user is the `preferred_username` claim."""

from __future__ import annotations

from typing import Any

import jwt

ALGORITHMS = ["RS256"]


class Refused(Exception):
    """A request that is not served: an HTTP status and a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def unauthorized(reason: str) -> Refused:
    return Refused(401, reason)


class TokenVerifier:
    """Turns a token into the user it speaks for, or refuses it (401)."""

    def __init__(
        self,
        jwks_url: str,
        issuer: str,
        username_claim: str = "preferred_username",
        audience: str | None = None,
    ) -> None:
        self.issuer = issuer
        self.username_claim = username_claim
        self.audience = audience
        self.keys = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300, timeout=10)

    def user_of(self, token: object) -> str:
        if not isinstance(token, str) or not token.strip():
            raise unauthorized("no access token given")
        claims = self._claims(token.strip())
        user = claims.get(self.username_claim)
        if not isinstance(user, str) or not user:
            raise unauthorized(f"the token has no '{self.username_claim}' claim")
        return user

    def _claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as error:
            raise unauthorized("the token is not a JWT") from error
        if header.get("alg") not in ALGORITHMS:
            raise unauthorized(f"the token is not signed with {', '.join(ALGORITHMS)}")
        key = self._signing_key(token)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp", "iss"], "verify_aud": self.audience is not None},
            )
        except jwt.ExpiredSignatureError as error:
            raise unauthorized("the token has expired") from error
        except jwt.InvalidIssuerError as error:
            raise unauthorized("the token was issued by another issuer") from error
        except jwt.InvalidAudienceError as error:
            raise unauthorized("the token is meant for another audience") from error
        except jwt.InvalidSignatureError as error:
            raise unauthorized("the token's signature is invalid") from error
        except jwt.InvalidTokenError as error:
            raise unauthorized(f"the token is invalid: {error}") from error
        return claims

    def _signing_key(self, token: str) -> Any:
        try:
            return self.keys.get_signing_key_from_jwt(token).key
        except jwt.PyJWKClientConnectionError as error:
            raise Refused(503, "the identity provider's signing keys cannot be fetched") from error
        except (jwt.PyJWKClientError, jwt.DecodeError) as error:
            # No key of the realm has this token's kid: someone else signed it.
            raise unauthorized("the token is not signed by the realm's keys") from error
