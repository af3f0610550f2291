"""Static-key logins, environments side by side, and `down` leaving nothing."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from firecrest_testbuild.common.sshexec import LoginRefused
from firecrest_testbuild.harness.environment import Environment
from firecrest_testbuild.harness.errors import TestbuildError
from firecrest_testbuild.harness.images import ImageBuilder
from firecrest_testbuild.harness.keys import load_paramiko_key
from firecrest_testbuild.harness.progress import Progress
from tests.integration.conftest import environment_for, login_node

pytestmark = pytest.mark.integration


def test_static_key_environment_beside_another_then_down_leaves_nothing(
    tmp_path: Path, environment: Environment
):
    static = environment_for(
        tmp_path,
        "cluster: {computeNodes: 1, sshAuth: static-key}\n",
    )
    try:
        static.up()
        assert environment.status() and all(
            row["state"] == "running" for row in environment.status()
        )
        login = login_node(static)
        assert login.port != login_node(environment).port

        key = load_paramiko_key(static.state.user_key("test1"))
        result = login.run_with_key("test1", key, "id -un")
        assert (result.exit_status, result.stdout.strip()) == (0, "test1")
        refused = login.run_with_key("test1", key, "bash")
        assert refused.exit_status == 118

        with pytest.raises(LoginRefused):
            login.run_with_key("test2", key, "id")
    finally:
        removed = static.down()

    assert any(item.startswith("volume ") for item in removed)
    assert static.runtime.leftovers() == []
    assert not static.state.root.exists()
    assert all(row["state"] == "running" for row in environment.status())


def test_a_taken_port_is_explained_and_the_failed_up_leaves_nothing(
    tmp_path: Path, environment: Environment
):
    taken = login_node(environment).port
    clash = environment_for(tmp_path, f"cluster: {{sshPort: {taken}, computeNodes: 1}}\n")
    with pytest.raises(TestbuildError) as caught:
        clash.up()
    text = caught.value.explain()
    assert f"127.0.0.1:{taken} is already in use" in text
    assert "cluster.sshPort" in text
    assert clash.runtime.leftovers() == []


def test_unchanged_images_are_not_rebuilt(environment: Environment):
    output = io.StringIO()
    builder = ImageBuilder(environment.client, environment.config.images, Progress(output))
    spec = environment.component("cluster").image(environment.config)
    before = environment.client.images.get(f"{spec.repository}:latest").id
    tag = builder.ensure(spec)
    assert environment.client.images.get(tag).id == before
    assert f"{tag}: up to date" in output.getvalue()
    assert "building" not in output.getvalue()
