"""Fixtures shared by the unit tests: the loopback identity provider's JWKS."""

from tests.unit.identity_provider import jwks_url  # noqa: F401  (a fixture)
