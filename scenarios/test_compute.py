"""Compute: jobs submitted, followed, cancelled and accounted, as tasks; a
job's output read back and its state checked in sacct where the target
grants ground truth."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from typing import Any

import pytest

from firecrest_testbuild.scenarios.client import Client, poll
from firecrest_testbuild.scenarios.expect import (
    refused_at_once_or_by_task,
    unknown_machine_refused,
    x_headers,
)
from firecrest_testbuild.scenarios.truth import Truth
from firecrest_testbuild.scenarios.verdict import must, reference, should, spec, tutorial

pytestmark = [pytest.mark.api(1), pytest.mark.requires("scheduler")]

QUICK = (
    b"#!/bin/bash\n#SBATCH --job-name=conformance\n#SBATCH --time=2:00\n"
    b"echo conformance-output-$SLURM_JOB_ID\n"
)
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


# sacct's states of a job that has ended, however.
ENDED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED")


def accounted(
    client: Client, jobid: str, until: str | tuple[str, ...], timeout: float = 90
) -> dict:
    """The job's row in /compute/acct once its state is `until` (or one of them)."""

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


JOB_OUTPUT = spec(
    "POST /compute/jobs/upload (Task-Compute-Job-Submitted-200)",
    "job_file_out is the path of the job's output file on the system",
)
UNDONE = spec(
    "POST /compute/jobs/*, GET and DELETE /compute/jobs/{jobid}",
    "400 'Task creation error', or a task that ends in status 400 (Task-Compute-*-400)",
)


def job_output(client: Client, job: dict) -> str:
    """The text of the job's output file, read through the API."""
    answer = client.get("/utilities/view", targetPath=job["job_file_out"])
    must(answer.status_code == 200, f"{job['job_file_out']}: {answer.text[:200]}", JOB_OUTPUT)
    text: str = answer.json()["output"]
    return text


@pytest.mark.source(
    spec(
        "POST /compute/jobs/upload, GET /compute/acct",
        "the job is submitted ('Job submitted', its jobid and files) and accounted as the user's",
    )
)
@pytest.mark.covers("POST /compute/jobs/upload", "GET /compute/acct")
def test_an_uploaded_job_runs_to_completion(client: Client, truth: Truth):
    job = submit(client, QUICK)
    assert job["result"] == "Job submitted"
    jobid = str(job["jobid"])
    must(
        "/firecrest/" in job["job_file"],
        f"the script is kept in the user's firecrest folder: {job['job_file']}",
        tutorial("Job output", "the script is kept in $HOME/firecrest/<task id>/"),
    )
    row = accounted(client, jobid, "COMPLETED")
    assert row["user"] == client.user
    must(
        row["nodes"] == "1",
        f"a one-node job shows nodes '1': {row}",
        tutorial("Sacct call", 'a one-node job\'s row shows "nodes": "1"'),
    )
    # What the job did, not only what its task says: its output is there.
    output = job_output(client, job)
    must(output == f"conformance-output-{jobid}\n", f"the job's output: {output!r}", JOB_OUTPUT)
    if (system := truth.system("the job's state in sacct")) is not None:
        state = system.run(client.user, f"sacct -n -X -P -j {jobid} -o State").text.strip()
        assert state == "COMPLETED"


@pytest.mark.source(
    spec(
        "POST /compute/jobs/path",
        "`env` (a JSON dictionary) is the job's environment, `account` its account; the task's"
        " job_file is the script, job_file_out its output (Task-Compute-Job-Submitted-200)",
    )
)
@pytest.mark.covers("POST /compute/jobs/path")
def test_a_job_script_on_the_system_runs_with_env_and_account(
    client: Client, folder: str, truth: Truth
):
    script = on_partition(client, GREETER)
    client.post("/utilities/upload", targetPath=folder, files={"file": ("job.sh", script)})
    account = client.target.system.account
    form: dict[str, Any] = {"targetPath": f"{folder}/job.sh"}
    form["env"] = json.dumps({"GREETING": "hello"})
    if account:
        form["account"] = account
    job = client.task_result(client.post("/compute/jobs/path", **form))
    assert job["job_file"] == f"{folder}/job.sh"
    jobid = str(job["jobid"])
    accounted(client, jobid, "COMPLETED")
    greeting = job_output(client, job)
    assert greeting.startswith("hello from "), greeting
    if account:
        assert greeting == f"hello from {account}\n"
    if (system := truth.system("the job's state in sacct")) is not None:
        state = system.run(client.user, f"sacct -n -X -P -j {jobid} -o State").text.strip()
        assert state == "COMPLETED"


SCRIPT_CHECKED = reference(
    "compute.py submit_job_path (is_valid_file)",
    "the script is checked before the task is made: 400 with X-Invalid-Path (missing),"
    " X-Permission-Denied (unreadable) or X-A-Directory (a folder)",
)


