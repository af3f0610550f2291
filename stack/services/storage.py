"""Storage: large transfers through the S3 staging area, and transfers inside
a system as Slurm jobs on the transfer partition.

External upload: the user gets a presigned form (task 111), posts the file
to the staging area, the stack sees the object arrive (112) and has the
system fetch it with curl as the user (113), then checks its size (114, or
115 on any failure). External download: the system puts the file to a
presigned URL with curl as the user (116), and the task hands out a
presigned GET URL (117, or 118). Bytes never pass through the API.

Transfers in flight are kept in Redis, so a restarted storage service picks
them up again: waiting uploads keep waiting, interrupted moves run again.
"""

from __future__ import annotations

import json
import logging
import posixpath
import re
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from firecrest_testbuild.stack import errors, schemas
from firecrest_testbuild.stack.api import Call, Endpoint, Param, route
from firecrest_testbuild.stack.commands import PathState, probe, quote
from firecrest_testbuild.stack.errors import ApiError
from firecrest_testbuild.stack.jobs import (
    Outcome,
    Runner,
    account_option,
    start_task,
    submit_script,
    task_created,
)
from firecrest_testbuild.stack.services import Service
from firecrest_testbuild.stack.staging import Staging

blueprint = Blueprint("storage", __name__, url_prefix="/storage")
SERVICE = Service(name="storage", blueprint=blueprint)
_route = lambda endpoint: route(blueprint, endpoint, SERVICE.endpoints)  # noqa: E731

TRANSFERS = "storage-transfers"  # Redis hash: task id -> Transfer as JSON
CHECK_TIME_LIMIT = 10
JOB_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
JOB_TIME = re.compile(r"^(\d+-)?\d{1,2}(:\d{2}){0,2}$")
JOB_ID = re.compile(r"^\d{1,12}$")

UPLOAD_WAITING = "waiting"  # for the user's POST to the staging area
UPLOAD_MOVING = "moving"  # from the staging area to the system
DOWNLOAD_STAGING = "staging"  # from the system to the staging area
INVALIDATED = "invalidated"  # by the user, before the transfer ended
DONE = "done"  # kept until its URL expires, so that it can still be invalidated

log = logging.getLogger("stack.storage")


@dataclass
class Transfer:
    task_id: str
    kind: str  # "upload" or "download"
    user: str
    system: str
    bucket: str
    key: str
    path: str  # the file on the system: upload target, download source
    source: str  # as the client named it
    target: str  # as the client named it
    phase: str
    expires_at: float


def _context():
    return current_app.extensions["stack"]


def _storage_endpoint(path: str, summary: str, *params: Param, machine: bool = True) -> Endpoint:
    return Endpoint(
        "POST",
        f"/storage/{path}",
        summary,
        201,
        "Task creation error",
        params,
        machine=machine,
        tag="Storage",
        response=schemas.TASK_CREATED,
    )


# --- external transfers ---------------------------------------------------


@_route(
    _storage_endpoint(
        "xfer-external/upload",
        "Upload a file",
        Param("sourcePath", "form", required=True),
        Param("targetPath", "form", required=True),
    )
)
def external_upload(call: Call):
    source = posixpath.basename(call.params["sourcePath"].replace("\\", "/").rstrip("/"))
    if not source or any(char < " " for char in source):
        raise errors.bad_request("'sourcePath' names no file")
    target = _upload_destination(call, call.params["targetPath"], source)
    context = _context()
    task = context.store.create(call.user, "storage", call.machine.name)
    transfer = Transfer(
        task_id=task["task_id"],
        kind="upload",
        user=call.user,
        system=call.machine.name,
        bucket=context.staging.bucket_for(call.user),
        key=f"{task['task_id']}/{source}",
        path=target,
        source=call.params["sourcePath"],
        target=call.params["targetPath"],
        phase=UPLOAD_WAITING,
        expires_at=time.time() + context.config.storage.url_expiry_seconds,
    )
    context.store.update(task["task_id"], "110", _upload_data(transfer, "110", _waiting_text()))
    form = context.staging.upload_form(transfer.bucket, transfer.key)
    download_url = context.staging.get_url(transfer.bucket, transfer.key)
    message = _form_message(form, download_url, transfer.source)
    context.store.update(task["task_id"], "111", _upload_data(transfer, "111", message))
    context.transfers.track(transfer)
    return task_created(task, 201)


