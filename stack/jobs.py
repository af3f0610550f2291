"""Slurm work done as a task: the task started in the background, and job
submission (script written under $HOME/<jobsFolder>/<task id>/, sbatch, the
job's files). Shared by compute and storage's internal transfers."""

from __future__ import annotations

import logging
import posixpath
import re
import uuid
from collections.abc import Callable
from typing import Any

import redis
from flask import Response, g, jsonify

from firecrest_testbuild.stack import errors, slurm
from firecrest_testbuild.stack.api import Call
from firecrest_testbuild.stack.commands import Runner, quote
from firecrest_testbuild.stack.context import StackContext, stack_context
from firecrest_testbuild.stack.errors import ApiError
from firecrest_testbuild.stack.taskstore import Outcome, TaskStatus

ACCOUNT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
OUTPUT_TAIL_BYTES = 1000

log = logging.getLogger("stack.jobs")


def fail_interrupted_tasks(context: StackContext) -> None:
    """Start hook of the services whose work runs as tasks: fail what a crash left running."""
    try:
        context.runner.fail_interrupted()
    except redis.RedisError as error:  # the store is down: /status/services tells
        log.warning("cannot look for interrupted tasks: %s", error)


def start_task(
    call: Call, service: str, work: Callable[[Runner], Outcome], status: int = 200
) -> tuple[Response, int]:
    """Answer with a new task and run `work` for it in the background."""
    context = stack_context()
    task = context.store.create(call.user, service, call.machine.name)
    runner = Runner(context.shell, context.config, call.user, call.machine, task["task_id"])
    context.runner.submit(task["task_id"], lambda: _outcome_of(work, runner))
    return task_created(task, status)


def _outcome_of(work: Callable[[Runner], Outcome], runner: Runner) -> Outcome:
    try:
        return work(runner)
    except ApiError as error:
        return TaskStatus.FAILED, error.error


def task_created(task: dict[str, Any], status: int) -> tuple[Response, int]:
    """The answer that names a new task (and the task id for the access log)."""
    g.task_id = task["task_id"]
    body = {"success": "Task created", "task_id": task["task_id"], "task_url": task["task_url"]}
    return jsonify(body), status


def account_option(account: str | None) -> str:
    if not account:
        return ""
    if not ACCOUNT.match(account):
        raise errors.bad_request(f"'account' {account!r} is not a valid account name")
    return f"--account={quote(account)}"


def submit_script(runner: Runner, name: str, content: bytes, options: str) -> Outcome:
    """Write the script into the task's job folder and submit it from there."""
    # $HOME-relative, as commands start in $HOME.
    folder = posixpath.join(runner.config.compute.jobs_folder, runner.task_id)
    ok, out, err = runner.run(
        f"mkdir -p -- {quote(folder)} && cat > {quote(folder + '/' + name)} && echo $HOME",
        stdin=content,
    )
    if not ok:
        return TaskStatus.FAILED, err or "The job folder cannot be written"
    absolute = posixpath.join(out.strip(), folder)
    return submitted(
        runner,
        f"sbatch --parsable --chdir={quote(absolute)} {options} -- "
        f"{quote(posixpath.join(absolute, name))}",
    )


def submitted(runner: Runner, sbatch: str) -> Outcome:
    ok, out, err = runner.run(sbatch)
    jobid = slurm.submitted_job_id(out) if ok else None
    if jobid is None:
        return TaskStatus.FAILED, err or out or "sbatch printed no job id"
    return TaskStatus.SUCCESS, {
        "result": "Job submitted",
        "jobid": int(jobid),
        **job_files(runner, jobid),
    }


def job_files(runner: Runner, jobid: str) -> dict[str, str]:
    return jobs_files(runner, [jobid])[jobid]


def jobs_files(runner: Runner, jobids: list[str]) -> dict[str, dict[str, str]]:
    """Each job's script and output files, and the end of what they hold so far.

    Two commands whatever the number of jobs (scontrol, then every tail in one
    line), since each command is an SSH login of its own.
    """
    if not jobids:
        return {}
    records = _job_records(runner, jobids)
    files = {
        jobid: {
            "job_file": records.get(jobid, {}).get("Command", "command-not-found"),
            "job_file_out": records.get(jobid, {}).get("StdOut", "stdout-file-not-found"),
            "job_file_err": records.get(jobid, {}).get("StdErr", "stderr-file-not-found"),
        }
        for jobid in jobids
    }
    paths = sorted({f[k] for f in files.values() for k in ("job_file_out", "job_file_err")})
    tails = _tails(runner, [path for path in paths if path.startswith("/")])
    for entry in files.values():
        entry["job_data_out"] = tails.get(entry["job_file_out"], "")
        entry["job_data_err"] = tails.get(entry["job_file_err"], "")
    return files


def _job_records(runner: Runner, jobids: list[str]) -> dict[str, dict[str, str]]:
    """scontrol's records by job id: of one job, or of every job it shows."""
    one = f" {quote(jobids[0])}" if len(jobids) == 1 else ""
    ok, out, _ = runner.run(f"scontrol -o show job{one}")
    records = slurm.parse_records(out) if ok else []
    if one:
        return {jobids[0]: records[0]} if records else {}
    by_id = {}
    for record in records:
        by_id[record.get("JobId", "")] = record
        if record.get("ArrayTaskId"):  # squeue names array tasks <array job>_<task>
            by_id[f"{record.get('ArrayJobId')}_{record['ArrayTaskId']}"] = record
    return by_id


def _tails(runner: Runner, paths: list[str]) -> dict[str, str]:
    """The last bytes of each file; a file not written yet (job waiting) gives ""."""
    if not paths:
        return {}
    marker = f"--{uuid.uuid4().hex}--"
    command = "; ".join(
        f"tail -c {OUTPUT_TAIL_BYTES} -- {quote(path)}; echo {marker}" for path in paths
    )
    _, out, _ = runner.run(command)
    parts = out.split(f"{marker}\n")
    return {path: part for path, part in zip(paths, parts, strict=False)}
