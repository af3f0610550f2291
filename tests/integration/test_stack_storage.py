"""Storage where the conformance suites (scenarios/test_storage.py and
test_tutorial.py, run against the stack by test_conformance.py) cannot look:
a move held up (sshd stopped) shows 113, an unused form expires (Redis
edited), an object that vanished from MinIO fails the move, transfers survive
the API being killed, internal transfers run on the environment's `xfer`
partition, and the stack's own answers where the API description is silent.
The truth is checked on the cluster (sha1sum, sacct) and in MinIO."""

from __future__ import annotations

import hashlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from firecrest_testbuild.harness.environment import Environment
from firecrest_testbuild.harness.ssh import LoginNode
from firecrest_testbuild.scenarios.client import poll
from tests.integration.api import Api
from tests.integration.conftest import minio_of

pytestmark = pytest.mark.integration

MB = 1024 * 1024


@pytest.fixture(scope="module")
def api(environment: Environment) -> Api:
    return Api.for_user(environment, "test1")


@pytest.fixture
def work(login: LoginNode) -> Iterator[str]:
    path = f"/home/test1/storage-{uuid.uuid4().hex[:8]}"
    assert login.run("test1", f"mkdir {path}").exit_status == 0
    yield path
    login.run("test1", f"rm -rf {path}")


def sha1_on_cluster(login: LoginNode, path: str) -> str:
    result = login.run("test1", f"sha1sum {path}")
    assert result.exit_status == 0, result.stderr
    return result.stdout.split()[0]


def upload_task(api: Api, target: str, local: Path) -> str:
    return api.created_task(
        api.post("/storage/xfer-external/upload", targetPath=target, sourcePath=str(local))
    )