def _waiting_text() -> str:
    return "Waiting for Form URL from Object Storage to be retrieved"


def _upload_destination(call: Call, target: str, source_name: str) -> str:
    """The file an upload will become: inside targetPath if it is a directory."""
    if not target.startswith("/"):
        raise ApiError(
            400, f"{target} is an invalid path (give an absolute path)", errors.INVALID_PATH
        )
    state = _probe(call, target)
    if state.kind == "directory":
        folder, destination = target, posixpath.join(target, source_name)
    else:
        folder, destination = posixpath.dirname(target.rstrip("/")) or "/", target
        parent = _probe(call, folder)
        if parent.denied or state.denied:
            raise ApiError(400, errors.PERMISSION_DENIED_TEXT, errors.PERMISSION_DENIED)
        if parent.kind is None:
            raise ApiError(400, f"{target} is an invalid path", errors.INVALID_PATH)
        if parent.kind != "directory":
            raise ApiError(400, f"{folder} is not a directory", errors.NOT_A_DIRECTORY)
        state = parent
    if not state.writable:
        raise ApiError(
            400,
            f"{errors.PERMISSION_DENIED_TEXT}: {folder} is not writable",
            errors.PERMISSION_DENIED,
        )
    return destination


def _form_message(form, download_url: str, source: str) -> dict[str, Any]:
    """What a client needs to send the file: a curl command (the file as the
    client named it in sourcePath) and the same as parameters."""
    fields = form.fields
    command = (
        f"curl --show-error -s -i -X POST {form.url} "
        + " ".join(f"-F {quote(f'{name}={value}')}" for name, value in fields.items())
        + f" -F {quote(f'file=@{source}')}"
    )
    return {
        "command": command,
        "parameters": {
            "method": "POST",
            "url": form.url,
            "data": fields,
            "files": posixpath.basename(fields["key"]),
            "json": {},
            "headers": {},
            "params": {},
        },
        # The flat form of the same, as the tutorial shows it.
        "method": "POST",
        "url": form.url,
        "download_url": download_url,
        **fields,
    }


def _upload_data(transfer: Transfer, status: str, msg: Any) -> dict[str, Any]:
    return {
        "user": transfer.user,
        "system_name": transfer.system,
        "system_addr": transfer.system,
        "target": transfer.target,
        "source": transfer.source,
        "status": status,
        "hash_id": transfer.task_id,
        "trace_id": transfer.task_id,
        "msg": msg,
    }


@_route(
    _storage_endpoint(
        "xfer-external/download", "Download a file", Param("sourcePath", "form", required=True)
    )
)
def external_download(call: Call):
    path = call.params["sourcePath"]
    if not path.startswith("/"):
        raise ApiError(
            400, f"{path} is an invalid path (give an absolute path)", errors.INVALID_PATH
        )
    state = _probe(call, path)
    if state.denied or (state.kind is not None and not state.readable):
        raise ApiError(400, errors.PERMISSION_DENIED_TEXT, errors.PERMISSION_DENIED)
    if state.kind is None:
        raise ApiError(400, f"{path} not found", errors.NOT_FOUND)
    if state.kind == "directory":
        raise ApiError(400, f"{path} is a directory", errors.A_DIRECTORY)
    context = _context()
    task = context.store.create(call.user, "storage", call.machine.name)
    transfer = Transfer(
        task_id=task["task_id"],
        kind="download",
        user=call.user,
        system=call.machine.name,
        bucket=context.staging.bucket_for(call.user),
        key=f"{task['task_id']}/{posixpath.basename(path)}",
        path=path,
        source=path,
        target="",
        phase=DOWNLOAD_STAGING,
        expires_at=time.time() + context.config.storage.url_expiry_seconds,
    )
    context.store.update(task["task_id"], "116", {"source": path, "system_name": transfer.system})
    context.transfers.track(transfer)
    return task_created(task, 201)


