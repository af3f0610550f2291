"""A failed `up` that leaves nothing, and images that are not rebuilt when
unchanged. (Static-key logins and `down` beside another environment:
test_cluster_v2_ssh.py.)"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from firecrest_testbuild.harness.environment import Environment
from firecrest_testbuild.harness.errors import TestbuildError
from firecrest_testbuild.harness.images import ImageBuilder
from firecrest_testbuild.harness.progress import Progress
from tests.integration.conftest import environment_for, login_node

pytestmark = pytest.mark.integration


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
