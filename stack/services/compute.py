"""Compute: Slurm jobs submitted, listed, cancelled and accounted, as tasks.

A request is checked at once (machine, parameters) and answered with a task;
the Slurm commands run in the background as the caller and their outcome
becomes the task's data (status 200) or error (status 400).
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint

from firecrest_testbuild.stack import errors, schemas, slurm
from firecrest_testbuild.stack.api import (
    Call,
    Endpoint,
    Param,
    file_name,
    has_forbidden_char,
    route,
)
from firecrest_testbuild.stack.commands import Runner, probe, quote
from firecrest_testbuild.stack.context import stack_context
from firecrest_testbuild.stack.errors import ApiError
from firecrest_testbuild.stack.jobs import (
    account_option,
    fail_interrupted_tasks,
    jobs_files,
    start_task,
    submit_script,
    submitted,
)
from firecrest_testbuild.stack.services import Service
from firecrest_testbuild.stack.taskstore import Outcome, TaskStatus

blueprint = Blueprint("compute", __name__, url_prefix="/compute")
SERVICE = Service(name="compute", blueprint=blueprint, on_start=(fail_interrupted_tasks,))
_route = lambda endpoint: route(blueprint, endpoint, SERVICE.endpoints)  # noqa: E731

JOB_ID = re.compile(r"^\d+(\+\d+|_\d+|_\[\d+-\d+\])?$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SLURM_TIME = re.compile(r"^[A-Za-z0-9:+\-/T]{1,40}$")
NAME_LIST_ITEM = re.compile(r"^[A-Za-z0-9_.\[\]-]{1,100}$")

# `account` as FirecREST v1 screens it: "" is a 400 ("'account' is empty").
ACCOUNT = Param("account", "form", forbid_chars=True, allow_empty=False)


def _endpoint(method: str, path: str, summary: str, success: int, *params: Param) -> Endpoint:
    return Endpoint(
        method,
        f"/compute/{path}",
        summary,
        success,
        "Task creation error",
        params,
        tag="Compute",
        response=schemas.TASK_CREATED,
    )


def _submission_options(call: Call) -> str:
    options = []
    options.append(account_option(call.params["account"]))
    env = call.params["env"]
    if env:
        options.append(f"--export={quote(_export_list(env))}")
    return " ".join(option for option in options if option)


def _export_list(text: str) -> str:
    try:
        variables = json.loads(text)
    except json.JSONDecodeError as error:
        raise errors.bad_request(f"'env' is not valid JSON: {error.msg}") from None
    if not isinstance(variables, dict):
        raise errors.bad_request("'env' must be a JSON object of NAME: value")
    pairs = ["ALL"]
    for name, value in variables.items():
        value = str(value)
        if not ENV_NAME.match(name) or "," in value or "\n" in value:
            raise errors.bad_request(
                f"'env' entry {name!r} cannot be passed to Slurm (names: letters, digits, '_';"
                " values without ',' or newlines)"
            )
        pairs.append(f"{name}={value}")
    return ",".join(pairs)


@_route(
    _endpoint(
        "POST",
        "jobs/upload",
        "Submit Job by uploading a local script",
        201,
        Param("file", "file", required=True),
        ACCOUNT,
        Param("env", "form"),
    )
)
def submit_upload(call: Call):
    script = call.files["file"]
    name = file_name(script, "batch file")
    content = script.read()
    if not content.strip():
        raise errors.bad_request("The batch file is empty")
    options = _submission_options(call)
    return start_task(
        call,
        "compute",
        lambda runner: submit_script(runner, name, content, options),
        201,
    )


@_route(
    _endpoint(
        "POST",
        "jobs/path",
        "Submit Job by a given remote script",
        201,
        Param("targetPath", "form", required=True, forbid_chars=True),
        ACCOUNT,
        Param("env", "form"),
    )
)
def submit_path(call: Call):
    script = call.params["targetPath"]
    if not script.startswith("/"):
        raise ApiError(
            400, f"{script} is an invalid path (give an absolute path)", errors.INVALID_PATH
        )
    options = _submission_options(call)
    _require_script(call, script)
    folder = posixpath.dirname(script) or "/"
    return start_task(
        call,
        "compute",
        lambda runner: submitted(
            runner, f"sbatch --parsable --chdir={quote(folder)} {options} -- {quote(script)}"
        ),
        201,
    )


def _require_script(call: Call, script: str) -> None:
    """The script must be a file the user can read: checked before any task
    exists, with FirecREST v1's headers (its is_valid_file)."""
    context = stack_context()
    state = probe(
        context.shell, call.user, call.machine, script, context.config.limits.utilities_timeout
    )
    if state.denied:
        raise ApiError(400, errors.PERMISSION_DENIED_TEXT, errors.PERMISSION_DENIED)
    if state.kind is None:
        raise ApiError(400, f"{script} is an invalid path", errors.INVALID_PATH)
    if state.kind == "directory":
        raise ApiError(400, f"{script} is a directory", errors.A_DIRECTORY)
    if not state.readable:
        raise ApiError(400, errors.PERMISSION_DENIED_TEXT, errors.PERMISSION_DENIED)


