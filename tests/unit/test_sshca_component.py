"""The sshca component: what it gives its container, what it publishes, and
the check its readiness probe applies to the certificates it gets."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from firecrest_testbuild.common.certificates import sign_user_certificate
from firecrest_testbuild.harness.cli import _summary
from firecrest_testbuild.harness.components.sshca import (
    SshcaComponent,
    SshcaEndpoints,
    certificate_problem,
)
from firecrest_testbuild.harness.config import parse
from firecrest_testbuild.harness.environment import Environment


class NoEngine:
    def info(self) -> dict[str, int]:
        return {"NCPU": 2}


def environment(tmp_path: Path, text: str = "") -> Environment:
    return Environment(parse(text), tmp_path / "state", client=NoEngine())  # type: ignore[arg-type]


def test_the_container_gets_its_config_and_the_environments_ca_key(tmp_path: Path):
    env = environment(tmp_path, "sshca: {port: 2290, certificateLifetime: 120}")
    context = env.context()
    component = env.component("sshca")
    assert isinstance(component, SshcaComponent)
    [container] = component.containers(context.given_to(component))
    assert [(p.container_port, p.host_ip, p.host_port) for p in container.ports] == [
        (8000, "127.0.0.1", 2290)
    ]
    config, config_mode = container.files["sshca.json"]
    key, key_mode = container.files["user_ca"]
    assert (config_mode, key_mode) == (0o644, 0o600)
    assert key == context.state.user_ca.private_path.read_bytes()
    assert json.loads(config) == {
        "jwksUrl": "http://keycloak:8080/auth/realms/kcrealm/protocol/openid-connect/certs",
        "issuer": "http://127.0.0.1:8080/auth/realms/kcrealm",
        "usernameClaim": "preferred_username",
        "caPrivateKey": "/run/sshca/user_ca",
        "certificateLifetime": 120,
    }


def test_testbuild_env_and_up_show_the_url(tmp_path: Path):
    endpoints = environment(tmp_path).endpoints()
    printed = endpoints.as_json()["sshca"]
    assert printed == {
        "url": "http://127.0.0.1:2280",
        "sign_url": "http://127.0.0.1:2280/sign",
        "ssh_keys_url": "http://127.0.0.1:2280/api/v1/ssh-keys",
        "certificate_lifetime": 300,
    }
    assert endpoints.of(SshcaEndpoints).network_url == "http://sshca:8000"
    lines = [line.strip() for line in _summary(endpoints, {}, 1.0).splitlines()]
    assert (
        "SSH CA: http://127.0.0.1:2280 (SSHCA: POST /sign, SSHService: POST /api/v1/ssh-keys;"
        " certificates valid 300s at most)"
    ) in lines


def test_port_zero_picks_a_free_port_once(tmp_path: Path):
    env = environment(tmp_path, "sshca: {port: 0}")
    first = env.endpoints().of(SshcaEndpoints).url
    assert first != "http://127.0.0.1:0"
    assert env.endpoints().of(SshcaEndpoints).url == first


def test_the_probe_accepts_only_the_cas_certificates_for_the_user():
    ca = ed25519.Ed25519PrivateKey.generate()
    other = ed25519.Ed25519PrivateKey.generate()
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    good = sign_user_certificate(ca, "test1", key)
    assert certificate_problem(good, ca.public_key(), "test1") is None
    assert certificate_problem(good, ca.public_key(), "test2") == (
        "principals [b'test1'], not ['test2']"
    )
    assert certificate_problem(good, other.public_key(), "test1") == (
        "signed by another CA than the environment's"
    )
    plain = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    assert certificate_problem(plain.decode(), ca.public_key(), "test1") == (
        "a plain public key, not a certificate"
    )
    assert (certificate_problem("garbage", ca.public_key(), "test1") or "").startswith(
        "not an OpenSSH certificate"
    )
