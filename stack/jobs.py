"""Slurm work done as a task: the runner of a task's commands, and job
submission (script written under $HOME/<jobsFolder>/<task id>/, sbatch, the
job's files). Shared by compute and storage's internal transfers."""

from __future__ import annotations

import posixpath
import re
import uuid
from collections.abc import Callable
from typing import Any

from flask import current_app, g, jsonify

from firecrest_testbuild.stack import errors, slurm
from firecrest_testbuild.stack.api import Call
from firecrest_testbuild.stack.commands import quote
from firecrest_testbuild.stack.config import System
from firecrest_testbuild.stack.errors import ApiError
from firecrest_testbuild.stack.taskstore import ERROR, SUCCESS

ACCOUNT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
OUTPUT_TAIL_BYTES = 1000

Outcome = tuple[str, Any]  # (task status, task data)


class Runner:
    """Commands for one task, run as its user on its system."""

    def __init__(self, context: Any, user: str, system: System, task_id: str) -> None:
        self.context = context
        self.user = user
        self.system = system
        self.task_id = task_id

    def outcome_of(self, work: Callable[[Runner], Outcome]) -> Outcome:
        try:
            return work(self)
        except ApiError as error:
            return ERROR, error.error

    def run(self, command: str, stdin: bytes = b"", time_limit: int | None = None):
        """(succeeded, stdout, stderr) of `command`."""
        output = self.context.shell.run(
            self.user,
            self.system,
            command,
            time_limit or self.context.config.limits.compute_timeout,
            stdin,
            trace=self.task_id,
        )
        return output.exit_status == 0, output.text, output.stderr.strip()

    def jobs_folder(self) -> str:
        """$HOME-relative folder of this task's job files (commands start in $HOME)."""
        return posixpath.join(self.context.config.compute.jobs_folder, self.task_id)


def start_task(call: Call, service: str, work: Callable[[Runner], Outcome], status: int = 200):
    """Answer with a new task and run `work` for it in the background."""
    context = current_app.extensions["stack"]
    task = context.store.create(call.user, service, call.machine.name)
    runner = Runner(context, call.user, call.machine, task["task_id"])
    context.runner.submit(task["task_id"], lambda: runner.outcome_of(work))
    return task_created(task, status)


def task_created(task: dict[str, Any], status: int):
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
    folder = runner.jobs_folder()
    ok, out, err = runner.run(
        f"mkdir -p -- {quote(folder)} && cat > {quote(folder + '/' + name)} && echo $HOME",
        stdin=content,
    )
    if not ok:
        return ERROR, err or "The job folder cannot be written"
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
        return ERROR, err or out or "sbatch printed no job id"
    return SUCCESS, {"result": "Job submitted", "jobid": int(jobid), **job_files(runner, jobid)}


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