@_route(
    Endpoint(
        "POST",
        "/storage/xfer-external/invalidate",
        "Invalidate temporary URL",
        201,
        "Error invalidating URL",
        (),
        machine=False,
        tag="Storage",
        response=schemas.obj(["success"], success=schemas.STRING),
        headers=("X-Task-Id",),
    )
)
def invalidate(call: Call):
    task_id = request.headers.get("X-Task-Id", "").strip()
    context = _context()
    task = context.store.get(call.user, task_id) if re.fullmatch(r"[0-9a-f]{32}", task_id) else None
    if task is None or not context.transfers.invalidate(task_id):
        raise errors.bad_request(f"Task {task_id!r} is no transfer of yours with a URL")
    return jsonify({"success": "URL invalidated successfully"}), 201


def _probe(call: Call, path: str) -> PathState:
    return probe(_context().shell, call.user, call.machine, path, CHECK_TIME_LIMIT)


class Transfers:
    """The transfers in flight, kept in Redis, moved along by one thread."""

    def __init__(self, context: Any, staging: Staging) -> None:
        self.context = context
        self.staging = staging
        self.redis = context.store.redis
        self.running: set[str] = set()  # moves and stagings running in this process
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def track(self, transfer: Transfer) -> None:
        self.redis.hset(TRANSFERS, transfer.task_id, json.dumps(asdict(transfer)))

    def invalidate(self, task_id: str) -> bool:
        """Remove the transfer's object so that its URLs stop working; False: unknown."""
        raw = self.redis.hget(TRANSFERS, task_id)
        if raw is None:
            return False
        transfer = Transfer(**json.loads(raw))
        if transfer.phase != DONE:
            transfer.phase = INVALIDATED
            self.track(transfer)
        self.staging.remove(transfer.bucket, transfer.key)
        return True

    def start(self) -> None:
        threading.Thread(target=self._loop, name="storage-transfers", daemon=True).start()

    def _loop(self) -> None:
        interval = self.context.config.storage.poll_interval
        while not self.stop.wait(interval):
            try:
                self.step()
            except Exception:  # keep watching whatever one round met
                log.exception("storage round failed")

    def step(self) -> None:
        """One round: every transfer in flight moves on if it can."""
        for task_id, raw in self.redis.hgetall(TRANSFERS).items():
            transfer = Transfer(**json.loads(raw))
            if transfer.phase == DONE:
                if time.time() > transfer.expires_at:
                    self.redis.hdel(TRANSFERS, task_id)
                continue
            with self.lock:
                if transfer.task_id in self.running:
                    continue
            self._advance(transfer)

    def _advance(self, transfer: Transfer) -> None:
        if transfer.phase == INVALIDATED:
            self._finish(
                transfer,
                "115" if transfer.kind == "upload" else None,
                "The URL was invalidated before the transfer finished",
            )
        elif transfer.phase == UPLOAD_WAITING:
            if self.staging.size_of(transfer.bucket, transfer.key) is not None:
                self.context.store.update(
                    transfer.task_id,
                    "112",
                    _upload_data(
                        transfer,
                        "112",
                        "Object Storage confirms that upload to Object Storage has finished",
                    ),
                )
                transfer.phase = UPLOAD_MOVING
                self.track(transfer)
                self._in_background(transfer, self._move_to_system)
            elif time.time() > transfer.expires_at:
                self._finish(transfer, "115", "The upload URL expired before any upload")
        elif transfer.phase == UPLOAD_MOVING:
            self._in_background(transfer, self._move_to_system)  # interrupted: run again
        elif transfer.phase == DOWNLOAD_STAGING:
            self._in_background(transfer, self._stage_from_system)

    def _in_background(self, transfer: Transfer, work) -> None:
        with self.lock:
            self.running.add(transfer.task_id)
        threading.Thread(target=self._run, args=(transfer, work), daemon=True).start()

    def _run(self, transfer: Transfer, work) -> None:
        try:
            work(transfer)
        except Exception as error:  # the task must end, whatever happened
            log.exception(
                "transfer %s failed", transfer.task_id, extra={"task_id": transfer.task_id}
            )
            status = "115" if transfer.kind == "upload" else "118"
            self._finish(transfer, status, f"Internal error: {type(error).__name__}")
        finally:
            with self.lock:
                self.running.discard(transfer.task_id)

    def _runner(self, transfer: Transfer) -> Runner:
        system = self.context.config.system(transfer.system)
        return Runner(self.context, transfer.user, system, transfer.task_id)

    def _move_to_system(self, transfer: Transfer) -> None:
        self.context.store.update(
            transfer.task_id,
            "113",
            _upload_data(transfer, "113", "Download from Object Storage to server has started"),
        )
        size = self.staging.size_of(transfer.bucket, transfer.key)
        if size is None:
            self._finish(transfer, "115", "The uploaded object is gone from the staging area")
            return
        url = self.staging.get_url(transfer.bucket, transfer.key)
        partial = transfer.path + ".part"
        runner = self._runner(transfer)
        ok, _, err = runner.run(
            f"curl -sSf -o {quote(partial)} {quote(url)} && mv -f -- {quote(partial)}"
            f" {quote(transfer.path)}",
            time_limit=self.context.config.storage.transfer_timeout,
        )
        if not ok:
            runner.run(f"rm -f -- {quote(partial)}")
            self._finish(transfer, "115", f"Moving the file to {transfer.path} failed: {err}")
            return
        ok, out, err = runner.run(f"stat -c %s -- {quote(transfer.path)}")
        if not ok or out.strip() != str(size):
            self._finish(
                transfer,
                "115",
                f"{transfer.path} has {out.strip() or err} bytes, the upload {size}",
            )
            return
        self._finish(transfer, "114", "Download from Object Storage to server has finished")

    def _stage_from_system(self, transfer: Transfer) -> None:
        url = self.staging.put_url(transfer.bucket, transfer.key)
        ok, _, err = self._runner(transfer).run(
            f"curl -sSf -X PUT -T {quote(transfer.path)} {quote(url)}",
            time_limit=self.context.config.storage.transfer_timeout,
        )
        if not ok:
            self._finish(transfer, "118", f"Staging {transfer.path} failed: {err}")
            return
        self._finish(transfer, "117", self.staging.get_url(transfer.bucket, transfer.key))

    def _finish(self, transfer: Transfer, status: str | None, message: str) -> None:
        """Record the outcome (status None: leave the task as it is); the transfer is done."""
        if status in ("114", "115"):
            self.context.store.update(
                transfer.task_id, status, _upload_data(transfer, status, message)
            )
        elif status == "117":
            self.context.store.update(
                transfer.task_id,
                status,
                {"url": message, "source": transfer.path, "system_name": transfer.system},
            )
        elif status == "118":
            self.context.store.update(
                transfer.task_id,
                status,
                {"error": message, "source": transfer.path, "system_name": transfer.system},
            )
        transfer.phase = DONE
        self.track(transfer)