def _job_ids(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    for value in values:
        if not JOB_ID.match(value):
            raise errors.bad_request(f"{value} is not a valid job ID")
    return values


def _page(call: Call, rows: list[Any]) -> list[Any]:
    """One page of rows when paging was asked for (25 a page from page 0), else all."""
    size, number = call.params["pageSize"], call.params["pageNumber"]
    if size is None and number is None:
        return rows
    size = DEFAULT_PAGE_SIZE if size is None else size
    if size < 1:
        raise errors.bad_request("'pageSize' must be at least 1")
    number = number or 0
    return rows[size * number : size * (number + 1)]


DEFAULT_PAGE_SIZE = 25
PAGING = (
    Param("pageSize", "query", "integer", description="rows a page (default 25 when paging)"),
    Param("pageNumber", "query", "integer", description="page from 0; no paging without either"),
)


def _squeue(runner: Runner, jobs: list[str] | None, own: bool) -> tuple[bool, list, str]:
    selection = f" --jobs={quote(','.join(jobs))}" if jobs else ""
    user = f" --user={quote(runner.user)}" if own else ""
    ok, out, err = runner.run(
        f"squeue --noheader --sort=-i --format={quote(slurm.SQUEUE_FORMAT)}{user}{selection}"
    )
    return ok, slurm.parse_squeue(out) if ok else [], err


def _with_files(runner: Runner, jobs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The jobs indexed "0", "1", ... as clients read them, with their files."""
    files = jobs_files(runner, [job["jobid"] for job in jobs])
    return {str(i): {**job, **files[job["jobid"]]} for i, job in enumerate(jobs)}


@_route(
    _endpoint(
        "GET",
        "jobs",
        "Retrieves information from all jobs",
        200,
        Param("jobs", "query", "list", forbid_chars=True),
        Param("userJobs", "query", "boolean", default=True),
        *PAGING,
    )
)
def list_jobs(call: Call):
    jobs = _job_ids(call.params["jobs"])
    _page(call, [])  # check the paging parameters now, not in the task

    def work(runner: Runner) -> Outcome:
        ok, rows, err = _squeue(runner, jobs, call.params["userJobs"])
        if not ok:
            return TaskStatus.FAILED, err
        page = _page(call, rows)
        return TaskStatus.SUCCESS, _with_files(runner, page)

    return start_task(call, "compute", work)


@_route(
    _endpoint(
        "GET",
        "jobs/{jobid}",
        "Retrieves information from a job",
        200,
        Param("jobid", "path", required=True, forbid_chars=True),
    )
)
def get_job(call: Call):
    jobid = _job_ids([call.params["jobid"]])[0]  # type: ignore[index]

    def work(runner: Runner) -> Outcome:
        ok, rows, err = _squeue(runner, [jobid], own=True)
        if not ok:
            return TaskStatus.FAILED, err
        if not rows:
            return (
                TaskStatus.FAILED,
                f"Job {jobid} is not among the jobs of {runner.user} in the queue",
            )
        return TaskStatus.SUCCESS, _with_files(runner, rows[:1])

    return start_task(call, "compute", work)


@_route(
    _endpoint(
        "DELETE",
        "jobs/{jobid}",
        "Delete Job",
        200,
        Param("jobid", "path", required=True, forbid_chars=True),
    )
)
def cancel_job(call: Call):
    # One job id or several, comma-separated, each passed to scancel (which
    # takes a list); a malformed id is refused at once.
    jobids = _job_ids(call.params["jobid"].split(","))
    assert jobids is not None

    def work(runner: Runner) -> Outcome:
        ok, out, err = runner.run(f"scancel -v {quote(*jobids)}")
        failed = not ok or "error" in err.lower()
        if failed:
            return TaskStatus.FAILED, err.split("error: ", 1)[-1] if err else "scancel failed"
        return TaskStatus.SUCCESS, out.strip()

    return start_task(call, "compute", work)


@_route(
    _endpoint(
        "GET",
        "acct",
        "Job account information",
        200,
        Param("jobs", "query", "list", forbid_chars=True),
        Param("starttime", "query"),
        Param("endtime", "query"),
        *PAGING,
    )
)
def accounting(call: Call):
    jobs = _job_ids(call.params["jobs"])
    _page(call, [])
    window = ""
    for name in ("starttime", "endtime"):
        value = call.params[name]
        if value:
            if not SLURM_TIME.match(value):
                raise errors.bad_request(
                    f"'{name}' {value!r} is not a Slurm time (YYYY-MM-DD[THH:MM[:SS]])"
                )
            window += f" --{name}={quote(value)}"
    selection = f" --jobs={quote(','.join(jobs))}" if jobs else ""

    def work(runner: Runner) -> Outcome:
        ok, out, err = runner.run(
            f"sacct -X --noheader --parsable2 --format={slurm.SACCT_FORMAT}"
            f" --user={quote(runner.user)}{window}{selection}"
        )
        if not ok:
            return TaskStatus.FAILED, err
        return TaskStatus.SUCCESS, _page(call, slurm.parse_sacct(out))

    return start_task(call, "compute", work)


def _names(values: list[str] | None, what: str, label: str) -> list[str] | None:
    """Names to select; `label` names a value in FirecREST v1's "has invalid char" error."""
    if values is None:
        return None
    for value in values:
        if has_forbidden_char(value):
            raise errors.bad_request(f"{label} '{value}' has invalid char")
        if not NAME_LIST_ITEM.match(value):
            raise errors.bad_request(f"{value!r} is not a valid {what} name")
    return values


@dataclass(frozen=True)
class Listing:
    """Records of `scontrol -a -o show <kind>`, summarised and optionally selected."""

    kind: str
    summary: Callable[[dict], dict]
    key: str  # the summary field that names a record
    # A name that matches nothing fails the task (nodes: scontrol's "Node x
    # not found" in FirecREST v1), or is left out of the list (partitions,
    # reservations: FirecREST v1 filters what scontrol listed).
    unknown_fails: bool

    def of(self, wanted: list[str] | None) -> Callable[[Runner], Outcome]:
        def work(runner: Runner) -> Outcome:
            ok, out, err = runner.run(f"scontrol -a -o show {self.kind}")
            if not ok:
                return TaskStatus.FAILED, err
            # With nothing to show, scontrol says "No <kind> in the system".
            found = [] if "in the system" in out else slurm.parse_records(out)
            records = [self.summary(record) for record in found]
            if wanted is None:
                return TaskStatus.SUCCESS, records
            missing = sorted(set(wanted) - {record[self.key] for record in records})
            if missing and self.unknown_fails:
                return (
                    TaskStatus.FAILED,
                    f"{self.kind.capitalize()} not found: {', '.join(missing)}",
                )
            return TaskStatus.SUCCESS, [record for record in records if record[self.key] in wanted]

        return work


NODES = Listing("nodes", slurm.node_summary, "NodeName", unknown_fails=True)
PARTITIONS = Listing("partitions", slurm.partition_summary, "PartitionName", unknown_fails=False)
RESERVATIONS = Listing(
    "reservations", slurm.reservation_summary, "ReservationName", unknown_fails=False
)


@_route(
    _endpoint(
        "GET",
        "nodes",
        "Retrieves information about all compute nodes",
        200,
        Param("nodes", "query", "list"),
    )
)
def nodes(call: Call):
    return start_task(call, "compute", NODES.of(_names(call.params["nodes"], "node", "node")))


@_route(
    _endpoint(
        "GET",
        "nodes/{nodeName}",
        "Retrieves information about a specific node",
        200,
        Param("nodeName", "path", required=True),
    )
)
def node(call: Call):
    return start_task(
        call, "compute", NODES.of(_names([call.params["nodeName"]], "node", "nodeName"))
    )


@_route(
    _endpoint(
        "GET",
        "partitions",
        "Retrieves information about all partitions",
        200,
        Param("partitions", "query", "list"),
    )
)
def partitions(call: Call):
    return start_task(
        call, "compute", PARTITIONS.of(_names(call.params["partitions"], "partition", "partition"))
    )


@_route(
    _endpoint(
        "GET",
        "reservations",
        "Retrieves information about all reservations",
        200,
        Param("reservations", "query", "list"),
        Param("partitions", "query", "list"),
    )
)
def reservations(call: Call):
    # The API document names the filter `partitions`; clients send `reservations`.
    wanted = call.params["reservations"] or call.params["partitions"]
    return start_task(
        call, "compute", RESERVATIONS.of(_names(wanted, "reservation", "reservations"))
    )
