"""The FirecREST tutorial, in order, as one scenario: credentials, systems,
listing (and its two errors, with the header texts the tutorial shows), a
blocking upload, the SHA-1 job (its script kept in the user's `firecrest`
folder, its output where the script said), its task and accounting, a
bigger upload through the staging area with the command the task gives,
and the download of the output from the staging area."""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from firecrest_testbuild.scenarios.client import Client
from firecrest_testbuild.scenarios.test_compute import accounted
from firecrest_testbuild.scenarios.test_storage import post_form
from firecrest_testbuild.scenarios.truth import Truth
from firecrest_testbuild.scenarios.verdict import tutorial

pytestmark = [
    pytest.mark.api(1),
    pytest.mark.requires("scheduler"),
    pytest.mark.requires("s3-transfer"),
]

# "List the contents of a directory": the two error headers, as the tutorial shows them.
PERMISSION_DENIED = "User does not have permissions to access machine or path"
INVALID_PATH = "{path} is an invalid path"


def send_with_the_tasks_command(task: dict, folder: Path) -> None:
    """The tutorial's way: "We can use the command that is provided by the
    previous response". Run the task's curl command where the file is
    (without a shell: the command must be curl); the staging area answers 2xx."""
    argv = shlex.split(task["data"]["msg"]["command"])
    assert argv[0] == "curl", argv[:3]
    sent = subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=300)
    assert sent.returncode == 0, sent.stderr[-500:]
    statuses = [line.split()[1] for line in sent.stdout.splitlines() if line.startswith("HTTP/")]
    assert statuses and statuses[-1].startswith("2"), sent.stdout[-500:]


@pytest.mark.source(
    tutorial(
        "every step, in order",
        "the calls, answers, header texts, job files and transfers the tutorial shows",
    )
)
@pytest.mark.covers(
    "GET /status/systems",
    "GET /utilities/ls",
    "POST /utilities/upload",
    "POST /compute/jobs/upload",
    "GET /tasks/{taskid}",
    "GET /compute/acct",
    "GET /utilities/download",
    "POST /storage/xfer-external/upload",
    "POST /storage/xfer-external/download",
)
def test_the_tutorial(
    client: Client,
    other_workdir: str,
    folder: str,
    truth: Truth,
    tmp_path: Path,
    request: pytest.FixtureRequest,
):
    # Test the credentials with a simple call.
    systems = client.request("GET", "/status/systems", machine=False)
    assert systems.status_code == 200
    assert client.target.system.name in {s["system"] for s in systems.json()["out"]}

    # List the contents of a directory; permission and invalid-path errors.
    assert client.get("/utilities/ls", targetPath=folder).json()["output"] == []
    denied = client.get("/utilities/ls", targetPath=other_workdir)
    assert denied.status_code == 400
    assert denied.headers.get("X-Permission-Denied") == PERMISSION_DENIED
    invalid = client.get("/utilities/ls", targetPath=f"{folder}/test23")
    assert invalid.status_code == 400
    assert invalid.headers.get("X-Invalid-Path") == INVALID_PATH.format(path=f"{folder}/test23")

    # Upload a small file with the blocking call.
    content = os.urandom(50_000)
    uploaded = client.post(
        "/utilities/upload", targetPath=folder, files={"file": ("input_file", content)}
    )
    assert uploaded.status_code == 201
    assert uploaded.json()["description"] == "File upload successful"

    # Run a small simulation: the SHA-1 of the file, as a job.
    script = (
        "#!/bin/bash\n#SBATCH --job-name=test\n"
        f"#SBATCH --output={folder}/res.txt\n#SBATCH --ntasks=1\n#SBATCH --time=10:00\n\n"
        f"sha1sum {folder}/input_file\n"
    ).encode()
    submitted = client.post("/compute/jobs/upload", files={"file": ("script.sh", script)})
    submission = client.created_task(submitted)
    # "Submit a job": the answer carries the task's URL as well.
    assert str(submitted.json().get("task_url")).endswith(f"/tasks/{submission}"), submitted.text
    done = client.wait_task(submission)
    assert done["status"] == "200", done["data"]
    job = done["data"]
    assert job["result"] == "Job submitted"
    # "Job output": the script is kept in the user's `firecrest` folder, in a
    # subfolder named after the task; job_file_out is where the output goes.
    assert f"/firecrest/{submission}/" in job["job_file"], job["job_file"]
    assert job["job_file_out"] == f"{folder}/res.txt"
    if (system := truth.system("the job script kept on the system")) is not None:
        assert system.run(client.user, f"cat {job['job_file']}").stdout == script
    accounted(client, str(job["jobid"]), "COMPLETED")
    result = client.get("/utilities/download", sourcePath=f"{folder}/res.txt").content
    assert result.split()[0].decode() == hashlib.sha1(content).hexdigest()

    # Upload with the non-blocking call something bigger, with the task's command.
    (tmp_path / "bigger_file").write_bytes(os.urandom(6 * 1024 * 1024))
    task_id = client.created_task(
        client.post("/storage/xfer-external/upload", targetPath=folder, sourcePath="bigger_file")
    )
    form = client.wait_task(task_id, until={"111"})
    if shutil.which("curl"):
        send_with_the_tasks_command(form, tmp_path)
    else:
        request.node.user_properties.append(
            ("skipped-check", "the task's upload command: curl is not installed here")
        )
        post_form(form, (tmp_path / "bigger_file").read_bytes(), "bigger_file")
    assert client.wait_task(task_id, until={"114", "115"})["status"] == "114"

    # Download the output, from the staging area, and compare.
    download_id = client.created_task(
        client.post("/storage/xfer-external/download", sourcePath=f"{folder}/res.txt")
    )
    ready = client.wait_task(download_id, until={"117", "118"})
    assert ready["status"] == "117"
    url = ready["data"]["url"] if isinstance(ready["data"], dict) else ready["data"]
    fetched = requests.get(url, timeout=300)
    assert fetched.status_code == 200
    assert fetched.content.split()[0].decode() == hashlib.sha1(content).hexdigest()
