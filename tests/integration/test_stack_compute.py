"""Every compute endpoint: jobs submitted, listed, cancelled and accounted for
real, checked against Slurm on the cluster, and the main errors."""

from __future__ import annotations

import datetime
import uuid

import pytest

from firecrest_testbuild.harness.environment import Environment
from firecrest_testbuild.harness.ssh import LoginNode
from tests.integration.api import Api
from tests.integration.conftest import eventually

pytestmark = pytest.mark.integration

SLEEPER = b"#!/bin/bash\n#SBATCH --time=5:00\nsleep 120\n"


@pytest.fixture(scope="module")
def api(environment: Environment) -> Api:
    return Api.for_user(environment, "test1")


@pytest.fixture(scope="module")
def api2(environment: Environment) -> Api:
    return Api.for_user(environment, "test2")


def submit(api: Api, script: bytes = SLEEPER, **form: str) -> dict:
    return api.task_data(
        api.post("/compute/jobs/upload", files={"file": ("job.sh", script)}, **form)
    )


def slurm_state(login: LoginNode, jobid: int) -> str:
    return login.run("test1", f"sacct -n -X -P -j {jobid} -o State").stdout.strip()


def test_submit_by_path_with_an_account_and_env(api: Api, login: LoginNode):
    folder = f"/home/test1/compute-{uuid.uuid4().hex[:8]}"
    script = '#!/bin/bash\necho "$GREETING from $SLURM_JOB_ACCOUNT"\n'
    assert login.run("test1", f"mkdir {folder} && cat > {folder}/job.sh", stdin=script.encode())
    data = api.task_data(
        api.post(
            "/compute/jobs/path",
            targetPath=f"{folder}/job.sh",
            account="testbuild",
            env='{"GREETING": "hello"}',
        )
    )
    assert data["job_file"] == f"{folder}/job.sh"
    out = data["job_file_out"]
    assert out == f"{folder}/slurm-{data['jobid']}.out"
    eventually(lambda: slurm_state(login, data["jobid"]) == "COMPLETED")
    assert login.run("test1", f"cat {out}").stdout == "hello from testbuild\n"
    login.run("test1", f"rm -rf {folder}")


def test_submission_errors(api: Api):
    wrong_account = api.finished_task(
        api.post("/compute/jobs/upload", files={"file": ("j.sh", SLEEPER)}, account="nosuchacct")
    )
    assert wrong_account["status"] == "400"
    assert "account" in wrong_account["data"].lower()
    no_script = api.finished_task(api.post("/compute/jobs/path", targetPath="/home/test1/none.sh"))
    assert no_script["status"] == "400"
    relative = api.post("/compute/jobs/path", targetPath="job.sh")
    assert relative.status_code == 400 and "X-Invalid-Path" in relative.headers
    bad_env = api.post("/compute/jobs/upload", files={"file": ("j.sh", SLEEPER)}, env="{nope")
    assert bad_env.status_code == 400 and "env" in bad_env.json()["error"]
    empty = api.post("/compute/jobs/upload", files={"file": ("j.sh", b"")})
    assert empty.status_code == 400
    missing = api.post("/compute/jobs/upload")
    assert missing.status_code == 400 and "file" in missing.json()["error"]


def test_list_get_and_cancel_a_running_job(api: Api, api2: Api, login: LoginNode):
    jobid = submit(api)["jobid"]
    listed = api.task_data(api.get("/compute/jobs"))
    mine = [job for job in listed.values() if job["jobid"] == str(jobid)]
    assert len(mine) == 1 and mine[0]["user"] == "test1"
    assert mine[0]["state"] in ("PENDING", "RUNNING")
    one = api.task_data(api.get(f"/compute/jobs/{jobid}"))
    assert one["0"]["jobid"] == str(jobid) and one["0"]["partition"] == "part01"
    selected = api.task_data(api.get("/compute/jobs", jobs=str(jobid)))
    assert [job["jobid"] for job in selected.values()] == [str(jobid)]

    # Another user can neither see nor cancel it.
    assert api2.finished_task(api2.get(f"/compute/jobs/{jobid}"))["status"] == "400"
    refused = api2.finished_task(api2.request("DELETE", f"/compute/jobs/{jobid}"))
    assert refused["status"] == "400"
    assert slurm_state(login, jobid) in ("PENDING", "RUNNING")

    cancelled = api.request("DELETE", f"/compute/jobs/{jobid}")
    assert cancelled.status_code == 200
    assert api.finished_task(cancelled)["status"] == "200"
    eventually(lambda: slurm_state(login, jobid).startswith("CANCELLED"))


def test_job_ids_and_paging_are_checked_at_once(api: Api):
    assert api.get("/compute/jobs/abc").status_code == 400
    assert api.request("DELETE", "/compute/jobs/1;id").status_code == 400
    assert api.get("/compute/jobs", jobs="1,x").status_code == 400
    assert api.get("/compute/jobs", pageSize="0").status_code == 400
    assert api.get("/compute/acct", pageNumber="-1").status_code == 400


def test_acct_with_a_time_window(api: Api, login: LoginNode):
    jobid = submit(api, b"#!/bin/bash\ntrue\n")["jobid"]
    eventually(lambda: slurm_state(login, jobid) == "COMPLETED")
    today = datetime.date.today()
    yesterday = str(today - datetime.timedelta(1))

    def window() -> list[dict]:
        rows = api.task_data(api.get("/compute/acct", starttime=yesterday))
        # sacct's time-window query sees a job a few seconds after its plain query does
        return rows if str(jobid) in {row["jobid"] for row in rows} else []

    rows = eventually(window, timeout=30)
    paged = api.task_data(api.get("/compute/acct", starttime=yesterday, pageSize="1"))
    assert len(rows) >= 2 and paged == rows[:1]  # all rows unless paging is asked for
    assert all(row["user"] == "test1" for row in rows)
    row = next(row for row in rows if row["jobid"] == str(jobid))
    assert row["state"] == "COMPLETED" and row["nodes"] == "1"
    future = today + datetime.timedelta(days=30)
    later = api.task_data(api.get("/compute/acct", starttime=str(future), endtime=str(future)))
    assert later == []
    bad = api.get("/compute/acct", starttime="yesterday; rm -rf ~")
    assert bad.status_code == 400


def test_nodes_partitions_and_reservations(api: Api, environment: Environment):
    names = environment.config.cluster.compute_node_names
    nodes = api.task_data(api.get("/compute/nodes"))
    assert sorted(node["NodeName"] for node in nodes) == names
    assert all("part01" in node["Partitions"] for node in nodes)
    one = api.task_data(api.get(f"/compute/nodes/{names[0]}"))
    assert [node["NodeName"] for node in one] == [names[0]]
    assert api.finished_task(api.get("/compute/nodes/nosuchnode"))["status"] == "400"
    partitions = api.task_data(api.get("/compute/partitions"))
    assert sorted(p["PartitionName"] for p in partitions) == ["part01", "part02", "xfer"]
    assert next(p for p in partitions if p["PartitionName"] == "part01")["Default"] == "YES"
    chosen = api.task_data(api.get("/compute/partitions", partitions="xfer"))
    assert [p["PartitionName"] for p in chosen] == ["xfer"]
    assert api.task_data(api.get("/compute/reservations")) == []
