"""Compute: what the conformance suites (scenarios/test_compute.py, run
against the stack by test_conformance.py) cannot check: the environment's
nodes and partitions, and the stack's own answers where the API description
is silent, checked against Slurm on the cluster."""

from __future__ import annotations

import uuid

import pytest

from firecrest_testbuild.harness.environment import Environment
from firecrest_testbuild.harness.ssh import LoginNode
from firecrest_testbuild.scenarios.client import poll
from tests.integration.api import Api

pytestmark = pytest.mark.integration

SLEEPER = b"#!/bin/bash\n#SBATCH --time=5:00\nsleep 120\n"


@pytest.fixture(scope="module")
def api(environment: Environment) -> Api:
    return Api.for_user(environment, "test1")


@pytest.fixture(scope="module")
def api2(environment: Environment) -> Api:
    return Api.for_user(environment, "test2")


def slurm_state(login: LoginNode, jobid: int | str) -> str:
    return login.run("test1", f"sacct -n -X -P -j {jobid} -o State").stdout.strip()


def test_submissions_and_queries_the_stack_refuses_at_once(api: Api):
    wrong_account = api.wait_task(
        api.created_task(
            api.post(
                "/compute/jobs/upload", files={"file": ("j.sh", SLEEPER)}, account="nosuchacct"
            )
        )
    )
    assert wrong_account["status"] == "400"
    assert "account" in wrong_account["data"].lower()  # sbatch's reason
    relative = api.post("/compute/jobs/path", targetPath="job.sh")
    assert relative.status_code == 400 and "X-Invalid-Path" in relative.headers
    bad_env = api.post("/compute/jobs/upload", files={"file": ("j.sh", SLEEPER)}, env="{nope")
    assert bad_env.status_code == 400 and "env" in bad_env.json()["error"]
    empty = api.post("/compute/jobs/upload", files={"file": ("j.sh", b"")})
    assert empty.status_code == 400
    missing = api.post("/compute/jobs/upload")
    assert missing.status_code == 400 and "file" in missing.json()["error"]
    assert api.request("DELETE", "/compute/jobs/1;id").status_code == 400
    assert api.get("/compute/jobs", jobs="1,x").status_code == 400
    assert api.get("/compute/jobs", pageSize="0").status_code == 400
    assert api.get("/compute/acct", pageNumber="-1").status_code == 400
    assert api.get("/compute/acct", starttime="yesterday; rm -rf ~").status_code == 400


def test_a_job_by_path_hidden_from_others_cancelled_and_gone_from_the_queue(
    api: Api, api2: Api, login: LoginNode
):
    folder = f"/home/test1/compute-{uuid.uuid4().hex[:8]}"
    made = login.run("test1", f"mkdir {folder} && cat > {folder}/job.sh", stdin=SLEEPER)
    assert made.exit_status == 0, made.stderr
    try:
        data = api.task_result(api.post("/compute/jobs/path", targetPath=f"{folder}/job.sh"))
        jobid = data["jobid"]
        # Slurm's default output file, in the script's folder (sbatch --chdir there).
        assert data["job_file_out"] == f"{folder}/slurm-{jobid}.out"
        # Another user's job is not shown to them (the description is silent).
        hidden = api2.wait_task(api2.created_task(api2.get(f"/compute/jobs/{jobid}")))
        assert hidden["status"] == "400", hidden
        assert slurm_state(login, jobid) in ("PENDING", "RUNNING")
        cancelled = api.request("DELETE", f"/compute/jobs/{jobid}")
        assert cancelled.status_code == 200  # FirecREST v1's code; the description says 204
        assert api.wait_task(api.created_task(cancelled))["status"] == "200"
        poll(
            lambda: slurm_state(login, jobid),
            lambda state: state.startswith("CANCELLED"),
            timeout=60,
            what=f"job {jobid} CANCELLED in sacct",
            interval=0.5,
            max_interval=0.5,
        )
        # The tutorial ("Check for job status"): a job no longer in the queue
        # is an error of the task (squeue knows only queued jobs).
        poll(
            lambda: api.wait_task(api.created_task(api.get(f"/compute/jobs/{jobid}"))),
            lambda task: task["status"] == "400",
            timeout=30,
            what=f"job {jobid} gone from the queue",
            interval=1,
            max_interval=1,
        )
    finally:
        login.run("test1", f"rm -rf {folder}")


