"""Storage's internal transfers: cp, mv, rsync, rm, compress and extract
inside a system, each a batch job on the transfer partition. The paths are
checked at once as the user; the task's data carries the job id and files."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable

from flask import Blueprint, Response

from firecrest_testbuild.stack import errors
from firecrest_testbuild.stack.api import Call, Endpoint, Param, route
from firecrest_testbuild.stack.commands import Runner, quote
from firecrest_testbuild.stack.config import Storage
from firecrest_testbuild.stack.context import stack_context
from firecrest_testbuild.stack.errors import ApiError
from firecrest_testbuild.stack.jobs import account_option, start_task, submit_script
from firecrest_testbuild.stack.services.storage.common import (
    probe_path,
    require_readable,
    storage_endpoint,
)
from firecrest_testbuild.stack.taskstore import Outcome

blueprint = Blueprint("storage_internal", __name__, url_prefix="/storage")
ENDPOINTS: list[Endpoint] = []
_route = lambda endpoint: route(blueprint, endpoint, ENDPOINTS)  # noqa: E731

JOB_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
JOB_TIME = re.compile(r"^(\d+-)?\d{1,2}(:\d{2}){0,2}$")
JOB_ID = re.compile(r"^\d{1,12}$")

# Screened as FirecREST v1 does (validate_input): a 400 for its forbidden
# characters, and for an empty `account`.
JOB_PARAMS = (
    Param("jobName", "form", forbid_chars=True),
    Param("time", "form"),
    Param("stageOutJobId", "form", forbid_chars=True),
    Param("account", "form", forbid_chars=True, allow_empty=False),
)
SOURCE_TARGET = (
    Param("sourcePath", "form", required=True, forbid_chars=True),
    Param("targetPath", "form", required=True, forbid_chars=True),
)


def _settings() -> Storage:
    settings = stack_context().config.storage
    assert settings is not None, "storage is served only when configured"
    return settings


def _job_options(call: Call, default_name: str) -> tuple[list[str], str]:
    """The #SBATCH lines of the transfer job, and sbatch's command-line options."""
    settings = _settings()
    name = call.params["jobName"] or default_name
    limit = call.params["time"] or settings.xfer_time_limit
    if not JOB_NAME.match(name):
        raise errors.bad_request(f"'jobName' {name!r}: use letters, digits, '_', '.', '-'")
    if not JOB_TIME.match(limit):
        raise errors.bad_request(f"'time' {limit!r}: use [days-]hours[:minutes[:seconds]]")
    lines = [
        f"#SBATCH --job-name={name}",
        f"#SBATCH --partition={settings.xfer_partition}",
        f"#SBATCH --time={limit}",
        "#SBATCH --output=job-%j.out",
        "#SBATCH --error=job-%j.err",
    ]
    after = call.params["stageOutJobId"]
    if after:
        if not JOB_ID.match(after):
            raise errors.bad_request(f"'stageOutJobId' {after!r} is not a job id")
        lines.append(f"#SBATCH --dependency=afterok:{after}")
    return lines, account_option(call.params["account"])


def _internal_job(call: Call, default_name: str, command: str) -> tuple[Response, int]:
    lines, options = _job_options(call, default_name)

    def work(runner: Runner) -> Outcome:
        script = "\n".join(
            ["#!/bin/bash", *lines, "", f"echo 'FirecREST task {runner.task_id}'", command, ""]
        )
        return submit_script(runner, "sbatch-job.sh", script.encode(), options)

    return start_task(call, "storage", work, 201)


def _writable_destination(call: Call, path: str) -> None:
    """A target is fine when it is a writable directory, or its parent is one."""
    state = probe_path(call, path)
    if state.kind != "directory":
        state = probe_path(call, posixpath.dirname(path.rstrip("/")) or "/")
    if state.kind is None and not state.denied:
        raise ApiError(400, f"{path} is an invalid path", errors.INVALID_PATH)
    if state.denied or not state.writable:
        raise ApiError(400, errors.PERMISSION_DENIED_TEXT, errors.PERMISSION_DENIED)


def _paths(call: Call, *names: str) -> list[str]:
    values = [call.params[name] for name in names]
    for name, value in zip(names, values, strict=True):
        if not value.startswith("/"):
            raise ApiError(
                400,
                f"'{name}' {value} is an invalid path (give an absolute path)",
                errors.INVALID_PATH,
            )
    return values


def _two_path_job(
    call: Call, operation: str, command_of: Callable[[str, str], str]
) -> tuple[Response, int]:
    source, target = _paths(call, "sourcePath", "targetPath")
    require_readable(call, source)
    _writable_destination(call, target)
    return _internal_job(call, f"{operation}-job", command_of(source, target))


@_route(storage_endpoint("xfer-internal/rsync", "rsync", *SOURCE_TARGET, *JOB_PARAMS))
def internal_rsync(call: Call) -> tuple[Response, int]:
    return _two_path_job(call, "rsync", lambda s, t: f"rsync -av -- {quote(s)} {quote(t)}")


@_route(storage_endpoint("xfer-internal/mv", "move (rename) files", *SOURCE_TARGET, *JOB_PARAMS))
def internal_mv(call: Call) -> tuple[Response, int]:
    return _two_path_job(call, "mv", lambda s, t: f"mv -- {quote(s)} {quote(t)}")


@_route(
    storage_endpoint("xfer-internal/cp", "copy files and directories", *SOURCE_TARGET, *JOB_PARAMS)
)
def internal_cp(call: Call) -> tuple[Response, int]:
    return _two_path_job(call, "cp", lambda s, t: f"cp -r --preserve=all -- {quote(s)} {quote(t)}")


@_route(
    storage_endpoint(
        "xfer-internal/rm",
        "remove files or directories",
        Param("targetPath", "form", required=True, forbid_chars=True),
        *JOB_PARAMS,
    )
)
def internal_rm(call: Call) -> tuple[Response, int]:
    [target] = _paths(call, "targetPath")
    require_readable(call, target)
    _writable_destination(call, posixpath.dirname(target.rstrip("/")) or "/")
    return _internal_job(call, "rm-job", f"rm -rf -- {quote(target)}")


@_route(
    storage_endpoint(
        "xfer-internal/compress",
        "compress files",
        *SOURCE_TARGET,
        Param("dereference", "form", "boolean", default=False),
        *JOB_PARAMS,
    )
)
def internal_compress(call: Call) -> tuple[Response, int]:
    follow = "--dereference " if call.params["dereference"] else ""

    def command(source: str, target: str) -> str:
        parent, base = posixpath.split(source.rstrip("/") or "/")
        return f"tar {follow}-czf {quote(target)} -C {quote(parent or '/')} -- {quote(base)}"

    return _two_path_job(call, "compress", command)


@_route(
    storage_endpoint(
        "xfer-internal/extract",
        "extract files",
        *SOURCE_TARGET,
        Param("extension", "form", default="auto"),
        *JOB_PARAMS,
    )
)
def internal_extract(call: Call) -> tuple[Response, int]:
    extension = call.params["extension"]
    if extension not in ("auto", ".zip", ".tar", ".tgz", ".gz", ".bz2", ".tar.gz"):
        raise errors.bad_request(f"extension {extension!r}: use auto, .zip, .tar, .tgz, .gz, .bz2")

    def command(source: str, target: str) -> str:
        zipped = extension == ".zip" or (extension == "auto" and source.lower().endswith(".zip"))
        if zipped:
            return f"unzip -o {quote(source)} -d {quote(target)}"
        return f"tar -xf {quote(source)} -C {quote(target)}"

    return _two_path_job(call, "extract", command)
