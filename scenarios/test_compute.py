"""Compute: jobs submitted, followed, cancelled and accounted, as tasks; the
job's state checked in sacct where the target grants ground truth."""

from __future__ import annotations

import datetime
import time

import pytest

from firecrest_testbuild.scenarios.client import Client
from firecrest_testbuild.scenarios.truth import Truth

pytestmark = pytest.mark.requires("scheduler")

QUICK = b"#!/bin/bash\n#SBATCH --job-name=conformance\n#SBATCH --time=2:00\nhostname\n"
SLEEPER = b"#!/bin/bash\n#SBATCH --job-name=conformance-sleeper\n#SBATCH --time=5:00\nsleep 120\n"


def submit(client: Client, script: bytes, **form: str) -> dict:
    if client.target.system.partition:
        script = script.replace(
            b"\n", f"\n#SBATCH --partition={client.target.system.partition}\n".encode(), 1
        )
    return client.task_result(
        client.post("/compute/jobs/upload", files={"file": ("job.sh", script)}, **form)
    )


def accounted(client: Client, jobid: str, until: str, timeout: float = 90) -> dict:
    """The job's row in /compute/acct once its state is `until`."""
    deadline = time.monotonic() + timeout
    since = str(datetime.date.today() - datetime.timedelta(days=1))
    while True:
        rows = client.task_result(client.get("/compute/acct", jobs=jobid, starttime=since))
        row = next((r for r in rows if r["jobid"] == jobid), None)
        if row and row["state"].startswith(until):
            return row
        assert time.monotonic() < deadline, f"job {jobid} in acct: {row}"
        time.sleep(1)


@pytest.mark.covers("POST /compute/jobs/upload", "GET /compute/acct")
def test_an_uploaded_job_runs_to_completion(client: Client, truth: Truth):
    job = submit(client, QUICK)
    assert job["result"] == "Job submitted"
    jobid = str(job["jobid"])
    assert "/firecrest/" in job["job_file"], job["job_file"]
    row = accounted(client, jobid, "COMPLETED")
    assert row["user"] == client.user
    if (system := truth.system("the job's state in sacct")) is not None:
        state = system.run(client.user, f"sacct -n -X -P -j {jobid} -o State").text.strip()
        assert state == "COMPLETED"


@pytest.mark.covers("POST /compute/jobs/path")
def test_a_job_script_on_the_system_runs(client: Client, folder: str):
    client.post("/utilities/upload", targetPath=folder, files={"file": ("job.sh", QUICK)})
    job = client.task_result(client.post("/compute/jobs/path", targetPath=f"{folder}/job.sh"))
    assert job["job_file"] == f"{folder}/job.sh"
    accounted(client, str(job["jobid"]), "COMPLETED")


@pytest.mark.covers("POST /compute/jobs/upload")
def test_the_account_option_is_passed_to_the_scheduler(client: Client):
    wrong = client.wait_task(
        client.created_task(
            client.post(
                "/compute/jobs/upload", files={"file": ("j.sh", QUICK)}, account="no-such-account-x"
            )
        )
    )
    assert wrong["status"] == "400", wrong
    account = client.target.system.account
    if account:
        assert submit(client, QUICK, account=account)["result"] == "Job submitted"


@pytest.mark.covers(
    "GET /compute/jobs", "GET /compute/jobs/{jobid}", "DELETE /compute/jobs/{jobid}"
)
def test_a_running_job_is_listed_and_cancelled(client: Client):
    jobid = str(submit(client, SLEEPER)["jobid"])
    try:
        listed = client.task_result(client.get("/compute/jobs"))
        assert jobid in {job["jobid"] for job in listed.values()}
        one = client.task_result(client.get(f"/compute/jobs/{jobid}"))
        assert [job["jobid"] for job in one.values()] == [jobid]
    finally:
        cancelled = client.request("DELETE", f"/compute/jobs/{jobid}")
    assert client.wait_task(client.created_task(cancelled))["status"] == "200"
    accounted(client, jobid, "CANCELLED")


@pytest.mark.covers("GET /compute/jobs/{jobid}", "DELETE /compute/jobs/{jobid}")
def test_bad_job_ids_are_refused(client: Client):
    assert client.get("/compute/jobs/not-a-job").status_code == 400
    assert client.request("DELETE", "/compute/jobs/not-a-job").status_code == 400


@pytest.mark.covers("GET /compute/acct")
def test_acct_time_window(client: Client):
    future = str(datetime.date.today() + datetime.timedelta(days=30))
    rows = client.task_result(client.get("/compute/acct", starttime=future, endtime=future))
    assert rows in ([], {})


@pytest.mark.covers("GET /compute/nodes", "GET /compute/nodes/{nodeName}")
def test_nodes(client: Client):
    nodes = client.task_result(client.get("/compute/nodes"))
    assert nodes and all("NodeName" in node for node in nodes)
    first = nodes[0]["NodeName"]
    one = client.task_result(client.get(f"/compute/nodes/{first}"))
    assert [node["NodeName"] for node in one] == [first]
    unknown = client.wait_task(client.created_task(client.get("/compute/nodes/no-such-node")))
    assert unknown["status"] == "400"


@pytest.mark.covers("GET /compute/partitions", "GET /compute/reservations")
def test_partitions_and_reservations(client: Client):
    partitions = client.task_result(client.get("/compute/partitions"))
    assert partitions and all("PartitionName" in p for p in partitions)
    reservations = client.task_result(client.get("/compute/reservations"))
    assert isinstance(reservations, list)
