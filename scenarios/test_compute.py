"""Compute: jobs submitted, followed, cancelled and accounted, as tasks; the
job's state checked in sacct where the target grants ground truth."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from firecrest_testbuild.scenarios.client import Client, poll
from firecrest_testbuild.scenarios.truth import Truth

pytestmark = pytest.mark.requires("scheduler")

QUICK = b"#!/bin/bash\n#SBATCH --job-name=conformance\n#SBATCH --time=2:00\nhostname\n"
SLEEPER = b"#!/bin/bash\n#SBATCH --job-name=conformance-sleeper\n#SBATCH --time=5:00\nsleep 120\n"
GREETER = (
    b"#!/bin/bash\n#SBATCH --job-name=conformance-env\n#SBATCH --time=2:00\n"
    b'echo "$GREETING from $SLURM_JOB_ACCOUNT"\n'
)


def on_partition(client: Client, script: bytes) -> bytes:
    """The script, on the target's partition when it names one."""
    if not client.target.system.partition:
        return script
    line = f"\n#SBATCH --partition={client.target.system.partition}\n"
    return script.replace(b"\n", line.encode(), 1)


def submit(client: Client, script: bytes, **form: Any) -> dict:
    return client.task_result(
        client.post(
            "/compute/jobs/upload", files={"file": ("job.sh", on_partition(client, script))}, **form
        )
    )


def yesterday() -> str:
    return str(datetime.date.today() - datetime.timedelta(days=1))


def accounted(client: Client, jobid: str, until: str, timeout: float = 90) -> dict:
    """The job's row in /compute/acct once its state is `until`."""

    def row() -> dict | None:
        rows = client.task_result(client.get("/compute/acct", jobs=jobid, starttime=yesterday()))
        return next((r for r in rows if r["jobid"] == jobid), None)

    found = poll(
        row,
        lambda found: found is not None and found["state"].startswith(until),
        timeout=timeout,
        what=f"job {jobid} in /compute/acct as {until}",
        interval=1,
        max_interval=1,
    )
    assert found is not None
    return found


@pytest.mark.covers("POST /compute/jobs/upload", "GET /compute/acct")
def test_an_uploaded_job_runs_to_completion(client: Client, truth: Truth):
    job = submit(client, QUICK)
    assert job["result"] == "Job submitted"
    jobid = str(job["jobid"])
    assert "/firecrest/" in job["job_file"], job["job_file"]
    row = accounted(client, jobid, "COMPLETED")
    assert row["user"] == client.user
    # The tutorial's sacct answer ("Sacct call"): a one-node job shows "nodes": "1".
    assert row["nodes"] == "1", row
    if (system := truth.system("the job's state in sacct")) is not None:
        state = system.run(client.user, f"sacct -n -X -P -j {jobid} -o State").text.strip()
        assert state == "COMPLETED"


@pytest.mark.covers("POST /compute/jobs/path")
def test_a_job_script_on_the_system_runs_with_env_and_account(client: Client, folder: str):
    """POST /compute/jobs/path (API description): `env` is a serialized JSON
    dictionary loaded as the job's environment, `account` the scheduler account;
    the task's `job_file_out` is the job's output file (Task-Compute-Job-Submitted-200)."""
    script = on_partition(client, GREETER)
    client.post("/utilities/upload", targetPath=folder, files={"file": ("job.sh", script)})
    account = client.target.system.account
    form: dict[str, Any] = {"targetPath": f"{folder}/job.sh"}
    form["env"] = json.dumps({"GREETING": "hello"})
    if account:
        form["account"] = account
    job = client.task_result(client.post("/compute/jobs/path", **form))
    assert job["job_file"] == f"{folder}/job.sh"
    accounted(client, str(job["jobid"]), "COMPLETED")
    output = client.get("/utilities/view", targetPath=job["job_file_out"])
    assert output.status_code == 200, (job["job_file_out"], output.text[:200])
    greeting = output.json()["output"]
    assert greeting.startswith("hello from "), greeting
    if account:
        assert greeting == f"hello from {account}\n"

    missing = client.post("/compute/jobs/path", targetPath=f"{folder}/no-such-job.sh")
    if missing.status_code != 400:  # refused at once, or by the task
        assert client.wait_task(client.created_task(missing))["status"] == "400"


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
        mine = [job for job in listed.values() if job["jobid"] == jobid]
        # The tutorial ("Check for job status"): an active job, its user and state.
        assert len(mine) == 1 and mine[0]["user"] == client.user, mine
        assert mine[0]["state"] in ("PENDING", "RUNNING"), mine
        assert mine[0]["partition"] == (client.target.system.partition or mine[0]["partition"])
        assert mine[0]["partition"], mine
        one = client.task_result(client.get(f"/compute/jobs/{jobid}"))
        assert [job["jobid"] for job in one.values()] == [jobid]
        # GET /compute/jobs `jobs` (API description): the listed job IDs only.
        chosen = client.task_result(client.get("/compute/jobs", jobs=jobid))
        assert [job["jobid"] for job in chosen.values()] == [jobid]
    finally:
        cancelled = client.request("DELETE", f"/compute/jobs/{jobid}")
    assert client.wait_task(client.created_task(cancelled))["status"] == "200"
    accounted(client, jobid, "CANCELLED")


@pytest.mark.covers("GET /compute/jobs/{jobid}", "DELETE /compute/jobs/{jobid}")
def test_bad_job_ids_are_refused(client: Client):
    assert client.get("/compute/jobs/not-a-job").status_code == 400
    assert client.request("DELETE", "/compute/jobs/not-a-job").status_code == 400


@pytest.mark.covers("GET /compute/acct")
def test_acct_time_window_and_paging(client: Client):
    future = str(datetime.date.today() + datetime.timedelta(days=30))
    rows = client.task_result(client.get("/compute/acct", starttime=future, endtime=future))
    assert rows in ([], {})
    # A user's own jobs (sacct's default for a user), all of them unless a
    # page is asked for: `pageSize` is the number of entries returned
    # (GET /compute/acct, components/parameters/pageSize).
    recent = client.task_result(client.get("/compute/acct", starttime=yesterday()))
    assert all(row["user"] == client.user for row in recent), recent
    page = client.task_result(client.get("/compute/acct", starttime=yesterday(), pageSize="1"))
    assert len(page) <= 1 and (len(page) == 1 or not recent), page
    assert {row["jobid"] for row in page} <= {row["jobid"] for row in recent}, page


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
    # GET /compute/partitions `partitions` (API description): only those listed.
    first = partitions[0]["PartitionName"]
    chosen = client.task_result(client.get("/compute/partitions", partitions=first))
    assert [p["PartitionName"] for p in chosen] == [first]
    reservations = client.task_result(client.get("/compute/reservations"))
    assert isinstance(reservations, list)