def run_upload_command(task: dict, local: Path) -> None:
    """What the tutorial has the user do: run the task's curl command from the host."""
    command = task["data"]["msg"]["command"]
    completed = subprocess.run(
        ["bash", "-c", command], cwd=local.parent, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    assert " 204 " in completed.stdout.splitlines()[-1] or "204 No Content" in completed.stdout


def stopped_sshd(environment: Environment):
    """The login node's sshd, stopped (SIGSTOP) until the returned callable resumes it."""
    controller = environment.runtime.container("controller")
    controller.exec_run(["pkill", "-STOP", "-x", "sshd"])
    return lambda: controller.exec_run(["pkill", "-CONT", "-x", "sshd"])


def test_progress_shows_113_while_the_file_is_moved(
    api: Api, environment: Environment, work: str, tmp_path: Path
):
    local = tmp_path / "slow"
    local.write_bytes(b"x" * MB)
    task_id = upload_task(api, work, local)
    resume = stopped_sshd(environment)  # the move cannot log in yet
    try:
        run_upload_command(api.wait_task(task_id, until={"111"}), local)
        moving = api.wait_task(task_id, until={"113"}, timeout=20)
        assert moving["description"] == "Download from Object Storage to server has started"
    finally:
        resume()
    assert api.wait_task(task_id, until={"114", "115"})["status"] == "114"


def test_an_unused_upload_form_expires_into_115(api: Api, environment: Environment, work: str):
    task_id = api.created_task(
        api.post("/storage/xfer-external/upload", targetPath=work, sourcePath="never_sent")
    )
    api.wait_task(task_id, until={"111"})
    # Let the week pass: the transfer's deadline moves into the past.
    redis = environment.runtime.container("redis")
    script = (
        "local t = cjson.decode(redis.call('HGET', KEYS[1], ARGV[1])); t.expires_at = 0;"
        " redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(t))"
    )
    redis.exec_run(["redis-cli", "EVAL", script, "1", "storage-transfers", task_id])
    expired = api.wait_task(task_id, until={"115"}, timeout=20)
    assert expired["description"] == "Download from Object Storage error"
    assert "expired" in expired["data"]["msg"]


def test_an_object_that_vanished_before_the_move_fails_the_task(
    api: Api, environment: Environment, work: str, tmp_path: Path
):
    local = tmp_path / "vanishing"
    local.write_bytes(b"v" * 1000)
    task_id = upload_task(api, work, local)
    form = api.wait_task(task_id, until={"111"})
    resume = stopped_sshd(environment)
    try:
        run_upload_command(form, local)
        api.wait_task(task_id, until={"113"}, timeout=20)
        minio = minio_of(environment).client(environment.context())
        minio.remove_object("test1", form["data"]["msg"]["key"])
    finally:
        resume()
    failed = api.wait_task(task_id, until={"114", "115"})
    assert failed["status"] == "115"


def test_bad_transfers_are_refused_at_once_with_the_stacks_headers(
    api: Api, login: LoginNode, work: str
):
    # The description lists X-Not-Found and X-Invalid-Path; the stack says the latter.
    no_dir = api.post("/storage/xfer-external/upload", targetPath=f"{work}/a/b", sourcePath="f")
    assert no_dir.status_code == 400 and "X-Invalid-Path" in no_dir.headers
    # Internal transfers: the description gives no headers; the stack checks at once.
    login.run("test1", f"echo x > {work}/f")
    unreadable = api.post(
        "/storage/xfer-internal/cp", sourcePath="/home/test2/f", targetPath=f"{work}/g"
    )
    assert unreadable.status_code == 400 and "X-Permission-Denied" in unreadable.headers
    unwritable = api.post(
        "/storage/xfer-internal/cp", sourcePath=f"{work}/f", targetPath="/home/test2/g"
    )
    assert unwritable.status_code == 400 and "X-Permission-Denied" in unwritable.headers
    missing = api.post(
        "/storage/xfer-internal/mv", sourcePath=f"{work}/nope", targetPath=f"{work}/g"
    )
    assert missing.status_code == 400 and "X-Not-Found" in missing.headers
    foreign = api.post("/storage/xfer-internal/rm", targetPath="/home/test2")
    assert foreign.status_code == 400 and "X-Permission-Denied" in foreign.headers
    bad_time = api.post("/storage/xfer-internal/rm", targetPath=f"{work}/f", time="soon")
    assert bad_time.status_code == 400


def test_internal_transfers_run_on_the_xfer_partition(api: Api, login: LoginNode, work: str):
    assert login.run("test1", f"echo hello > {work}/a.txt").exit_status == 0
    data = api.task_result(
        api.post("/storage/xfer-internal/cp", sourcePath=f"{work}/a.txt", targetPath=f"{work}/b")
    )
    # slurmdbd may record a short job's end before its partition: wait for both.
    poll(
        lambda: login.run(
            "test1", f"sacct -n -X -P -j {data['jobid']} -o State,Partition"
        ).stdout.strip(),
        lambda accounted: accounted == "COMPLETED|xfer",
        timeout=60,
        what=f"xfer job {data['jobid']} COMPLETED on the xfer partition",
        interval=0.5,
        max_interval=0.5,
    )
    assert login.run("test1", f"cat {work}/b").stdout == "hello\n"


def test_a_waiting_upload_and_an_interrupted_move_survive_a_crash(
    api: Api, environment: Environment, login: LoginNode, work: str, tmp_path: Path
):
    local = tmp_path / "survivor"
    local.write_bytes(os.urandom(MB))
    waiting = upload_task(api, work, local)
    form = api.wait_task(waiting, until={"111"})
    # The stack's form (MinIO's POST policy), besides the description's `command`.
    msg = form["data"]["msg"]
    assert msg["parameters"]["method"] == "POST" and msg["parameters"]["url"] == msg["url"]
    assert msg["key"] == f"{waiting}/survivor"
    crash_api(environment)
    api.wait_until_up()
    run_upload_command(form, local)  # posted while nobody watched
    assert api.wait_task(waiting, until={"114", "115"})["status"] == "114"

    moved = tmp_path / "moved"
    moved.write_bytes(os.urandom(MB))
    interrupted = upload_task(api, f"{work}/moved", moved)
    resume = stopped_sshd(environment)
    try:
        run_upload_command(api.wait_task(interrupted, until={"111"}), moved)
        api.wait_task(interrupted, until={"113"}, timeout=20)
        crash_api(environment)
    finally:
        resume()
    api.wait_until_up()
    assert api.wait_task(interrupted, until={"114", "115"}, timeout=90)["status"] == "114"
    assert sha1_on_cluster(login, f"{work}/moved") == hashlib.sha1(moved.read_bytes()).hexdigest()

    # The survivor comes back out; the stack's invalidation answer, and MinIO's 404.
    download = api.created_task(
        api.post("/storage/xfer-external/download", sourcePath=f"{work}/survivor")
    )
    ready = api.wait_task(download, until={"117", "118"})
    assert ready["status"] == "117", ready
    assert requests.get(ready["data"]["url"], timeout=120).content == local.read_bytes()
    invalidated = api.request(
        "POST", "/storage/xfer-external/invalidate", machine=False, headers={"X-Task-Id": download}
    )
    assert (invalidated.status_code, invalidated.json()) == (
        201,
        {"success": "URL invalidated successfully"},
    )
    assert requests.get(ready["data"]["url"], timeout=30).status_code == 404


def crash_api(environment: Environment) -> None:
    """SIGKILL the API and start it again: nothing it was doing can finish."""
    firecrest = environment.runtime.container("stack")
    firecrest.kill()
    firecrest.start()