def test_the_environments_nodes_partitions_and_reservations(api: Api, environment: Environment):
    names = environment.config.cluster.compute_node_names
    nodes = api.task_result(api.get("/compute/nodes"))
    assert sorted(node["NodeName"] for node in nodes) == names
    assert all("part01" in node["Partitions"] for node in nodes)
    partitions = api.task_result(api.get("/compute/partitions"))
    assert sorted(p["PartitionName"] for p in partitions) == ["part01", "part02", "xfer"]
    assert next(p for p in partitions if p["PartitionName"] == "part01")["Default"] == "YES"
    assert api.task_result(api.get("/compute/reservations")) == []


def task_count(api: Api) -> int:
    return len(api.request("GET", "/tasks", machine=False).json()["tasks"])


def test_a_script_by_path_is_checked_before_any_task(api: Api, login: LoginNode):
    folder = f"/home/test1/compute-{uuid.uuid4().hex[:8]}"
    made = login.run(
        "test1",
        f"mkdir {folder} && cat > {folder}/locked.sh && chmod 000 {folder}/locked.sh",
        stdin=SLEEPER,
    )
    assert made.exit_status == 0, made.stderr
    before = task_count(api)
    queued = set(login.run("test1", "squeue -h -u test1 -o %i").stdout.split())
    try:
        for script, header in (
            (f"{folder}/missing.sh", "X-Invalid-Path"),
            (f"{folder}/locked.sh", "X-Permission-Denied"),
            ("/home/test2/job.sh", "X-Permission-Denied"),  # test2's home is 0700
            (folder, "X-A-Directory"),
        ):
            refused = api.post("/compute/jobs/path", targetPath=script)
            assert refused.status_code == 400, (script, refused.text)
            assert header in refused.headers, (script, dict(refused.headers))
        empty_account = api.post("/compute/jobs/path", targetPath=f"{folder}/locked.sh", account="")
        assert empty_account.json()["error"] == "'account' is empty"
        uploaded = api.post("/compute/jobs/upload", files={"file": ("j.sh", SLEEPER)}, account="")
        assert (uploaded.status_code, uploaded.json()["error"]) == (400, "'account' is empty")
        assert task_count(api) == before
        # No job was submitted either.
        assert set(login.run("test1", "squeue -h -u test1 -o %i").stdout.split()) <= queued
    finally:
        login.run("test1", f"rm -rf {folder}")


def test_cancelling_a_list_of_jobs_cancels_each(api: Api, login: LoginNode):
    jobids = [
        str(
            api.task_result(api.post("/compute/jobs/upload", files={"file": ("j.sh", SLEEPER)}))[
                "jobid"
            ]
        )
        for _ in range(2)
    ]
    cancelled = api.request("DELETE", f"/compute/jobs/{','.join(jobids)}")
    assert cancelled.status_code == 200
    assert api.wait_task(api.created_task(cancelled))["status"] == "200"
    for jobid in jobids:
        poll(
            lambda jobid=jobid: slurm_state(login, jobid),
            lambda state: state.startswith("CANCELLED"),
            timeout=60,
            what=f"job {jobid} CANCELLED in sacct",
            interval=0.5,
            max_interval=0.5,
        )


def test_node_partitions_are_slurms_names_and_unknown_filters_select_nothing(
    api: Api, login: LoginNode
):
    # The truth: each node's partitions as sinfo names them ('*' marks the default).
    truth: dict[str, set[str]] = {}
    for line in login.run("test1", "sinfo -h -N -o '%N %P'").stdout.split("\n"):
        if line.strip():
            node, partition = line.split()
            truth.setdefault(node, set()).add(partition.rstrip("*"))
    nodes = api.task_result(api.get("/compute/nodes"))
    assert {node["NodeName"]: set(node["Partitions"]) for node in nodes} == truth
    assert all(name == name.strip() for node in nodes for name in node["Partitions"])
    assert api.task_result(api.get("/compute/partitions", partitions="nope")) == []
    chosen = api.task_result(api.get("/compute/partitions", partitions="xfer,nope"))
    assert [p["PartitionName"] for p in chosen] == ["xfer"]
    assert api.task_result(api.get("/compute/reservations", reservations="nope")) == []
    unknown = api.wait_task(api.created_task(api.get("/compute/nodes/nope")))
    assert unknown["status"] == "400"