@pytest.mark.source(UNDONE)
@pytest.mark.covers("POST /compute/jobs/path")
def test_job_scripts_that_cannot_run_are_refused(client: Client, folder: str):
    client.post("/utilities/upload", targetPath=folder, files={"file": ("locked.sh", QUICK)})
    locked = client.put("/utilities/chmod", targetPath=f"{folder}/locked.sh", mode="000")
    assert locked.status_code == 200, locked.text[:200]
    cases = {
        "X-Invalid-Path": f"{folder}/no-such-job.sh",
        "X-Permission-Denied": f"{folder}/locked.sh",
        "X-A-Directory": folder,
    }
    for header, path in cases.items():
        answer = client.post("/compute/jobs/path", targetPath=path)
        refused_at_once_or_by_task(client, answer, UNDONE)
        should(
            answer.status_code == 400 and header in answer.headers,
            f"POST /compute/jobs/path of {path}: {answer.status_code} {x_headers(answer)}",
            SCRIPT_CHECKED,
            about=answer,
        )


@pytest.mark.source(UNDONE)
@pytest.mark.covers("POST /compute/jobs/upload")
def test_the_account_option_is_passed_to_the_scheduler(
    client: Client, cancel_at_end: Callable[[str], None]
):
    files = {"file": ("j.sh", on_partition(client, QUICK))}
    wrong = client.post("/compute/jobs/upload", files=files, account="no-such-account-x")
    refused_at_once_or_by_task(client, wrong, UNDONE)
    empty = client.post("/compute/jobs/upload", files=files, account="")
    should(
        empty.status_code == 400 and "'account' is empty" in empty.text,
        f"an empty account: {empty.status_code} {empty.text[:200]}",
        reference("compute.py submit_job_upload", "400 'Invalid account': \"'account' is empty\""),
        about=empty,
    )
    if empty.ok:  # submitted all the same: not to be left running
        task = task_of(client, empty)
        if task["status"] == "200":
            cancel_at_end(str(task["data"]["jobid"]))
    account = client.target.system.account
    if account:
        assert submit(client, QUICK, account=account)["result"] == "Job submitted"


@pytest.mark.source(
    spec(
        "GET /compute/jobs, GET and DELETE /compute/jobs/{jobid}",
        "the user's active jobs (jobs: only those listed); a job cancelled by its task",
    )
)
@pytest.mark.covers(
    "GET /compute/jobs", "GET /compute/jobs/{jobid}", "DELETE /compute/jobs/{jobid}"
)
def test_a_running_job_is_listed_and_cancelled(
    client: Client, cancel_at_end: Callable[[str], None]
):
    jobid = str(submit(client, SLEEPER)["jobid"])
    cancel_at_end(jobid)  # in case a check below fails first
    listed = client.task_result(client.get("/compute/jobs"))
    mine = [job for job in listed.values() if job["jobid"] == jobid]
    must(
        len(mine) == 1 and mine[0]["user"] == client.user,
        f"the job and its user in the listing: {mine}",
        tutorial("Check for job status", "an active job is listed with its user and state"),
    )
    assert mine[0]["state"] in ("PENDING", "RUNNING"), mine
    assert mine[0]["partition"] == (client.target.system.partition or mine[0]["partition"])
    assert mine[0]["partition"], mine
    one = client.task_result(client.get(f"/compute/jobs/{jobid}"))
    assert [job["jobid"] for job in one.values()] == [jobid]
    chosen = client.task_result(client.get("/compute/jobs", jobs=jobid))
    assert [job["jobid"] for job in chosen.values()] == [jobid]
    cancelled = client.request("DELETE", f"/compute/jobs/{jobid}")
    assert client.wait_task(client.created_task(cancelled))["status"] == "200"
    accounted(client, jobid, "CANCELLED")


@pytest.mark.source(
    reference(
        "compute.py cancel_job",
        "the jobid goes to scancel as given (no job-ID check): a list such as 1,2 is accepted",
    )
)
@pytest.mark.covers("DELETE /compute/jobs/{jobid}")
def test_a_list_of_jobs_is_accepted_for_cancelling(
    client: Client, cancel_at_end: Callable[[str], None]
):
    jobids = [str(submit(client, SLEEPER)["jobid"]) for _ in range(2)]
    for jobid in jobids:
        cancel_at_end(jobid)
    answer = client.request("DELETE", f"/compute/jobs/{','.join(jobids)}")
    assert answer.status_code in (200, 201), (answer.status_code, answer.text[:200])
    task_of(client, answer)


@pytest.mark.source(UNDONE)
@pytest.mark.covers("GET /compute/jobs/{jobid}", "DELETE /compute/jobs/{jobid}")
def test_bad_job_ids_are_refused(client: Client):
    looked_up = client.get("/compute/jobs/not-a-job")
    refused_at_once_or_by_task(client, looked_up, UNDONE)
    should(
        looked_up.status_code == 400,
        f"GET /compute/jobs/not-a-job: {looked_up.status_code}",
        reference("compute.py get_job (is_jobid)", "400 'not-a-job is not a valid job ID' at once"),
        about=looked_up,
    )
    # The reference hands any id to scancel: its task ends 400 with scancel's error.
    refused_at_once_or_by_task(client, client.request("DELETE", "/compute/jobs/not-a-job"), UNDONE)


