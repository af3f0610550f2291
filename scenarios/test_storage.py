"""Storage: large transfers through the staging area (the tutorial's way) and
transfers inside the system as jobs, checked through the API and, where
granted, on the system and in the staging store."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from firecrest_testbuild.scenarios.client import Client
from firecrest_testbuild.scenarios.expect import refused, storage_unknown_machine_refused
from firecrest_testbuild.scenarios.test_compute import ENDED, accounted
from firecrest_testbuild.scenarios.truth import Truth
from firecrest_testbuild.scenarios.verdict import must, spec, tutorial

pytestmark = pytest.mark.api(1)

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


@pytest.mark.source(
    spec(
        "POST /storage/xfer-external/upload, /download, /invalidate",
        "upload: task 111 with the form, 114 once the file is in place; download: task 117"
        " with the URL; invalidate: 201 Invalidate-ok, the URL no longer serves the file",
    )
)
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


@pytest.mark.source(
    spec(
        "POST /storage/xfer-external/download, /upload, /invalidate",
        "400 with X-Not-Found, X-Permission-Denied, X-A-Directory, X-Invalid-Path; 400 for"
        " an unknown task",
    )
)
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


STORAGE_MACHINE = spec(
    "POST /storage/xfer-internal/*, POST /storage/xfer-external/*",
    "X-Machine-Name (required) names the system; the only answer but 'Task created' is 400",
)


@pytest.mark.source(STORAGE_MACHINE)
@pytest.mark.requires("s3-transfer")
@pytest.mark.covers("POST /storage/xfer-external/download")
def test_external_transfers_refuse_an_unknown_machine(client: Client, folder: str):
    storage_unknown_machine_refused(
        client, "/storage/xfer-external/download", sourcePath=f"{folder}/anything"
    )


@pytest.mark.source(STORAGE_MACHINE)
@pytest.mark.requires("internal-transfers")
@pytest.mark.covers("POST /storage/xfer-internal/cp")
def test_internal_transfers_refuse_an_unknown_machine(client: Client, folder: str):
    storage_unknown_machine_refused(
        client, "/storage/xfer-internal/cp", sourcePath=f"{folder}/a", targetPath=f"{folder}/b"
    )


def internal(client: Client, operation: str, **form: Any) -> dict:
    """An internal transfer, run to its end: its task's job, ended in the
    accounting. Whether it did what it should is for the caller to check: the
    job's state says little (a transfer job may end with an `echo`)."""
    answer = client.post(f"/storage/xfer-internal/{operation}", **form)
    job: dict = client.task_result(answer)
    accounted(client, str(job["jobid"]), ENDED)
    return job


def content(client: Client, path: str) -> str:
    return client.get("/utilities/view", targetPath=path).json()["output"]


def names(client: Client, path: str) -> set[str]:
    return {
        entry["name"] for entry in client.get("/utilities/ls", targetPath=path).json()["output"]
    }


def on_system(truth: Truth, client: Client, what: str, command: str) -> str | None:
    """The output of `command` run as the client's user, where granted."""
    system = truth.system(what)
    return None if system is None else system.run(client.user, command).text