# --- internal transfers: Slurm jobs on the transfer partition --------------

JOB_PARAMS = (
    Param("jobName", "form"),
    Param("time", "form"),
    Param("stageOutJobId", "form"),
    Param("account", "form"),
)


def _job_options(call: Call, default_name: str) -> tuple[list[str], str]:
    """The #SBATCH lines of the transfer job, and sbatch's command-line options."""
    settings = _context().config.storage
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


def _internal_job(call: Call, default_name: str, command: str):
    lines, options = _job_options(call, default_name)

    def work(runner: Runner) -> Outcome:
        script = "\n".join(
            ["#!/bin/bash", *lines, "", f"echo 'FirecREST task {runner.task_id}'", command, ""]
        )
        return submit_script(runner, "sbatch-job.sh", script.encode(), options)

    return start_task(call, "storage", work, 201)


def _readable_source(call: Call, path: str) -> None:
    state = _probe(call, path)
    if state.denied or (state.kind is not None and not state.readable):
        raise ApiError(400, errors.PERMISSION_DENIED_TEXT, errors.PERMISSION_DENIED)
    if state.kind is None:
        raise ApiError(400, f"{path} not found", errors.NOT_FOUND)


def _writable_destination(call: Call, path: str) -> None:
    """A target is fine when it is a writable directory, or its parent is one."""
    state = _probe(call, path)
    if state.kind != "directory":
        state = _probe(call, posixpath.dirname(path.rstrip("/")) or "/")
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


