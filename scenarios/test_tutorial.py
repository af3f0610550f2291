"""The FirecREST tutorial, in order, as one scenario: credentials, systems,
listing (and its two errors), a blocking upload, the SHA-1 job, its task and
accounting, a bigger upload through the staging area, and the download."""

from __future__ import annotations

import hashlib
import os

import pytest

from firecrest_testbuild.scenarios.client import Client
from firecrest_testbuild.scenarios.test_compute import accounted
from firecrest_testbuild.scenarios.test_storage import post_form

pytestmark = [pytest.mark.requires("scheduler"), pytest.mark.requires("s3-transfer")]


def test_the_tutorial(client: Client, other_workdir: str, folder: str):
    # Test the credentials with a simple call.
    systems = client.request("GET", "/status/systems", machine=False)
    assert systems.status_code == 200
    assert client.target.system.name in {s["system"] for s in systems.json()["out"]}

    # List the contents of a directory; permission and invalid-path errors.
    assert client.get("/utilities/ls", targetPath=folder).json()["output"] == []
    denied = client.get("/utilities/ls", targetPath=other_workdir)
    assert denied.headers.get("X-Permission-Denied")
    invalid = client.get("/utilities/ls", targetPath=f"{folder}/test23")
    assert invalid.headers.get("X-Invalid-Path")

    # Upload a small file with the blocking call.
    content = os.urandom(50_000)
    uploaded = client.post(
        "/utilities/upload", targetPath=folder, files={"file": ("input_file", content)}
    )
    assert uploaded.status_code == 201

    # Run a small simulation: the SHA-1 of the file, as a job.
    script = (
        "#!/bin/bash\n#SBATCH --job-name=test\n"
        f"#SBATCH --output={folder}/res.txt\n#SBATCH --ntasks=1\n#SBATCH --time=10:00\n\n"
        f"sha1sum {folder}/input_file\n"
    ).encode()
    job = client.task_result(
        client.post("/compute/jobs/upload", files={"file": ("script.sh", script)})
    )
    assert job["result"] == "Job submitted"
    accounted(client, str(job["jobid"]), "COMPLETED")
    result = client.get("/utilities/download", sourcePath=f"{folder}/res.txt").content
    assert result.split()[0].decode() == hashlib.sha1(content).hexdigest()

    # Upload with the non-blocking call something bigger.
    bigger = os.urandom(6 * 1024 * 1024)
    task_id = client.created_task(
        client.post("/storage/xfer-external/upload", targetPath=folder, sourcePath="bigger_file")
    )
    post_form(client.wait_task(task_id, until={"111"}), bigger, "bigger_file")
    assert client.wait_task(task_id, until={"114", "115"})["status"] == "114"

    # Download the output.
    download_id = client.created_task(
        client.post("/storage/xfer-external/download", sourcePath=f"{folder}/res.txt")
    )
    ready = client.wait_task(download_id, until={"117", "118"})
    assert ready["status"] == "117"
