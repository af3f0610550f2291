"""External transfers through the S3 staging area: a state machine per
transfer, kept in Redis and moved along by one thread.

Upload: the user gets a presigned form (task 111) and posts the file to the
staging area; a round sees the object arrive (112) and has the system fetch
it with curl as the user (113), then compares sizes (114, or 115 on any
failure). Download: the system puts the file to a presigned URL with curl as
the user (116), and the task hands out a presigned GET URL (117, or 118).
Bytes never pass through the API.

Every transfer is one record in Redis, so a storage service that starts
again picks them up: waiting uploads keep being watched, interrupted moves
and stagings run again (a move writes to `<file>.part` first, so a rerun is
safe).
"""

from __future__ import annotations

import json
import logging
import posixpath
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from firecrest_testbuild.stack.commands import Runner, Shell, quote
from firecrest_testbuild.stack.config import StackConfig
from firecrest_testbuild.stack.staging import Staging, UploadForm
from firecrest_testbuild.stack.taskstore import TaskStatus, TaskStore

TRANSFERS = "storage-transfers"  # Redis hash: task id -> Transfer as JSON

log = logging.getLogger("stack.storage")


class Direction(StrEnum):
    UPLOAD = "upload"  # from the client to the system
    DOWNLOAD = "download"  # from the system to the client

    @property
    def failed(self) -> TaskStatus:
        if self is Direction.UPLOAD:
            return TaskStatus.DOWNLOAD_TO_SERVER_FAILED
        return TaskStatus.UPLOAD_FROM_FILESYSTEM_FAILED


class Phase(StrEnum):
    WAITING = "waiting"  # upload: for the user's POST to the staging area
    MOVING = "moving"  # upload: from the staging area to the system
    STAGING = "staging"  # download: from the system to the staging area
    INVALIDATED = "invalidated"  # by the user, before the transfer ended
    DONE = "done"  # kept until its URLs expire, so that it can still be invalidated


@dataclass
class Transfer:
    task_id: str
    kind: Direction
    user: str
    system: str
    bucket: str
    key: str  # the object: <task id>/<file name>
    path: str  # the file on the system: upload target, download source
    source: str  # as the client named it
    target: str  # as the client named it
    phase: Phase
    expires_at: float  # when its URLs stop working

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Transfer:
        fields = json.loads(raw)
        fields.update(kind=Direction(fields["kind"]), phase=Phase(fields["phase"]))
        return cls(**fields)