def _two_path_job(call: Call, operation: str, command_of) -> Any:
    source, target = _paths(call, "sourcePath", "targetPath")
    _readable_source(call, source)
    _writable_destination(call, target)
    return _internal_job(call, f"{operation}-job", command_of(source, target))


SOURCE_TARGET = (
    Param("sourcePath", "form", required=True),
    Param("targetPath", "form", required=True),
)


@_route(_storage_endpoint("xfer-internal/rsync", "rsync", *SOURCE_TARGET, *JOB_PARAMS))
def internal_rsync(call: Call):
    return _two_path_job(call, "rsync", lambda s, t: f"rsync -av -- {quote(s)} {quote(t)}")


@_route(_storage_endpoint("xfer-internal/mv", "move (rename) files", *SOURCE_TARGET, *JOB_PARAMS))
def internal_mv(call: Call):
    return _two_path_job(call, "mv", lambda s, t: f"mv -- {quote(s)} {quote(t)}")


@_route(
    _storage_endpoint("xfer-internal/cp", "copy files and directories", *SOURCE_TARGET, *JOB_PARAMS)
)
def internal_cp(call: Call):
    return _two_path_job(call, "cp", lambda s, t: f"cp -r --preserve=all -- {quote(s)} {quote(t)}")


@_route(
    _storage_endpoint(
        "xfer-internal/rm",
        "remove files or directories",
        Param("targetPath", "form", required=True),
        *JOB_PARAMS,
    )
)
def internal_rm(call: Call):
    [target] = _paths(call, "targetPath")
    _readable_source(call, target)
    _writable_destination(call, posixpath.dirname(target.rstrip("/")) or "/")
    return _internal_job(call, "rm-job", f"rm -rf -- {quote(target)}")


@_route(
    _storage_endpoint(
        "xfer-internal/compress",
        "compress files",
        *SOURCE_TARGET,
        Param("dereference", "form", "boolean", default=False),
        *JOB_PARAMS,
    )
)
def internal_compress(call: Call):
    follow = "--dereference " if call.params["dereference"] else ""

    def command(source: str, target: str) -> str:
        parent, base = posixpath.split(source.rstrip("/") or "/")
        return f"tar {follow}-czf {quote(target)} -C {quote(parent or '/')} -- {quote(base)}"

    return _two_path_job(call, "compress", command)


@_route(
    _storage_endpoint(
        "xfer-internal/extract",
        "extract files",
        *SOURCE_TARGET,
        Param("extension", "form", default="auto"),
        *JOB_PARAMS,
    )
)
def internal_extract(call: Call):
    extension = call.params["extension"]
    if extension not in ("auto", ".zip", ".tar", ".tgz", ".gz", ".bz2", ".tar.gz"):
        raise errors.bad_request(f"extension {extension!r}: use auto, .zip, .tar, .tgz, .gz, .bz2")

    def command(source: str, target: str) -> str:
        zipped = extension == ".zip" or (extension == "auto" and source.lower().endswith(".zip"))
        if zipped:
            return f"unzip -o {quote(source)} -d {quote(target)}"
        return f"tar -xf {quote(source)} -C {quote(target)}"

    return _two_path_job(call, "extract", command)
