"""compose/docker-compose.yml is derived from the harness and must not drift."""

from __future__ import annotations

from pathlib import Path

import yaml

from firecrest_testbuild.harness.config import load, parse
from firecrest_testbuild.harness.environment import Environment
from tests.repository import COMPOSE
from tests.repository import ROOT as REPOSITORY

COMMITTED = COMPOSE / "docker-compose.yml"


def rendered(config_text: str | None, base_dir: Path) -> str:
    config = load(REPOSITORY / "testbuild.yaml")[0] if config_text is None else parse(config_text)
    return Environment(config, base_dir).compose_file(engine_cpus=2)


def test_committed_compose_file_equals_what_the_harness_renders(tmp_path: Path):
    assert COMMITTED.read_text() == rendered(None, tmp_path), (
        "compose/docker-compose.yml drifted from the harness: regenerate it with"
        " 'testbuild compose > compose/docker-compose.yml'"
    )


def test_compose_follows_the_config(tmp_path: Path):
    document = yaml.safe_load(
        rendered("name: other\ncluster: {computeNodes: 3, sshPort: 2300}\n", tmp_path)
    )
    assert list(document["services"]) == [
        "controller",
        "c1",
        "c2",
        "c3",
        "keycloak",
        "minio",
        "redis",
        "stack",
    ]
    controller = document["services"]["controller"]
    assert controller["ports"] == ["127.0.0.1:2300:22"]
    assert controller["hostname"] == "cluster"
    assert controller["labels"]["org.testbuild.environment"] == "other"
    assert "../.testbuild/other/nodes/controller:/etc/testbuild:ro" in controller["volumes"]
    assert all("ports" not in document["services"][node] for node in ("c1", "c2", "c3"))
    assert document["services"]["keycloak"]["env_file"] == [
        "../.testbuild/other/nodes/keycloak.env"
    ]
    assert "KC_BOOTSTRAP_ADMIN_PASSWORD" not in yaml.safe_dump(document)


def test_compose_binds_to_the_configured_address_only(tmp_path: Path):
    document = yaml.safe_load(rendered("bindAddress: 127.0.0.2\n", tmp_path))
    assert document["services"]["controller"]["ports"] == ["127.0.0.2:2222:22"]
    assert document["services"]["minio"]["ports"] == ["127.0.0.2:9000:9000", "127.0.0.2:9001:9001"]
