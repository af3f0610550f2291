"""The realm's client mappers: what every token of a configured client carries."""

from __future__ import annotations

from firecrest_testbuild.harness.keycloak_realm import EXTRA_AUDIENCE, client_mappers


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