@pytest.mark.source(
    spec(
        "GET /compute/acct",
        "starttime/endtime bound the window; pageSize is the number of entries returned",
    )
)
@pytest.mark.covers("GET /compute/acct")
def test_acct_time_window_and_paging(client: Client):
    future = str(datetime.date.today() + datetime.timedelta(days=30))
    rows = client.task_result(client.get("/compute/acct", starttime=future, endtime=future))
    # No job that has ended lies in a window a month ahead; one still running
    # (its end unknown) may, as sacct counts it.
    ended = [row for row in rows or [] if not row["state"].startswith(("RUNNING", "PENDING"))]
    assert ended == [], ended
    # A user's own jobs (sacct's default for a user), all of them unless a
    # page is asked for.
    recent = client.task_result(client.get("/compute/acct", starttime=yesterday()))
    assert all(row["user"] == client.user for row in recent), recent
    page = client.task_result(client.get("/compute/acct", starttime=yesterday(), pageSize="1"))
    assert len(page) <= 1 and (len(page) == 1 or not recent), page
    assert {row["jobid"] for row in page} <= {row["jobid"] for row in recent}, page


@pytest.mark.source(
    spec("GET /compute/nodes, GET /compute/nodes/{nodeName}", "the nodes; one node by name")
)
@pytest.mark.covers("GET /compute/nodes", "GET /compute/nodes/{nodeName}")
def test_nodes(client: Client):
    answer = client.get("/compute/nodes")
    nodes = client.task_result(answer)
    assert nodes and all("NodeName" in node for node in nodes)
    partitions = [name for node in nodes for name in node.get("Partitions") or []]
    should(
        all(name == name.strip() for name in partitions),
        f"partition names with surrounding spaces: {partitions}",
        reference(
            "slurm.py parse_nodes_output", "Partitions: the names of `Partitions=` split on ','"
        ),
        about=answer,
    )
    first = nodes[0]["NodeName"]
    one = client.task_result(client.get(f"/compute/nodes/{first}"))
    assert [node["NodeName"] for node in one] == [first]
    unknown = client.get("/compute/nodes/no-such-node")
    should(
        unknown.status_code == 400 or task_of(client, unknown)["status"] == "400",
        "an unknown node is an error",
        reference("compute.py nodes_task", "scontrol's 'Node ... not found': the task ends 400"),
        about=unknown,
    )


UNKNOWN_NAMES_FILTERED = reference(
    "compute.py partitions_task / reservations_task (after 1.16)",
    "names are filtered on the parsed listing: unknown ones give 200 and an empty list",
)


@pytest.mark.source(
    spec(
        "GET /compute/partitions, GET /compute/reservations",
        "the partitions (partitions: only those listed) and the reservations",
    )
)
@pytest.mark.covers("GET /compute/partitions", "GET /compute/reservations")
def test_partitions_and_reservations(client: Client):
    partitions = client.task_result(client.get("/compute/partitions"))
    assert partitions and all("PartitionName" in p for p in partitions)
    first = partitions[0]["PartitionName"]
    chosen = client.task_result(client.get("/compute/partitions", partitions=first))
    assert [p["PartitionName"] for p in chosen] == [first]
    reservations = client.task_result(client.get("/compute/reservations"))
    assert isinstance(reservations, list)
    for path, name in (
        ("/compute/partitions", "partitions"),
        ("/compute/reservations", "reservations"),
    ):
        answer = client.get(path, **{name: "no-such-name-x"})
        listed = None if answer.status_code == 400 else task_of(client, answer)
        should(
            listed is not None and listed["status"] == "200" and listed["data"] in ([], {}),
            f"{path}?{name}=no-such-name-x: {answer.status_code},"
            f" task {listed and (listed['status'], str(listed['data'])[:200])}",
            UNKNOWN_NAMES_FILTERED,
            about=answer,
        )


def task_of(client: Client, response) -> dict[str, Any]:
    """The finished task a response created."""
    return client.wait_task(client.created_task(response))


@pytest.mark.source(
    spec(
        "every /compute operation",
        "400 with X-Machine-Does-Not-Exist for a machine that does not exist",
    )
)
@pytest.mark.covers("GET /compute/jobs", "POST /compute/jobs/upload", "GET /compute/partitions")
def test_an_unknown_machine_is_refused(client: Client):
    unknown_machine_refused(client, "GET", "/compute/jobs")
    unknown_machine_refused(client, "GET", "/compute/partitions")
    unknown_machine_refused(client, "POST", "/compute/jobs/upload", files={"file": ("j.sh", QUICK)})
