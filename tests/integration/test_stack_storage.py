"""Storage: the tutorial's large-file round trip through MinIO, internal
transfers as Slurm jobs, their errors, and transfers surviving a restart.
The truth is checked on the cluster (sha1sum, ls) and in sacct."""

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
from tests.integration.api import Api
from tests.integration.conftest import eventually, minio_of

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


def task_id_of(response: requests.Response) -> str:
    assert response.status_code == 201, response.text
    return response.json()["task_id"]


def wait_status(api: Api, task_id: str, wanted: set[str], timeout: float = 60) -> dict:
    """The task once its status is one of `wanted`."""

    def reached() -> dict | None:
        task = api.task(task_id)
        return task if task["status"] in wanted else None

    return eventually(reached, timeout=timeout, interval=0.2)


def run_upload_command(task: dict, local: Path) -> None:
    """What the tutorial has the user do: run the task's curl command from the host."""
    command = task["data"]["msg"]["command"]
    completed = subprocess.run(
        ["bash", "-c", command], cwd=local.parent, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    assert " 204 " in completed.stdout.splitlines()[-1] or "204 No Content" in completed.stdout


def test_tutorial_upload_and_download_of_a_20_mb_file(
    api: Api, login: LoginNode, work: str, tmp_path: Path
):
    local = tmp_path / "input_file"
    local.write_bytes(os.urandom(20 * MB))
    task_id = task_id_of(
        api.post("/storage/xfer-external/upload", targetPath=work, sourcePath=str(local))
    )
    form = wait_status(api, task_id, {"111"})
    assert form["description"] == "Form URL from Object Storage received"
    msg = form["data"]["msg"]
    assert msg["parameters"]["method"] == "POST" and msg["parameters"]["url"] == msg["url"]
    assert msg["key"] == f"{task_id}/input_file"
    run_upload_command(form, local)
    done = wait_status(api, task_id, {"114", "115"})
    assert done["status"] == "114", done
    assert (
        sha1_on_cluster(login, f"{work}/input_file") == hashlib.sha1(local.read_bytes()).hexdigest()
    )

    download_id = task_id_of(
        api.post("/storage/xfer-external/download", sourcePath=f"{work}/input_file")
    )
    ready = wait_status(api, download_id, {"117", "118"})
    assert ready["status"] == "117", ready
    fetched = requests.get(ready["data"]["url"], timeout=120)
    assert fetched.status_code == 200 and fetched.content == local.read_bytes()

    invalidated = api.request(
        "POST",
        "/storage/xfer-external/invalidate",
        machine=False,
        headers={"X-Task-Id": download_id},
    )
    assert invalidated.status_code == 201
    assert invalidated.json() == {"success": "URL invalidated successfully"}
    assert requests.get(ready["data"]["url"], timeout=30).status_code == 404


def test_progress_shows_113_while_the_file_is_moved(
    api: Api, environment: Environment, work: str, tmp_path: Path
):
    local = tmp_path / "slow"
    local.write_bytes(b"x" * MB)
    task_id = task_id_of(
        api.post("/storage/xfer-external/upload", targetPath=work, sourcePath=str(local))
    )
    controller = environment.runtime.container("controller")
    controller.exec_run(["pkill", "-STOP", "-x", "sshd"])  # the move cannot log in yet
    try:
        run_upload_command(wait_status(api, task_id, {"111"}), local)
        moving = wait_status(api, task_id, {"113"}, timeout=20)
        assert moving["description"] == "Download from Object Storage to server has started"
    finally:
        controller.exec_run(["pkill", "-CONT", "-x", "sshd"])
    assert wait_status(api, task_id, {"114", "115"})["status"] == "114"


def test_an_unused_upload_form_expires_into_115(api: Api, environment: Environment, work: str):
    task_id = task_id_of(
        api.post("/storage/xfer-external/upload", targetPath=work, sourcePath="never_sent")
    )
    wait_status(api, task_id, {"111"})
    # Let the week pass: the transfer's deadline moves into the past.
    redis = environment.runtime.container("redis")
    script = (
        "local t = cjson.decode(redis.call('HGET', KEYS[1], ARGV[1])); t.expires_at = 0;"
        " redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(t))"
    )
    redis.exec_run(["redis-cli", "EVAL", script, "1", "storage-transfers", task_id])
    expired = wait_status(api, task_id, {"115"}, timeout=20)
    assert expired["description"] == "Download from Object Storage error"
    assert "expired" in expired["data"]["msg"]


def test_an_object_that_vanished_before_the_move_fails_the_task(
    api: Api, environment: Environment, work: str, tmp_path: Path
):
    local = tmp_path / "vanishing"
    local.write_bytes(b"v" * 1000)
    task_id = task_id_of(
        api.post("/storage/xfer-external/upload", targetPath=work, sourcePath=str(local))
    )
    form = wait_status(api, task_id, {"111"})
    controller = environment.runtime.container("controller")
    controller.exec_run(["pkill", "-STOP", "-x", "sshd"])
    try:
        run_upload_command(form, local)
        wait_status(api, task_id, {"113"}, timeout=20)
        minio = minio_of(environment).client(environment.context())
        minio.remove_object("test1", form["data"]["msg"]["key"])
    finally:
        controller.exec_run(["pkill", "-CONT", "-x", "sshd"])
    failed = wait_status(api, task_id, {"114", "115"})
    assert failed["status"] == "115"


def test_external_transfer_errors_are_answered_at_once(api: Api, work: str):
    missing = api.post("/storage/xfer-external/download", sourcePath=f"{work}/nope")
    assert missing.status_code == 400 and "X-Not-Found" in missing.headers
    forbidden = api.post("/storage/xfer-external/download", sourcePath="/home/test2/anything")
    assert forbidden.status_code == 400 and "X-Permission-Denied" in forbidden.headers
    folder = api.post("/storage/xfer-external/download", sourcePath=work)
    assert folder.status_code == 400 and "X-A-Directory" in folder.headers
    no_dir = api.post("/storage/xfer-external/upload", targetPath=f"{work}/a/b", sourcePath="f")
    assert no_dir.status_code == 400 and "X-Invalid-Path" in no_dir.headers
    not_mine = api.post("/storage/xfer-external/upload", targetPath="/home/test2", sourcePath="f")
    assert not_mine.status_code == 400 and "X-Permission-Denied" in not_mine.headers
    unknown = api.request(
        "POST",
        "/storage/xfer-external/invalidate",
        machine=False,
        headers={"X-Task-Id": uuid.uuid4().hex},
    )
    assert unknown.status_code == 400


def internal(api: Api, login: LoginNode, operation: str, **form: str) -> dict:
    """Run an xfer-internal operation; its job must complete on the xfer partition."""
    data = api.task_data(api.post(f"/storage/xfer-internal/{operation}", **form))
    jobid = data["jobid"]

    def accounted() -> str:
        return login.run("test1", f"sacct -n -X -P -j {jobid} -o State,Partition").stdout.strip()

    # slurmdbd may record a short job's end before its partition: wait for both.
    eventually(lambda: accounted() == "COMPLETED|xfer", timeout=60)
    return data


def test_internal_transfers_really_move_data(api: Api, login: LoginNode, work: str):
    assert login.run("test1", f"mkdir {work}/src && echo hello > {work}/src/a.txt").exit_status == 0
    internal(api, login, "cp", sourcePath=f"{work}/src", targetPath=f"{work}/copy")
    assert login.run("test1", f"cat {work}/copy/a.txt").stdout == "hello\n"
    internal(api, login, "rsync", sourcePath=f"{work}/src/", targetPath=f"{work}/synced")
    assert login.run("test1", f"cat {work}/synced/a.txt").stdout == "hello\n"
    internal(api, login, "mv", sourcePath=f"{work}/copy", targetPath=f"{work}/moved")
    assert login.run("test1", f"ls {work}").stdout.split() == ["moved", "src", "synced"]
    internal(api, login, "compress", sourcePath=f"{work}/src", targetPath=f"{work}/src.tar.gz")
    internal(api, login, "extract", sourcePath=f"{work}/src.tar.gz", targetPath=f"{work}/moved")
    assert login.run("test1", f"cat {work}/moved/src/a.txt").stdout == "hello\n"
    internal(api, login, "rm", targetPath=f"{work}/synced")
    assert "synced" not in login.run("test1", f"ls {work}").stdout.split()


def test_internal_transfers_refuse_paths_the_user_cannot_use(api: Api, login: LoginNode, work: str):
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


def test_a_waiting_upload_and_an_interrupted_move_survive_a_crash(
    api: Api, environment: Environment, login: LoginNode, work: str, tmp_path: Path
):
    local = tmp_path / "survivor"
    local.write_bytes(os.urandom(MB))
    waiting = task_id_of(
        api.post("/storage/xfer-external/upload", targetPath=work, sourcePath=str(local))
    )
    form = wait_status(api, waiting, {"111"})
    crash_api(environment)
    api.wait_until_up()
    run_upload_command(form, local)  # posted while nobody watched
    assert wait_status(api, waiting, {"114", "115"})["status"] == "114"

    moved = tmp_path / "moved"
    moved.write_bytes(os.urandom(MB))
    interrupted = task_id_of(
        api.post("/storage/xfer-external/upload", targetPath=f"{work}/moved", sourcePath=str(moved))
    )
    controller = environment.runtime.container("controller")
    controller.exec_run(["pkill", "-STOP", "-x", "sshd"])
    try:
        run_upload_command(wait_status(api, interrupted, {"111"}), moved)
        wait_status(api, interrupted, {"113"}, timeout=20)
        crash_api(environment)
    finally:
        controller.exec_run(["pkill", "-CONT", "-x", "sshd"])
    api.wait_until_up()
    assert wait_status(api, interrupted, {"114", "115"}, timeout=90)["status"] == "114"
    assert sha1_on_cluster(login, f"{work}/moved") == hashlib.sha1(moved.read_bytes()).hexdigest()


def crash_api(environment: Environment) -> None:
    """SIGKILL the API and start it again: nothing it was doing can finish."""
    firecrest = environment.runtime.container("stack")
    firecrest.kill()
    firecrest.start()
