"""Compute (v2): a job submitted, listed, looked at, its metadata read, run
to its end with its output written, or cancelled; another user's jobs stay
out of the caller's list; attaching to a running job where offered."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from firecrest_testbuild.scenarios.client import poll
from firecrest_testbuild.scenarios.v2.api import JOB_NOT_FOUND_YET, ApiV2, refused, state_of
from firecrest_testbuild.scenarios.verdict import reference, should, spec

pytestmark = [pytest.mark.api(2), pytest.mark.requires("scheduler")]

JOBS = "/compute/{system_name}/jobs"
JOB = f"{JOBS}/{{job_id}}"
RUNNING = ("RUNNING", "R")  # Slurm's, PBS's


def submit(api: ApiV2, folder: str, script: str, **job: Any) -> str:
    """POST a job (201 with its jobId, checked); returns the id."""
    description = {"script": script, "workingDirectory": folder, "name": "conformance", **job}
    if api.target.system.partition:
        description.setdefault("partition", api.target.system.partition)
    if api.target.system.account:
        description.setdefault("account", api.target.system.account)
    answer = api.jobs(method="POST", json={"job": description})
    assert answer.status_code == 201, (answer.status_code, answer.text[:300])
    job_id = answer.json().get("jobId")
    assert isinstance(job_id, str | int) and str(job_id), answer.text[:200]
    return str(job_id)


@pytest.mark.source(
    spec(
        f"POST {JOBS}, GET {JOBS}, GET {JOB}, GET {JOB}/metadata, DELETE {JOB}",
        "submit: 201 with jobId; the caller's jobs list it; the job and its metadata by id"
        " (jobs: [JobModel] / [JobMetadataModel]); cancel: 204, the job then ends",
    )
)
@pytest.mark.covers(f"POST {JOBS}", f"GET {JOBS}", f"GET {JOB}", f"GET {JOB}/metadata")
@pytest.mark.covers(f"DELETE {JOB}")
def test_a_job_is_listed_shown_and_cancelled(
    client: ApiV2, folder: str, cancel_at_end: Callable[[str], None]
):
    script = "#!/bin/bash\nsleep 300\n"
    job_id = submit(client, folder, script, standardOutput=f"{folder}/out.txt")
    cancel_at_end(job_id)
    listed = poll(
        lambda: client.jobs(),
        lambda answer: job_id in {str(job["jobId"]) for job in answer.json().get("jobs") or []},
        timeout=30,
        what=f"job {job_id} in GET {JOBS}",
        show=lambda answer: f"{answer.status_code} {answer.text[:200]}",
    )
    assert listed.status_code == 200
    job = client.job(job_id)
    assert job is not None and str(job["jobId"]) == job_id, job
    assert job["name"] == "conformance" and job["workingDirectory"].rstrip("/") == folder, job
    assert isinstance(job["status"]["state"], str | list), job
    metadata = client.jobs(f"/{job_id}/metadata")
    assert metadata.status_code == 200, metadata.text[:200]
    about = metadata.json()["jobs"][0]
    assert str(about["jobId"]) == job_id, about
    should(
        "sleep 300" in str(about.get("script")),
        f"metadata script is {str(about.get('script'))[:200]!r}",
        reference("compute router (job metadata)", "script: the job's batch script"),
        about=metadata,
    )
    cancelled = client.jobs(f"/{job_id}", method="DELETE")
    assert cancelled.status_code == 204, (cancelled.status_code, cancelled.text[:200])
    ended = client.wait_job(job_id, about=cancelled)
    should(
        "CANCELLED" in state_of(ended) or state_of(ended) == "F",
        f"a cancelled job ended {state_of(ended)}",
        reference("scheduler clients", "a cancelled Slurm job is CANCELLED (PBS: F)"),
        about=cancelled,
    )


@pytest.mark.source(
    spec(
        f"POST {JOBS}",
        "the job runs its script in workingDirectory with env, its output in standardOutput",
    )
)
@pytest.mark.covers(f"POST {JOBS}", f"GET {JOB}")
def test_a_job_runs_to_its_end_and_writes_its_output(client: ApiV2, folder: str):
    word = uuid.uuid4().hex[:8]
    script = '#!/bin/bash\necho "$CONFORMANCE_WORD $(pwd)"\n'
    job_id = submit(
        client,
        folder,
        script,
        standardOutput=f"{folder}/out.txt",
        env={"CONFORMANCE_WORD": word},
    )
    ended = client.wait_job(job_id)
    assert "COMPLETED" in state_of(ended) or state_of(ended) == "F", ended["status"]
    output = client.ops("GET", "view", params={"path": f"{folder}/out.txt"})
    assert output.status_code == 200, output.text[:200]
    assert output.json()["output"].split() == [word, folder], output.json()
    exit_code = ended["status"].get("exitCode")
    should(
        exit_code == 0,
        f"a job that ended well has exitCode {exit_code!r}",
        reference("scheduler clients", "status.exitCode is the job's exit code"),
    )


@pytest.mark.source(spec(f"GET {JOBS}", "without allusers: only the jobs the current user owns"))
@pytest.mark.covers(f"GET {JOBS}")
def test_another_users_jobs_are_not_listed(
    client: ApiV2, other: ApiV2, other_workdir: str, cancel_at_end: Callable[[str], None]
):
    theirs = submit(other, other_workdir, "#!/bin/bash\nsleep 60\n")
    try:
        mine = client.jobs()
        assert mine.status_code == 200, mine.text[:200]
        listed = {str(job["jobId"]) for job in mine.json().get("jobs") or []}
        assert theirs not in listed, f"{other.user}'s job {theirs} is in {client.user}'s list"
        assert all(job.get("user") in (None, client.user) for job in mine.json()["jobs"] or [])
    finally:
        other.jobs(f"/{theirs}", method="DELETE")


@pytest.mark.source(spec(f"GET {JOB}", "an error (ApiResponseError) for a job that is not"))
@pytest.mark.covers(f"GET {JOB}")
def test_an_unknown_job_is_an_error(client: ApiV2):
    answer = client.jobs("/999999999")
    message = refused(answer)
    should(
        answer.status_code == 404 and "Job not found" in message,
        f"an unknown job answers {answer.status_code} {message!r}",
        JOB_NOT_FOUND_YET,
        about=answer,
    )


@pytest.mark.requires("attach")
@pytest.mark.source(
    spec(f"PUT {JOB}/attach", "{command}: 204, the command runs inside the running job")
)
@pytest.mark.covers(f"PUT {JOB}/attach")
def test_attach_runs_a_command_in_a_running_job(
    client: ApiV2, folder: str, cancel_at_end: Callable[[str], None]
):
    job_id = submit(client, folder, "#!/bin/bash\nsleep 300\n")
    cancel_at_end(job_id)
    poll(
        lambda: client.job(job_id),
        lambda job: job is not None and state_of(job) in RUNNING,
        timeout=client.target.limits.task_timeout,
        what=f"job {job_id} running",
        interval=0.5,
    )
    attached = client.jobs(
        f"/{job_id}/attach", method="PUT", json={"command": f"echo attached > {folder}/att.txt"}
    )
    assert attached.status_code == 204, (attached.status_code, attached.text[:200])
    seen = poll(
        lambda: client.ops("GET", "view", params={"path": f"{folder}/att.txt"}),
        lambda answer: answer.status_code == 200,
        timeout=30,
        what="the attached command's output",
    )
    assert seen.json()["output"].strip() == "attached"
