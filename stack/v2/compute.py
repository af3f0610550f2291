"""Compute: the user's Slurm jobs over SSH (`/compute/{system}/jobs...`):
submitted with the script on stdin, listed from squeue and sacct as the
description's JobModel, cancelled, described, attached to."""

from __future__ import annotations

import re
from typing import Annotated, Any

from flask import Blueprint
from pydantic import Field, field_validator

from firecrest_testbuild.stack import slurm
from firecrest_testbuild.stack.commands import quote
from firecrest_testbuild.stack.errors import ApiError
from firecrest_testbuild.stack.v2 import models
from firecrest_testbuild.stack.v2.api import (
    Call,
    ValidationFailed,
    body,
    query,
    query_bool,
    route,
    v2_context,
)

blueprint = Blueprint("v2-compute", __name__, url_prefix="/compute/<system_name>")

JOB_ID = re.compile(r"^[a-zA-Z0-9]+$")  # the description's pattern
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
EPOCH_TIMES = "SLURM_TIME_FORMAT=%s "  # Slurm prints times as epoch seconds
SLURM_NAME = re.compile(r"^[A-Za-z0-9_.,:&|\[\]-]{1,200}$")  # accounts, partitions, constraints


class JobDescription(models.Body):
    working_directory: Annotated[str, Field(min_length=1)]
    script: str | None = None
    script_path: str | None = None
    name: str | None = None
    account: str | None = None
    partition: str | None = None
    reservation: str | None = None
    constraints: str | None = None
    standard_input: str | None = None
    standard_output: str | None = None
    standard_error: str | None = None
    env: dict[str, str] | list[str] = Field(default_factory=lambda: {"F7T_version": "v2.0.0"})

    @field_validator("account", "partition", "reservation", "constraints")
    @classmethod
    def _slurm_name(cls, value: str | None) -> str | None:
        if value is not None and value != "" and not SLURM_NAME.match(value):
            raise ValueError("holds characters Slurm names do not have")
        return value


class JobSubmission(models.Body):
    job: JobDescription


def _scheduler(call: Call, command: str, stdin: bytes = b"", env: str = "") -> tuple[int, str, str]:
    """A Slurm command under `timeout`; `env`: VAR=value words, which go first."""
    limit = v2_context().config.scheduler_timeout
    output = call.run(f"{env}timeout {limit} {command}", stdin, timeout=limit + 10)
    return output.exit_status, output.text, output.stderr.strip()


def _job_id(job_id: str) -> str:
    if not JOB_ID.match(job_id):
        raise ValidationFailed(f"Job id {job_id!r} does not match ^[a-zA-Z0-9]+$")
    return job_id


def _jobs(
    call: Call, job_id: str | None, allusers: bool, account: str | None
) -> list[dict[str, Any]]:
    """The jobs sacct knows (the last day's, or the one asked for), squeue's word
    on those the controller still holds (or slurmrestd's two lists)."""
    rest = call.slurmrest()
    if rest is not None:
        return rest.jobs(call.user, call.token, job_id, allusers, account)
    selection = f"--jobs={quote(job_id)}" if job_id else "--starttime=now-24hours"
    owner = "--allusers" if allusers else f"--user={quote(call.user)}"
    charged = f" --account={quote(account)}" if account else ""
    status, out, err = _scheduler(
        call,
        f"sacct {owner}{charged} {selection} --parsable2 --noheader --format={slurm.JOB_FIELDS}",
        env=EPOCH_TIMES,
    )
    if status != 0 and "Invalid job id" not in err:
        raise ApiError(400, f"sacct failed: {err}")
    accounted = slurm.parse_jobs(out)
    queue_owner = "" if allusers else f" --user={quote(call.user)}"
    queue_selection = f" --jobs={quote(job_id)}" if job_id else ""
    status, out, err = _scheduler(
        call,
        # Every state: a job that ended at once is in neither list otherwise.
        f"squeue{queue_owner}{charged}{queue_selection} --states=all --noheader"
        f" --format={quote(slurm.SQUEUE_JOB_FORMAT)}",
        env=EPOCH_TIMES,
    )
    return slurm.merge_jobs(accounted, slurm.parse_jobs(out) if status == 0 else [])


@route(blueprint, "GET", "/jobs")
def jobs(call: Call) -> dict[str, Any]:
    account = query("account")
    if account is not None and not SLURM_NAME.match(account):
        raise ValidationFailed(f"'account' {account!r} is not an account name")
    return {"jobs": _jobs(call, None, query_bool("allusers"), account)}


@route(blueprint, "GET", "/jobs/<job_id>")
def job(call: Call, job_id: str) -> dict[str, Any]:
    found = _jobs(call, _job_id(job_id), allusers=True, account=None)
    if not found:
        # pyfirecrest's wait_for_job waits while the message says "Job not found".
        raise ApiError(404, f"Job not found: {job_id}")
    return {"jobs": found}