class Transfers:
    """The transfers in flight, kept in Redis, moved along by one thread."""

    def __init__(
        self, config: StackConfig, store: TaskStore, staging: Staging, shell: Shell
    ) -> None:
        if config.storage is None:
            raise ValueError("external transfers need the configuration's 'storage'")
        self.config = config
        self.settings = config.storage
        self.store = store
        self.staging = staging
        self.shell = shell
        self.redis = store.redis
        self.running: set[str] = set()  # moves and stagings running in this process
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def upload(
        self,
        task_id: str,
        user: str,
        system: str,
        *,
        name: str,
        path: str,
        source: str,
        target: str,
    ) -> None:
        """Hand out a form that posts the file `name` to the staging area, then watch for it."""
        transfer = self._new(task_id, Direction.UPLOAD, user, system, name, path, source, target)
        self._progress(transfer, TaskStatus.FORM_URL_WAITING)
        form = self.staging.upload_form(transfer.bucket, transfer.key)
        download_url = self.staging.get_url(transfer.bucket, transfer.key)
        message = _form_message(form, download_url, source)
        self._record(transfer, TaskStatus.FORM_URL_RECEIVED, message)
        self._save(transfer)

    def download(self, task_id: str, user: str, system: str, path: str) -> None:
        """Have the system stage the file `path`, then hand out its URL."""
        name = posixpath.basename(path)
        transfer = self._new(task_id, Direction.DOWNLOAD, user, system, name, path, path, "")
        self._record(transfer, TaskStatus.UPLOAD_FROM_FILESYSTEM_STARTED, None)
        self._save(transfer)

    def invalidate(self, task_id: str) -> bool:
        """Remove the transfer's object so that its URLs stop working; False: unknown."""
        raw = self.redis.hget(TRANSFERS, task_id)
        if raw is None:
            return False
        transfer = Transfer.from_json(raw)
        if transfer.phase is not Phase.DONE:
            transfer.phase = Phase.INVALIDATED
            self._save(transfer)
        self.staging.remove(transfer.bucket, transfer.key)
        return True

    def start(self) -> None:
        threading.Thread(target=self._loop, name="storage-transfers", daemon=True).start()

    def _loop(self) -> None:
        while not self.stop.wait(self.settings.poll_interval):
            try:
                self.step()
            except Exception:  # keep watching whatever one round met
                log.exception("storage round failed")

    def step(self) -> None:
        """One round: every transfer in flight moves on if it can."""
        for task_id, raw in self.redis.hgetall(TRANSFERS).items():
            transfer = Transfer.from_json(raw)
            if transfer.phase is Phase.DONE:
                if time.time() > transfer.expires_at:
                    self.redis.hdel(TRANSFERS, task_id)
                continue
            with self.lock:
                if transfer.task_id in self.running:
                    continue
            self._advance(transfer)

    def _new(
        self,
        task_id: str,
        kind: Direction,
        user: str,
        system: str,
        name: str,
        path: str,
        source: str,
        target: str,
    ) -> Transfer:
        return Transfer(
            task_id=task_id,
            kind=kind,
            user=user,
            system=system,
            bucket=self.staging.bucket_for(user),
            key=f"{task_id}/{name}",
            path=path,
            source=source,
            target=target,
            phase=Phase.WAITING if kind is Direction.UPLOAD else Phase.STAGING,
            expires_at=time.time() + self.settings.url_expiry_seconds,
        )

    def _save(self, transfer: Transfer) -> None:
        self.redis.hset(TRANSFERS, transfer.task_id, transfer.to_json())

    def _advance(self, transfer: Transfer) -> None:
        match transfer.phase:
            case Phase.INVALIDATED:
                # An invalidated download keeps the status it had.
                status = transfer.kind.failed if transfer.kind is Direction.UPLOAD else None
                self._finish(
                    transfer, status, "The URL was invalidated before the transfer finished"
                )
            case Phase.WAITING:
                self._watch_upload(transfer)
            case Phase.MOVING:
                self._in_background(transfer, self._move_to_system)  # interrupted: run again
            case Phase.STAGING:
                self._in_background(transfer, self._stage_from_system)

    def _watch_upload(self, transfer: Transfer) -> None:
        if self.staging.size_of(transfer.bucket, transfer.key) is not None:
            self._progress(transfer, TaskStatus.UPLOAD_CONFIRMED)
            transfer.phase = Phase.MOVING
            self._save(transfer)
            self._in_background(transfer, self._move_to_system)
        elif time.time() > transfer.expires_at:
            self._finish(transfer, transfer.kind.failed, "The upload URL expired before any upload")

    def _in_background(self, transfer: Transfer, work: Callable[[Transfer], None]) -> None:
        with self.lock:
            self.running.add(transfer.task_id)
        threading.Thread(target=self._run, args=(transfer, work), daemon=True).start()

    def _run(self, transfer: Transfer, work: Callable[[Transfer], None]) -> None:
        try:
            work(transfer)
        except Exception as error:  # the task must end, whatever happened
            log.exception(
                "transfer %s failed", transfer.task_id, extra={"task_id": transfer.task_id}
            )
            self._finish(transfer, transfer.kind.failed, f"Internal error: {type(error).__name__}")
        finally:
            with self.lock:
                self.running.discard(transfer.task_id)

    def _runner(self, transfer: Transfer) -> Runner:
        system = self.config.system(transfer.system)
        if system is None:
            raise LookupError(f"system {transfer.system} is no longer configured")
        return Runner(self.shell, self.config, transfer.user, system, transfer.task_id)

    def _move_to_system(self, transfer: Transfer) -> None:
        self._progress(transfer, TaskStatus.DOWNLOAD_TO_SERVER_STARTED)
        size = self.staging.size_of(transfer.bucket, transfer.key)
        if size is None:
            self._fail(transfer, "The uploaded object is gone from the staging area")
            return
        url = self.staging.get_url(transfer.bucket, transfer.key)
        partial = transfer.path + ".part"
        runner = self._runner(transfer)
        ok, _, err = runner.run(
            f"curl -sSf -o {quote(partial)} {quote(url)} && mv -f -- {quote(partial)}"
            f" {quote(transfer.path)}",
            time_limit=self.settings.transfer_timeout,
        )
        if not ok:
            runner.run(f"rm -f -- {quote(partial)}")
            self._fail(transfer, f"Moving the file to {transfer.path} failed: {err}")
            return
        ok, out, err = runner.run(f"stat -c %s -- {quote(transfer.path)}")
        if not ok or out.strip() != str(size):
            self._fail(
                transfer, f"{transfer.path} has {out.strip() or err} bytes, the upload {size}"
            )
            return
        finished = TaskStatus.DOWNLOAD_TO_SERVER_FINISHED
        self._finish(transfer, finished, finished.description)

    def _stage_from_system(self, transfer: Transfer) -> None:
        url = self.staging.put_url(transfer.bucket, transfer.key)
        ok, _, err = self._runner(transfer).run(
            f"curl -sSf -X PUT -T {quote(transfer.path)} {quote(url)}",
            time_limit=self.settings.transfer_timeout,
        )
        if not ok:
            self._fail(transfer, f"Staging {transfer.path} failed: {err}")
            return
        staged = self.staging.get_url(transfer.bucket, transfer.key)
        self._finish(transfer, TaskStatus.UPLOAD_FROM_FILESYSTEM_FINISHED, staged)

    def _fail(self, transfer: Transfer, reason: str) -> None:
        self._finish(transfer, transfer.kind.failed, reason)

    def _finish(self, transfer: Transfer, status: TaskStatus | None, message: str) -> None:
        """Record the outcome (status None: leave the task as it is); the transfer is done."""
        if status is not None:
            self._record(transfer, status, message)
        transfer.phase = Phase.DONE
        self._save(transfer)

    def _progress(self, transfer: Transfer, status: TaskStatus) -> None:
        """A step on the way, told in the status's own words."""
        self._record(transfer, status, status.description)

    def _record(self, transfer: Transfer, status: TaskStatus, message: Any) -> None:
        self.store.update(transfer.task_id, status, _task_data(transfer, status, message))


def _task_data(transfer: Transfer, status: TaskStatus, message: Any) -> dict[str, Any]:
    """A transfer task's data, shaped as clients read it for its direction."""
    if transfer.kind is Direction.UPLOAD:
        return {
            "user": transfer.user,
            "system_name": transfer.system,
            "system_addr": transfer.system,
            "target": transfer.target,
            "source": transfer.source,
            "status": status,
            "hash_id": transfer.task_id,
            "trace_id": transfer.task_id,
            "msg": message,
        }
    where = {"source": transfer.path, "system_name": transfer.system}
    if status is TaskStatus.UPLOAD_FROM_FILESYSTEM_FINISHED:
        return {"url": message, **where}
    if status is TaskStatus.UPLOAD_FROM_FILESYSTEM_FAILED:
        return {"error": message, **where}
    return where


def _form_message(form: UploadForm, download_url: str, source: str) -> dict[str, Any]:
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
