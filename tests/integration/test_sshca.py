"""The SSH CA for FirecREST v2: real Keycloak tokens get certificates of the
environment's CA from both protocols, and those certificates log in to the
cluster's login node (plain commands, as v2 sends them)."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import paramiko
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from firecrest_testbuild.common.sshexec import SshTarget, execute
from firecrest_testbuild.harness.components.sshca import SshcaEndpoints
from firecrest_testbuild.harness.contracts import ClusterEndpoints
from firecrest_testbuild.harness.environment import Environment
from tests.integration.conftest import keycloak, output_of

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sshca_environment(environment: Environment) -> Environment:
    return environment  # every environment runs the SSH CA


@pytest.fixture(scope="module")
def sshca(sshca_environment: Environment) -> SshcaEndpoints:
    return sshca_environment.context().endpoints(SshcaEndpoints)


def token_of(environment: Environment, name: str) -> str:
    return keycloak(environment).token(user=environment.config.user(name))


def fresh_key() -> tuple[str, str]:
    """An ed25519 key pair as v2's SSHCA provider makes it: (OpenSSH private, public line)."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private, public.decode()


def run_with(environment: Environment, private: str, certificate: str, command: str) -> str:
    """Log in as test1 with the key and its certificate, send a plain command (v2's way)."""
    cluster = environment.context().endpoints(ClusterEndpoints)
    pkey = paramiko.Ed25519Key.from_private_key(io.StringIO(private))
    pkey.load_certificate(certificate.strip())
    target = SshTarget(cluster.ssh.host, cluster.ssh.port, cluster.ssh.host_key)
    output = execute(target, "test1", pkey, command)
    assert output.exit_status == 0, output.stderr
    return output.text


def listing_inside_login_node(environment: Environment, certificate: str) -> str:
    """`ssh-keygen -L` of the certificate on the login node (its OpenSSH, not ours)."""
    quoted = certificate.strip().replace("'", "")
    listing = f"printf '%s\\n' '{quoted}' | ssh-keygen -L -f -"
    return output_of(environment.runtime.container("controller"), ["sh", "-c", listing])


def test_sshca_protocol_certificate_logs_in_with_a_plain_command(
    sshca_environment: Environment, sshca: SshcaEndpoints
):
    private, public = fresh_key()
    body = json.dumps({"PublicKey": public, "OTT": token_of(sshca_environment, "test1")})
    # As v2's DeiC client sends it: JSON text, no JSON content type.
    answer = requests.post(f"{sshca.url}/sign", data=body, timeout=15)
    assert answer.status_code == 200, answer.text
    listing = listing_inside_login_node(sshca_environment, answer.text)
    assert re.search(r"Principals:\s*\n\s+test1\n", listing), listing
    assert "force-command" not in listing
    assert run_with(sshca_environment, private, answer.text, "id -un").strip() == "test1"


def test_sshservice_protocol_key_and_certificate_log_in(
    sshca_environment: Environment, sshca: SshcaEndpoints
):
    token = token_of(sshca_environment, "test1")
    answer = requests.post(
        f"{sshca.url}/api/v1/ssh-keys",
        headers={"Authorization": f"Bearer {token}"},
        json={"duration": "1min", "username": "test1"},
        timeout=15,
    )
    assert answer.status_code == 201, answer.text
    key = answer.json()["sshKey"]
    # v2 appends the newline to both.
    private, certificate = key["privateKey"] + "\n", key["publicKey"] + "\n"
    listing = listing_inside_login_node(sshca_environment, certificate)
    assert "force-command" not in listing
    assert run_with(sshca_environment, private, certificate, "id -un").strip() == "test1"


def test_a_token_of_test2_gets_nothing_for_test1(
    sshca_environment: Environment, sshca: SshcaEndpoints
):
    answer = requests.post(
        f"{sshca.url}/api/v1/ssh-keys",
        headers={"Authorization": f"Bearer {token_of(sshca_environment, 'test2')}"},
        json={"duration": "1min", "username": "test1"},
        timeout=15,
    )
    assert answer.status_code == 403
    assert "sshKey" not in answer.json() and answer.json()["message"]


def test_a_token_of_another_issuer_is_refused(sshca: SshcaEndpoints):
    _, public = fresh_key()
    answer = requests.post(
        f"{sshca.url}/sign", data=json.dumps({"PublicKey": public, "OTT": "a.b.c"}), timeout=15
    )
    assert answer.status_code == 401 and answer.json()["message"]


def test_testbuild_env_shows_the_url(sshca_environment: Environment, sshca: SshcaEndpoints):
    testbuild = str(Path(sys.executable).parent / "testbuild")
    name = sshca_environment.config.name
    shown = subprocess.run(
        [testbuild, "env", "--name", name], capture_output=True, text=True, check=True
    ).stdout
    assert f"sshca.url: {sshca.url}" in shown.splitlines()
    printed = json.loads(
        subprocess.run(
            [testbuild, "env", "--name", name, "--json"], capture_output=True, text=True, check=True
        ).stdout
    )
    assert printed["sshca"]["url"] == sshca.url
    assert printed["sshca"]["sign_url"] == f"{sshca.url}/sign"