@pytest.mark.source(
    spec(
        "POST /storage/xfer-internal/{cp,mv,rsync,rm,compress,extract}",
        "copy, move, synchronise, remove, compress and extract as a job of the scheduler",
    )
)
@pytest.mark.requires("internal-transfers")
@pytest.mark.covers(
    *(
        f"POST /storage/xfer-internal/{op}"
        for op in ("cp", "mv", "rsync", "rm", "compress", "extract")
    )
)
def test_internal_transfers(client: Client, folder: str, truth: Truth):
    client.post("/utilities/mkdir", targetPath=f"{folder}/src")
    client.post("/utilities/mkdir", targetPath=f"{folder}/unpacked")
    client.post("/utilities/upload", targetPath=f"{folder}/src", files={"file": ("a", b"hello")})
    hello = hashlib.sha1(b"hello").hexdigest()
    # Jobs that do not depend on each other run side by side, as a client's would.
    side_by_side(
        client,
        ("cp", {"sourcePath": f"{folder}/src", "targetPath": f"{folder}/copy"}),
        ("rsync", {"sourcePath": f"{folder}/src/", "targetPath": f"{folder}/synced"}),
        ("compress", {"sourcePath": f"{folder}/src", "targetPath": f"{folder}/src.tar.gz"}),
    )
    assert names(client, f"{folder}/copy") == {"a"}
    assert content(client, f"{folder}/copy/a") == "hello"
    summed = on_system(truth, client, "the copy's bytes on the system", f"sha1sum {folder}/copy/a")
    assert summed is None or summed.split()[0] == hello, summed
    assert names(client, f"{folder}/synced") == {"a"}
    side_by_side(
        client,
        ("mv", {"sourcePath": f"{folder}/copy", "targetPath": f"{folder}/moved"}),
        ("extract", {"sourcePath": f"{folder}/src.tar.gz", "targetPath": f"{folder}/unpacked"}),
    )
    assert names(client, folder) == {"src", "synced", "moved", "src.tar.gz", "unpacked"}
    listed = on_system(truth, client, "the move on the system", f"ls -A {folder}")
    moved = listed is None or ("copy" not in listed.split() and "moved" in listed.split())
    assert moved, listed
    assert names(client, f"{folder}/moved") == {"a"}
    assert content(client, f"{folder}/unpacked/src/a") == "hello"
    internal(client, "rm", targetPath=f"{folder}/synced")
    assert "synced" not in names(client, folder)
    gone = on_system(truth, client, "the removal on the system", f"ls -A {folder}")
    assert gone is None or "synced" not in gone.split(), gone


def side_by_side(client: Client, *transfers: tuple[str, dict[str, str]]) -> None:
    """Internal transfers submitted together, each run to its end."""
    with ThreadPoolExecutor(max_workers=len(transfers)) as pool:
        running = [pool.submit(internal, client, op, **form) for op, form in transfers]
        for job in running:
            job.result()


ON_BEHALF = tutorial(
    "Obtain credentials",
    "requests act on behalf of the authenticated user: what the user cannot read is not"
    " copied, where the user cannot write nothing is written",
)


@pytest.mark.source(ON_BEHALF)
@pytest.mark.requires("internal-transfers")
@pytest.mark.covers("POST /storage/xfer-internal/cp")
def test_internal_transfers_cannot_use_what_the_user_cannot(
    client: Client, other: Client, folder: str, other_workdir: str, truth: Truth
):
    """Refused at once, or by the task, or run as a job that fails: all three
    conformant (the reference checks no path and runs the job), so the
    judge is the effect: nothing copied either way."""
    attempt(client, "cp", sourcePath=other_workdir, targetPath=f"{folder}/stolen")
    attempt(client, "cp", sourcePath=folder, targetPath=f"{other_workdir}/dropped")
    assert "stolen" not in names(client, folder)
    theirs = other.get("/utilities/ls", targetPath=other_workdir)
    must(theirs.status_code == 200, theirs.text[:200], spec("GET /utilities/ls", "200"), theirs)
    assert "dropped" not in {entry["name"] for entry in theirs.json()["output"]}
    if (system := truth.system("nothing written in the other user's folder")) is not None:
        assert "dropped" not in system.run(other.user, f"ls -A {other_workdir}").text.split()


def attempt(client: Client, operation: str, **form: Any) -> None:
    """Send an internal transfer the user may not make; wait for its job, if any."""
    answer = client.post(f"/storage/xfer-internal/{operation}", **form)
    if answer.status_code == 400:
        return
    task = client.wait_task(client.created_task(answer))
    if task["status"] == "200":
        accounted(client, str(task["data"]["jobid"]), ENDED)