def _options(job: JobDescription) -> str:
    options = [f"--chdir={quote(job.working_directory)}"]
    for flag, value in (
        ("--job-name", job.name),
        ("--account", job.account),
        ("--partition", job.partition),
        ("--reservation", job.reservation),
        ("--constraint", job.constraints),
        ("--input", job.standard_input),
        ("--output", job.standard_output),
        ("--error", job.standard_error),
    ):
        if value:
            options.append(f"{flag}={quote(value)}")
    return " ".join(options)


def _environment(env: dict[str, str] | list[str]) -> str:
    """VAR=value prefixes of sbatch, which passes them on (--export=ALL)."""
    pairs = dict(item.partition("=")[::2] for item in env) if isinstance(env, list) else env
    for name in pairs:
        if not ENV_NAME.match(name):
            raise ValidationFailed(f"environment variable name {name!r} is not valid")
    return "".join(f"{name}={quote(value)} " for name, value in pairs.items())


def _rest_job(job: JobDescription) -> dict[str, Any]:
    """The job as slurmrestd's job description (API 0.0.41 and later)."""
    pairs = (
        dict(item.partition("=")[::2] for item in job.env) if isinstance(job.env, list) else job.env
    )
    _environment(pairs)  # the same names are refused as over SSH
    described: dict[str, Any] = {
        "script": job.script,
        "current_working_directory": job.working_directory,
        # slurmrestd passes no environment of its own: a login's PATH, then the job's.
        "environment": [
            "PATH=/bin:/usr/bin:/usr/local/bin",
            *(f"{k}={v}" for k, v in pairs.items()),
        ],
    }
    for key, value in (
        ("name", job.name),
        ("account", job.account),
        ("partition", job.partition),
        ("reservation", job.reservation),
        ("constraints", job.constraints),
        ("standard_input", job.standard_input),
        ("standard_output", job.standard_output),
        ("standard_error", job.standard_error),
    ):
        if value:
            described[key] = value
    return described


@route(blueprint, "POST", "/jobs", status=201)
def submit(call: Call) -> dict[str, Any]:
    job = body(JobSubmission).job
    if bool(job.script) == bool(job.script_path):
        raise ValidationFailed("Give exactly one of `script` and `scriptPath`")
    rest = call.slurmrest()
    if rest is not None and job.script:
        return {"jobId": rest.submit(call.user, call.token, _rest_job(job))}
    if rest is not None:
        call.scheduler_over_ssh("Submitting a script by its path")
    command = f"sbatch --parsable --export=ALL {_options(job)}"
    env = _environment(job.env)
    if job.script_path:
        status, out, err = _scheduler(call, f"{command} -- {quote(job.script_path)}", env=env)
    else:
        assert job.script is not None
        status, out, err = _scheduler(call, command, job.script.encode(), env=env)
    job_id = slurm.submitted_job_id(out) if status == 0 else None
    if job_id is None:
        raise ApiError(400, f"The job was not submitted: {err or out.strip()}")
    return {"jobId": job_id}


@route(blueprint, "DELETE", "/jobs/<job_id>", status=204)
def cancel(call: Call, job_id: str) -> None:
    rest = call.slurmrest()
    if rest is not None:
        if not rest.cancel(call.user, call.token, _job_id(job_id)):
            raise ApiError(404, f"Job not found: {job_id}")
        return
    status, _, err = _scheduler(call, f"scancel --verbose {quote(_job_id(job_id))}")
    if "Invalid job id" in err:
        raise ApiError(404, f"Job not found: {job_id}")
    if "Access/permission denied" in err or "Permission denied" in err:
        raise ApiError(403, f"Job {job_id} is not yours to cancel")
    if status != 0:
        raise ApiError(400, f"scancel failed: {err}")


@route(blueprint, "GET", "/jobs/<job_id>/metadata")
def metadata(call: Call, job_id: str) -> dict[str, Any]:
    """The job's script and standard streams, while the controller knows the job."""
    call.scheduler_over_ssh("Job metadata")
    quoted = quote(_job_id(job_id))
    status, out, err = _scheduler(call, f"scontrol -o show job {quoted}")
    if status != 0:
        raise ApiError(404, f"Job not found: {job_id} ({err})")
    record = slurm.parse_records(out)[0] if out.strip() else {}
    _, script, _ = _scheduler(call, f"scontrol write batch_script {quoted} -")
    return {
        "jobs": [
            {
                "jobId": job_id,
                "script": script or None,
                "standardInput": record.get("StdIn"),
                "standardOutput": record.get("StdOut"),
                "standardError": record.get("StdErr"),
            }
        ]
    }


@route(blueprint, "PUT", "/jobs/<job_id>/attach", status=204)
def attach(call: Call, job_id: str) -> None:
    """Run a command in the job's allocation (`srun --overlap`), as upstream does."""
    call.scheduler_over_ssh("Attaching to a job")
    command = body(models.Attach).command
    status, _, err = _scheduler(
        call, f"srun --overlap --jobid={quote(_job_id(job_id))} -- {command}"
    )
    if status != 0:
        raise ApiError(400, f"The command could not be attached to job {job_id}: {err}")
