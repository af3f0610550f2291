"""The tutorial's calls, in order, against the stack, with the truth checked on
the cluster behind the API (files over SSH, jobs in sacct)."""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest

from firecrest_testbuild.harness.environment import Environment
from firecrest_testbuild.harness.ssh import LoginNode
from tests.integration.api import Api
from tests.integration.conftest import eventually

pytestmark = pytest.mark.integration

SCRIPT = """#!/bin/bash
#SBATCH --job-name=test
#SBATCH --output={folder}/res.txt
#SBATCH --ntasks=1
#SBATCH --time=10:00

sha1sum {folder}/input_file
"""


@pytest.fixture
def folder(login: LoginNode):
    path = f"/home/test1/tutorial-{uuid.uuid4().hex[:8]}"
    assert login.run("test1", f"mkdir {path}").exit_status == 0
    yield path
    login.run("test1", f"rm -rf {path}")


def test_the_tutorial_up_to_downloading_the_output(
    environment: Environment, login: LoginNode, folder: str
):
    api = Api.for_user(environment, "test1")

    # Test the credentials with a simple call.
    systems = api.request("GET", "/status/systems", machine=False)
    assert systems.status_code == 200
    assert systems.json()["out"] == [
        {"system": "cluster", "status": "available", "description": "System ready"}
    ]

    # List the contents of a directory, and the two errors the tutorial shows.
    listing = api.get("/utilities/ls", targetPath=folder)
    assert listing.status_code == 200 and listing.json()["output"] == []
    denied = api.get("/utilities/ls", targetPath="/home/test2")
    assert denied.status_code == 400
    assert denied.headers["X-Permission-Denied"] == (
        "User does not have permissions to access machine or path"
    )
    missing = api.get("/utilities/ls", targetPath="/home/test23")
    assert missing.status_code == 400
    assert missing.headers["X-Invalid-Path"] == "/home/test23 is an invalid path"

    # Upload a small file with the blocking call.
    content = os.urandom(100_000)
    upload = api.post(
        "/utilities/upload", targetPath=folder, files={"file": ("input_file", content)}
    )
    assert upload.status_code == 201
    assert upload.json()["description"] == "File upload successful"
    on_cluster = login.run("test1", f"sha1sum {folder}/input_file").stdout.split()[0]
    assert on_cluster == hashlib.sha1(content).hexdigest()

    # Run a small simulation: submit, follow the task, check the job.
    script = SCRIPT.format(folder=folder).encode()
    submitted = api.task_data(
        api.post("/compute/jobs/upload", files={"file": ("script.sh", script)})
    )
    jobid = submitted["jobid"]
    assert submitted["result"] == "Job submitted"
    assert submitted["job_file_out"] == f"{folder}/res.txt"
    assert submitted["job_file"].startswith("/home/test1/firecrest/")
    stored = login.run("test1", f"cat {submitted['job_file']}").stdout
    assert stored == script.decode()

    def accounted_state() -> str | None:
        rows = api.task_data(api.get("/compute/acct", jobs=str(jobid)))
        return rows[0]["state"] if rows else None

    assert eventually(lambda: accounted_state() == "COMPLETED", timeout=60)
    truth = login.run("test1", f"sacct -n -X -P -j {jobid} -o State").stdout.strip()
    assert truth == "COMPLETED"

    # A finished job is no longer in the queue: the task says so.
    finished = api.finished_task(api.get(f"/compute/jobs/{jobid}"))
    assert finished["status"] == "400"

    # Download the output and compare with the SHA-1 computed on the host.
    download = api.get("/utilities/download", sourcePath=f"{folder}/res.txt")
    assert download.status_code == 200
    assert download.content.split()[0].decode() == hashlib.sha1(content).hexdigest()
