"""The storage service in the application, on fakes: its paths, its start
hooks, and the answers of its endpoints (checked at once, then a task)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from flask import Flask
from flask.testing import FlaskClient

from firecrest_testbuild.common.sshexec import Output
from firecrest_testbuild.stack.app import create_app
from firecrest_testbuild.stack.context import StackContext
from firecrest_testbuild.stack.services import Service, start_services
from firecrest_testbuild.stack.transfers import Transfers
from tests.unit.test_stack_fakes import (
    FakeRedis,
    FakeShell,
    FakeStaging,
    config,
    eventually,
)

HEADERS = {"Authorization": "Bearer token", "X-Machine-Name": "cluster"}
STORAGE_PATHS = {
    "/storage/xfer-external/upload",
    "/storage/xfer-external/download",
    "/storage/xfer-external/invalidate",
    *(
        f"/storage/xfer-internal/{name}"
        for name in ("cp", "mv", "rsync", "rm", "compress", "extract")
    ),
}


def probe(command: str) -> Output:
    """`stat` of a path on the fake system: directories, files, missing, forbidden."""
    path = re.match(r"stat -c %F -- '?([^';]*)", command).group(1)  # type: ignore[union-attr]
    if "missing" in path:
        return Output(0, b"", "stat: cannot stat: No such file or directory\n")
    if "secret" in path:
        return Output(0, b"", "stat: cannot stat: Permission denied\n")
    kind = "directory" if path.endswith(("/home/test1", "dir")) else "regular file"
    return Output(0, f"{kind}\nreadable\nwritable\n".encode(), "")


@pytest.fixture
def ca_key(tmp_path: Path) -> Path:
    key = ed25519.Ed25519PrivateKey.generate()
    path = tmp_path / "ca"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    return path


LEFT_RUNNING = "f" * 32


def make_app(ca_key: Path, services: list[str], redis: FakeRedis) -> Flask:
    """The application of a process serving `services`, whose predecessor
    left a task running."""
    redis.sadd(f"active-tasks:{','.join(services)}", LEFT_RUNNING)
    redis.set(f"task:{LEFT_RUNNING}", '{"user": "test1", "status": "101"}')
    stack_config = config(ssh={"caPrivateKey": str(ca_key)}, services=services)
    return create_app(stack_config, redis)  # type: ignore[arg-type]


def stop_transfers(app: Flask) -> None:
    transfers = app.extensions["stack"].transfers
    if transfers is not None:
        transfers.stop.set()


@pytest.fixture
def stack(ca_key: Path) -> Iterator[SimpleNamespace]:
    redis = FakeRedis()
    app = make_app(ca_key, ["compute", "storage", "tasks"], redis)
    context: StackContext = app.extensions["stack"]
    shell = FakeShell(
        {
            "stat -c %F": probe,
            "mkdir": Output(0, b"/home/test1\n", ""),
            "sbatch": Output(0, b"42\n", ""),
        }
    )
    started = context.transfers
    context.verifier = SimpleNamespace(user_of=lambda header: "test1")  # type: ignore[assignment]
    context.shell = shell  # type: ignore[assignment]
    context.transfers = Transfers(context.config, context.store, FakeStaging(), shell)  # type: ignore[arg-type]
    yield SimpleNamespace(client=app.test_client(), context=context, started=started, shell=shell)
    assert started is not None
    started.stop.set()


def post(client: FlaskClient, path: str, headers: dict[str, str] | None = None, **form: str) -> Any:
    return client.post(path, data=form, headers={**HEADERS, **(headers or {})})


def task_of(client: FlaskClient, answer: Any) -> dict[str, Any]:
    assert answer.status_code == 201, answer.get_json()
    task_id = answer.get_json()["task_id"]
    return client.get(f"/tasks/{task_id}", headers=HEADERS).get_json()["task"]


def test_storage_serves_its_nine_paths_as_posts(stack: SimpleNamespace):
    rules = {
        rule.rule: rule.methods - {"HEAD", "OPTIONS"}
        for rule in stack.client.application.url_map.iter_rules()
        if rule.rule.startswith("/storage")
    }
    assert rules == {path: {"POST"} for path in STORAGE_PATHS}
    document = stack.client.get("/openapi.json").get_json()
    assert {path for path in document["paths"] if path.startswith("/storage")} == STORAGE_PATHS


def test_a_storage_process_starts_its_transfers(stack: SimpleNamespace):
    assert isinstance(stack.started, Transfers)
    assert stack.context.staging is stack.started.staging


@pytest.mark.parametrize(
    ("services", "status"), [(["compute"], "400"), (["storage"], "400"), (["tasks"], "101")]
)
def test_compute_and_storage_processes_fail_what_their_predecessor_left_running(
    ca_key: Path, services: list[str], status: str
):
    redis = FakeRedis()
    app = make_app(ca_key, services, redis)
    stop_transfers(app)
    assert app.extensions["stack"].store.get("test1", LEFT_RUNNING)["status"] == status
    left = redis.smembers(f"active-tasks:{','.join(services)}")
    assert left == (set() if status == "400" else {LEFT_RUNNING.encode()})


def test_a_hook_that_several_services_declare_runs_once():
    calls: list[str] = []

    def shared(context: Any) -> None:
        calls.append("shared")

    def own(context: Any) -> None:
        calls.append("own")

    services = [
        Service("a", None, on_start=(shared,)),
        Service("b", None, on_start=(shared, own)),
    ]
    start_services(services, SimpleNamespace())  # type: ignore[arg-type]
    assert calls == ["shared", "own"]


def test_an_external_upload_answers_a_task_holding_the_form(stack: SimpleNamespace):
    answer = post(
        stack.client,
        "/storage/xfer-external/upload",
        sourcePath="C:\\data\\big.bin",
        targetPath="/home/test1",
    )
    assert set(answer.get_json()) == {"success", "task_id", "task_url"}
    task = task_of(stack.client, answer)
    assert (task["status"], task["description"]) == ("111", "Form URL from Object Storage received")
    assert task["data"]["msg"]["key"] == f"{task['task_id']}/big.bin"
    assert task["data"]["target"] == "/home/test1"


def test_an_external_download_answers_a_task_that_stages_the_file(stack: SimpleNamespace):
    task = task_of(
        stack.client,
        post(stack.client, "/storage/xfer-external/download", sourcePath="/home/test1/res.txt"),
    )
    assert task["status"] == "116"
    stack.context.transfers.step()
    eventually(lambda: not stack.context.transfers.running)
    invalidated = post(
        stack.client, "/storage/xfer-external/invalidate", headers={"X-Task-Id": task["task_id"]}
    )
    assert (invalidated.status_code, invalidated.get_json()) == (
        201,
        {"success": "URL invalidated successfully"},
    )


@pytest.mark.parametrize(
    ("path", "form", "header"),
    [
        ("xfer-external/upload", {"sourcePath": "f", "targetPath": "home"}, "X-Invalid-Path"),
        ("xfer-external/upload", {"sourcePath": "f", "targetPath": "/missing/a"}, "X-Invalid-Path"),
        (
            "xfer-external/upload",
            {"sourcePath": "f", "targetPath": "/secret/a"},
            "X-Permission-Denied",
        ),
        (
            "xfer-external/upload",
            {"sourcePath": "f", "targetPath": "/home/test1/f/g"},
            "X-Not-A-Directory",
        ),
        ("xfer-external/download", {"sourcePath": "/home/test1/missing"}, "X-Not-Found"),
        ("xfer-external/download", {"sourcePath": "/home/test1/dir"}, "X-A-Directory"),
        ("xfer-external/download", {"sourcePath": "/secret"}, "X-Permission-Denied"),
        (
            "xfer-internal/cp",
            {"sourcePath": "/missing", "targetPath": "/home/test1"},
            "X-Not-Found",
        ),
        ("xfer-internal/cp", {"sourcePath": "/a", "targetPath": "rel"}, "X-Invalid-Path"),
        ("xfer-internal/rm", {"targetPath": "/secret/x"}, "X-Permission-Denied"),
    ],
)
def test_paths_are_checked_before_any_task(
    stack: SimpleNamespace, path: str, form: dict[str, str], header: str
):
    answer = post(stack.client, f"/storage/{path}", **form)
    assert answer.status_code == 400
    assert header in answer.headers
    assert answer.get_json()["description"] == "Task creation error"
    assert stack.context.store.of_user("test1") == {}


def test_invalidating_no_transfer_is_a_400(stack: SimpleNamespace):
    answer = post(
        stack.client, "/storage/xfer-external/invalidate", headers={"X-Task-Id": "0" * 32}
    )
    assert answer.status_code == 400
    assert answer.get_json()["description"] == "Error invalidating URL"


def test_an_internal_copy_is_a_job_on_the_transfer_partition(stack: SimpleNamespace):
    answer = post(
        stack.client,
        "/storage/xfer-internal/cp",
        sourcePath="/home/test1/dir",
        targetPath="/home/test1/copy",
        stageOutJobId="7",
    )
    task_id = answer.get_json()["task_id"]
    eventually(lambda: stack.context.store.get("test1", task_id)["status"] == "200")
    [written] = [call for call in stack.shell.calls if call["stdin"]]
    script = written["stdin"].decode().splitlines()
    assert "#SBATCH --partition=xfer" in script
    assert "#SBATCH --dependency=afterok:7" in script
    assert "cp -r --preserve=all -- /home/test1/dir /home/test1/copy" in script
    sbatch = next(c for c in stack.shell.commands if c.startswith("sbatch"))
    assert sbatch.endswith(f"-- /home/test1/firecrest/{task_id}/sbatch-job.sh")
    assert stack.context.store.get("test1", task_id)["data"]["jobid"] == 42
