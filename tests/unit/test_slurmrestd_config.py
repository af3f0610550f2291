"""slurmrestd (cluster.slurmrestd): on by default with Slurm 24.11 only, a clear
error when asked for on 22.05, the auth/jwt lines in slurm.conf and
slurmdbd.conf, the controller's port and JWKS URL, the endpoints, and the
parsing of the API versions the readiness probe checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from firecrest_testbuild.harness.components.cluster import (
    AUTH_ALT,
    COMPONENT,
    SLURMRESTD_PORT,
    SLURMRESTD_VERSIONS,
    served_versions,
    slurm_conf,
    slurmdbd_conf,
)
from firecrest_testbuild.harness.config import parse
from firecrest_testbuild.harness.contracts import ClusterEndpoints
from firecrest_testbuild.harness.environment import Environment
from firecrest_testbuild.harness.errors import ConfigError
from firecrest_testbuild.harness.keycloak_realm import key_id

JWT_LINES = [
    "AuthAltTypes=auth/jwt",
    "AuthAltParameters=jwks=/etc/slurm/jwks.json,userclaimfield=preferred_username,"
    "disable_token_creation",
]


class NoEngine:
    def info(self) -> dict[str, int]:
        return {"NCPU": 2}


def environment(tmp_path: Path, text: str) -> Environment:
    return Environment(parse(text), tmp_path / "state", client=NoEngine())  # type: ignore[arg-type]


def test_on_by_default_with_24_11_only():
    assert parse("cluster: {slurm: '24.11'}\n").cluster.slurmrestd_enabled
    assert not parse("cluster: {slurm: '22.05'}\n").cluster.slurmrestd_enabled
    assert parse("").cluster.slurmrestd_enabled
    off = parse("cluster: {slurm: '24.11', slurmrestd: {enabled: false}}\n").cluster
    assert not off.slurmrestd_enabled
    assert parse("").cluster.slurmrestd.port == SLURMRESTD_PORT == 6820


def test_asking_for_it_on_22_05_is_an_error_naming_24_11():
    with pytest.raises(ConfigError) as caught:
        parse("cluster:\n  slurm: '22.05'\n  slurmrestd:\n    enabled: true\n", "env.yaml")
    [problem] = caught.value.problems
    assert problem.startswith(
        "env.yaml:4: cluster.slurmrestd.enabled: slurmrestd needs Slurm 24.11"
    )
    assert 'set cluster.slurm to "24.11"' in problem


def test_unknown_keys_and_bad_ports_are_refused():
    with pytest.raises(ConfigError) as unknown:
        parse("cluster: {slurm: '24.11', slurmrestd: {prot: 1}}\n")
    assert "unknown key 'cluster.slurmrestd.prot'" in unknown.value.problems[0]
    with pytest.raises(ConfigError) as bad_port:
        parse("cluster: {slurm: '24.11', slurmrestd: {port: 70000}}\n")
    assert "cluster.slurmrestd.port" in bad_port.value.problems[0]


def test_slurm_conf_and_slurmdbd_conf_have_auth_jwt_only_with_slurmrestd():
    on = parse("cluster: {slurm: '24.11'}\n").cluster
    off = parse("cluster: {slurm: '24.11', slurmrestd: {enabled: false}}\n").cluster
    for lines in (
        slurm_conf(on, 2).decode().splitlines(),
        slurmdbd_conf(on, "pw").decode().splitlines(),
    ):
        assert [line for line in lines if line.startswith("AuthAlt")] == JWT_LINES
        assert "AuthType=auth/munge" in lines  # munge stays the daemons' own auth
    assert "AuthAlt" not in slurm_conf(off, 2).decode()
    assert "AuthAlt" not in slurmdbd_conf(off, "pw").decode()
    assert AUTH_ALT.splitlines() == JWT_LINES


def test_the_controller_publishes_it_and_is_given_the_realms_signing_key(tmp_path: Path):
    """Given as a file before anything starts, so the cluster need not wait for
    Keycloak: slurmdbd and slurmctld read it once, at start."""
    env = environment(tmp_path, "cluster: {slurm: '24.11', slurmrestd: {port: 7000}}\n")
    context = env.context().given_to(COMPONENT)
    controller = COMPONENT.containers(context)[0]
    assert [(p.container_port, p.host_ip, p.host_port) for p in controller.ports] == [
        (22, "127.0.0.1", 2222),
        (SLURMRESTD_PORT, "127.0.0.1", 7000),
    ]
    jwks, mode = controller.files["jwks.json"]
    [key] = json.loads(jwks)["keys"]
    assert key["kid"] == key_id(env.state.keycloak_key("realm-signing").public_key())
    assert mode == 0o644
    assert (COMPONENT.requires, COMPONENT.starts_after) == (("keycloak",), ())
    assert len(COMPONENT.ready(context)) == 3


def test_without_slurmrestd_nothing_of_it_is_there(tmp_path: Path):
    context = environment(tmp_path, "cluster: {slurm: '22.05'}\n").context().given_to(COMPONENT)
    controller = COMPONENT.containers(context)[0]
    assert [p.container_port for p in controller.ports] == [22]
    assert "jwks.json" not in controller.files
    assert len(COMPONENT.ready(context)) == 2
    assert COMPONENT.endpoints(context).slurmrestd is None


def test_endpoints_show_the_url_and_versions_and_keep_the_network_url_internal(tmp_path: Path):
    env = environment(tmp_path, "cluster: {slurm: '24.11', slurmrestd: {port: 7000}}\n")
    endpoints = env.endpoints().of(ClusterEndpoints)
    assert endpoints.network_slurmrestd_url == "http://cluster:6820"
    printed = endpoints.as_json()
    assert printed["slurmrestd"] == {
        "url": "http://127.0.0.1:7000",
        "versions": ["v0.0.40", "v0.0.41", "v0.0.42"],
    }
    assert "network_slurmrestd_url" not in printed
    assert (
        "slurmrestd: http://127.0.0.1:7000 (API v0.0.40, v0.0.41, v0.0.42; a Keycloak token"
        " as X-SLURM-USER-TOKEN, its user as X-SLURM-USER-NAME)"
    ) in endpoints.summary()
    assert endpoints.slurmrestd is not None
    assert endpoints.slurmrestd.headers("test1", "T") == {
        "X-SLURM-USER-NAME": "test1",
        "X-SLURM-USER-TOKEN": "T",
    }


def test_served_versions_come_from_the_openapi_paths_in_numeric_order():
    openapi = {
        "paths": {
            "/slurm/v0.0.42/jobs/": {},
            "/slurm/v0.0.40/job/submit": {},
            "/slurmdb/v0.0.41/accounts/": {},
            "/slurm/v0.0.100/ping/": {},
            "/openapi/v3": {},
            "/slurm/latest/jobs": {},
        }
    }
    assert served_versions(openapi) == ("v0.0.40", "v0.0.41", "v0.0.42", "v0.0.100")
    assert served_versions({}) == ()
    assert SLURMRESTD_VERSIONS["24.11"] == ("v0.0.40", "v0.0.41", "v0.0.42")
