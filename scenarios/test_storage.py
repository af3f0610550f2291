"""Storage: large transfers through the staging area (the tutorial's way) and
transfers inside the system as jobs, checked through the API and, where
granted, on the system and in the staging store."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest
import requests

from firecrest_testbuild.scenarios.client import Client
from firecrest_testbuild.scenarios.test_compute import accounted
from firecrest_testbuild.scenarios.truth import Truth

MB = 1024 * 1024


def post_form(task: dict, content: bytes, name: str) -> None:
    """What a client does with status 111: send the file as the form says."""
    parameters = task["data"]["msg"]["parameters"]
    answer = requests.request(
        parameters["method"],
        parameters["url"],
        data=parameters["data"],
        files={"file": (name, content)},
        timeout=300,
    )
    assert answer.status_code in (200, 201, 204), answer.text[:300]


@pytest.mark.requires("s3-transfer")
@pytest.mark.covers(
    "POST /storage/xfer-external/upload",
    "POST /storage/xfer-external/download",
    "POST /storage/xfer-external/invalidate",
)
def test_external_upload_and_download_round_trip(client: Client, folder: str, truth: Truth):
    content = os.urandom(3 * MB)
    task_id = client.created_task(
        client.post("/storage/xfer-external/upload", targetPath=folder, sourcePath="payload.bin")
    )
    form = client.wait_task(task_id, until={"111"})
    assert form["description"] == "Form URL from Object Storage received"
    assert form["data"]["msg"]["command"]
    post_form(form, content, "payload.bin")
    if (store := truth.store("the object in the staging store")) is not None:
        parameters = form["data"]["msg"]["parameters"]
        bucket = parameters["url"].rstrip("/").rsplit("/", 1)[-1]
        assert store.stat_object(bucket, parameters["data"]["key"]).size == len(content)
    done = client.wait_task(task_id, until={"114", "115"})
    assert done["status"] == "114", done["data"]
    summed = client.get("/utilities/checksum", targetPath=f"{folder}/payload.bin")
    assert hashlib.sha256(content).hexdigest() in summed.json()["output"]
    if (system := truth.system("the uploaded file's bytes on the system")) is not None:
        on_system = system.run(client.user, f"sha1sum {folder}/payload.bin").text.split()[0]
        assert on_system == hashlib.sha1(content).hexdigest()

    download_id = client.created_task(
        client.post("/storage/xfer-external/download", sourcePath=f"{folder}/payload.bin")
    )
    ready = client.wait_task(download_id, until={"117", "118"})
    assert ready["status"] == "117", ready["data"]
    url = ready["data"]["url"] if isinstance(ready["data"], dict) else ready["data"]
    assert requests.get(url, timeout=300).content == content
    invalidated = client.request(
        "POST",
        "/storage/xfer-external/invalidate",
        machine=False,
        headers={"X-Task-Id": download_id},
    )
    assert invalidated.status_code == 201
    # The answer is an Invalidate-ok (API description): a `success` text.
    assert isinstance(invalidated.json().get("success"), str), invalidated.text[:200]
    assert requests.get(url, timeout=60).status_code in (403, 404)


def refused(response: requests.Response, *headers: str) -> None:
    """A 400 carrying one of `headers`."""
    assert response.status_code == 400, (response.status_code, response.text[:200])
    assert any(header in response.headers for header in headers), (headers, dict(response.headers))


@pytest.mark.requires("s3-transfer")
@pytest.mark.covers(
    "POST /storage/xfer-external/upload",
    "POST /storage/xfer-external/download",
    "POST /storage/xfer-external/invalidate",
)
def test_external_transfer_errors(client: Client, other_workdir: str, folder: str):
    """The 400 headers of POST /storage/xfer-external/download and /upload, and
    the 400 of /invalidate (API description), answered at once."""
    missing = client.post("/storage/xfer-external/download", sourcePath=f"{folder}/missing")
    refused(missing, "X-Not-Found")
    forbidden = client.post(
        "/storage/xfer-external/download", sourcePath=f"{other_workdir}/anything"
    )
    refused(forbidden, "X-Permission-Denied")
    a_folder = client.post("/storage/xfer-external/download", sourcePath=folder)
    refused(a_folder, "X-A-Directory")
    not_writable = client.post(
        "/storage/xfer-external/upload", targetPath=other_workdir, sourcePath="f"
    )
    refused(not_writable, "X-Permission-Denied")
    nowhere = client.post(
        "/storage/xfer-external/upload", targetPath=f"{folder}/a/b", sourcePath="f"
    )
    refused(nowhere, "X-Invalid-Path", "X-Not-Found")  # the description lists both
    unknown = client.request(
        "POST",
        "/storage/xfer-external/invalidate",
        machine=False,
        headers={"X-Task-Id": "0123456789abcdef0123456789abcdef"},
    )
    assert unknown.status_code == 400, unknown.status_code


def internal(client: Client, operation: str, **form: Any) -> None:
    job = client.task_result(client.post(f"/storage/xfer-internal/{operation}", **form))
    accounted(client, str(job["jobid"]), "COMPLETED")


def content(client: Client, path: str) -> str:
    return client.get("/utilities/view", targetPath=path).json()["output"]


def names(client: Client, path: str) -> set[str]:
    return {
        entry["name"] for entry in client.get("/utilities/ls", targetPath=path).json()["output"]
    }


@pytest.mark.requires("internal-transfers")
@pytest.mark.covers(
    *(
        f"POST /storage/xfer-internal/{op}"
        for op in ("cp", "mv", "rsync", "rm", "compress", "extract")
    )
)
def test_internal_transfers(client: Client, folder: str):
    client.post("/utilities/mkdir", targetPath=f"{folder}/src")
    client.post("/utilities/upload", targetPath=f"{folder}/src", files={"file": ("a", b"hello")})
    internal(client, "cp", sourcePath=f"{folder}/src", targetPath=f"{folder}/copy")
    assert names(client, f"{folder}/copy") == {"a"}
    assert content(client, f"{folder}/copy/a") == "hello"
    internal(client, "rsync", sourcePath=f"{folder}/src/", targetPath=f"{folder}/synced")
    assert names(client, f"{folder}/synced") == {"a"}
    internal(client, "mv", sourcePath=f"{folder}/copy", targetPath=f"{folder}/moved")
    assert names(client, folder) == {"src", "synced", "moved"}
    internal(client, "compress", sourcePath=f"{folder}/src", targetPath=f"{folder}/src.tar.gz")
    internal(client, "extract", sourcePath=f"{folder}/src.tar.gz", targetPath=f"{folder}/moved")
    assert "src" in names(client, f"{folder}/moved")
    assert content(client, f"{folder}/moved/src/a") == "hello"
    internal(client, "rm", targetPath=f"{folder}/synced")
    assert "synced" not in names(client, folder)


@pytest.mark.requires("internal-transfers")
@pytest.mark.covers("POST /storage/xfer-internal/cp")
def test_internal_transfers_refuse_what_the_user_cannot_use(
    client: Client, folder: str, other_workdir: str
):
    unreadable = client.post(
        "/storage/xfer-internal/cp", sourcePath=other_workdir, targetPath=f"{folder}/x"
    )
    assert unreadable.status_code == 400
    unwritable = client.post(
        "/storage/xfer-internal/cp", sourcePath=folder, targetPath=f"{other_workdir}/x"
    )
    assert unwritable.status_code == 400
