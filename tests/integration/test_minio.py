"""MinIO is one address for host and cluster: presigned URLs work on both sides."""

from __future__ import annotations

import datetime
import hashlib
import io
import os
import time

import pytest
import requests
from minio.datatypes import PostPolicy

from firecrest_testbuild.harness.environment import Environment
from firecrest_testbuild.harness.ssh import LoginNode
from tests.integration.conftest import minio_of

pytestmark = pytest.mark.integration

TEN_MB = 10 * 1024 * 1024


def test_every_user_has_a_bucket_whose_objects_expire(environment: Environment):
    minio = minio_of(environment)
    client = minio.client(environment.context())
    for user in environment.config.users:
        assert client.bucket_exists(user.name)
        [rule] = client.get_bucket_lifecycle(user.name).rules
        assert rule.expiration.days == environment.config.minio.object_expiry_days


def test_presigned_post_from_the_host_is_read_inside_a_node(
    environment: Environment, login: LoginNode
):
    minio = minio_of(environment)
    client = minio.client(environment.context())
    data = os.urandom(TEN_MB)
    policy = PostPolicy(
        "test1", datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=10)
    )
    policy.add_equals_condition("key", "upload/input_file")
    form = client.presigned_post_policy(policy)
    url = minio.endpoints(environment.context()).url + "/test1"
    posted = requests.post(
        url, data={**form, "key": "upload/input_file"}, files={"file": data}, timeout=60
    )
    assert posted.status_code == 204, posted.text

    get_url = client.presigned_get_object(
        "test1", "upload/input_file", expires=datetime.timedelta(minutes=5)
    )
    fetched = login.run(
        "test1",
        f"curl --silent --fail -o /home/test1/from_s3 '{get_url}' && sha1sum /home/test1/from_s3",
    )
    assert fetched.exit_status == 0, fetched.stderr
    assert fetched.stdout.split()[0] == hashlib.sha1(data).hexdigest()


def test_presigned_put_from_a_node_is_read_on_the_host(environment: Environment, login: LoginNode):
    minio = minio_of(environment)
    client = minio.client(environment.context())
    data = os.urandom(1024 * 1024)
    assert login.run("test2", "cat > /home/test2/outgoing", stdin=data).exit_status == 0
    put_url = client.presigned_put_object(
        "test2", "from-node/outgoing", expires=datetime.timedelta(minutes=5)
    )
    sent = login.run("test2", f"curl --silent --fail -T /home/test2/outgoing '{put_url}'")
    assert sent.exit_status == 0, sent.stderr
    assert client.get_object("test2", "from-node/outgoing").read() == data


def test_an_expired_presigned_url_is_refused(environment: Environment):
    client = minio_of(environment).client(environment.context())
    client.put_object("test1", "short-lived", data=io.BytesIO(b"x"), length=1)
    url = client.presigned_get_object("test1", "short-lived", expires=datetime.timedelta(seconds=1))
    assert requests.get(url, timeout=10).status_code == 200
    time.sleep(2)
    refused = requests.get(url, timeout=10)
    assert refused.status_code == 403
    assert "expired" in refused.text.lower()
