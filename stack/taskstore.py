"""Tasks: the record of every asynchronous request, kept in Redis.

A task belongs to the user who made it; it carries a status code and its
description as FirecREST v1 defines them, and the data of its result. Tasks
outlive the API process and expire after the configured time.
"""

from __future__ import annotations

import datetime
import json
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum
from typing import Any

import redis


class TaskStatus(StrEnum):
    """A task's status: FirecREST v1's codes (strings in every answer)."""

    QUEUED = "100"
    IN_PROGRESS = "101"
    # External upload: a form for the staging area, then the move to the system.
    FORM_URL_WAITING = "110"
    FORM_URL_RECEIVED = "111"
    UPLOAD_CONFIRMED = "112"
    DOWNLOAD_TO_SERVER_STARTED = "113"
    DOWNLOAD_TO_SERVER_FINISHED = "114"
    DOWNLOAD_TO_SERVER_FAILED = "115"
    # External download: the system puts the file into the staging area.
    UPLOAD_FROM_FILESYSTEM_STARTED = "116"
    UPLOAD_FROM_FILESYSTEM_FINISHED = "117"
    UPLOAD_FROM_FILESYSTEM_FAILED = "118"
    SUCCESS = "200"
    FAILED = "400"

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self]


# Spelled as FirecREST v1 spells them: clients compare them.
DESCRIPTIONS = {
    TaskStatus.QUEUED: "Queued",
    TaskStatus.IN_PROGRESS: "In progress",
    TaskStatus.FORM_URL_WAITING: "Waiting for Form URL from Object Storage to be retrieved",
    TaskStatus.FORM_URL_RECEIVED: "Form URL from Object Storage received",
    TaskStatus.UPLOAD_CONFIRMED: (
        "Object Storage confirms that upload to Object Storage has finished"
    ),
    TaskStatus.DOWNLOAD_TO_SERVER_STARTED: "Download from Object Storage to server has started",
    TaskStatus.DOWNLOAD_TO_SERVER_FINISHED: "Download from Object Storage to server has finished",
    TaskStatus.DOWNLOAD_TO_SERVER_FAILED: "Download from Object Storage error",
    TaskStatus.UPLOAD_FROM_FILESYSTEM_STARTED: "Started upload from filesystem to Object Storage",
    TaskStatus.UPLOAD_FROM_FILESYSTEM_FINISHED: (
        "Upload from filesystem to Object Storage has finished succesfully"
    ),
    TaskStatus.UPLOAD_FROM_FILESYSTEM_FAILED: (
        "Upload from filesystem to Object Storage has finished with errors"
    ),
    TaskStatus.SUCCESS: "Finished successfully",
    TaskStatus.FAILED: "Finished with errors",
}


Outcome = tuple[TaskStatus, Any]  # how a task's work ended: its status and data

log = logging.getLogger("stack.tasks")


def _now() -> str:
    return datetime.datetime.now().strftime("%Y-%m-%dT%H:%M:%S")


class TaskStore:
    def __init__(self, client: redis.Redis, expiry_seconds: int, public_url: str) -> None:
        self.redis = client
        self.expiry = expiry_seconds
        self.public_url = public_url.rstrip("/")

    def create(self, user: str, service: str, system: str | None) -> dict[str, Any]:
        task_id = uuid.uuid4().hex
        now = _now()
        task = {
            "task_id": task_id,
            "hash_id": task_id,
            "user": user,
            "service": service,
            "system": system or "",
            "status": TaskStatus.QUEUED,
            "description": TaskStatus.QUEUED.description,
            "data": {},
            "created_at": now,
            "updated_at": now,
            "last_modify": now,
            "task_url": f"{self.public_url}/tasks/{task_id}",
        }
        pipeline = self.redis.pipeline()
        pipeline.set(_key(task_id), json.dumps(task), ex=self.expiry)
        pipeline.zadd(_user_key(user), {task_id: datetime.datetime.now().timestamp()})
        pipeline.expire(_user_key(user), self.expiry)
        pipeline.execute()
        return task

    def update(self, task_id: str, status: TaskStatus, data: Any = None) -> None:
        raw = self.redis.get(_key(task_id))
        if raw is None:
            return  # expired meanwhile: nobody can ask for it any more
        task = json.loads(raw)
        now = _now()
        task.update(
            status=status,
            description=status.description,
            updated_at=now,
            last_modify=now,
        )
        if data is not None:
            task["data"] = data
        self.redis.set(_key(task_id), json.dumps(task), ex=self.expiry)
        log.info("task %s is %s", task_id, status, extra={"task_id": task_id})

    def get(self, user: str, task_id: str) -> dict[str, Any] | None:
        """The task if `user` owns it (None for another user's and a missing one)."""
        task = self.find(task_id)
        return task if task is not None and task["user"] == user else None

    def find(self, task_id: str) -> dict[str, Any] | None:
        """The task whoever owns it, or None."""
        raw = self.redis.get(_key(task_id))
        if raw is None:
            return None
        task: dict[str, Any] = json.loads(raw)
        return task

    def of_user(self, user: str, wanted: list[str] | None = None) -> dict[str, dict[str, Any]]:
        ids = _text(self.redis.zrange(_user_key(user), 0, -1))
        if wanted is not None:
            ids = [task_id for task_id in ids if task_id in set(wanted)]
        if not ids:
            return {}
        found = {}
        gone = []
        for task_id, raw in zip(ids, self.redis.mget([_key(i) for i in ids]), strict=True):
            if raw is None:
                gone.append(task_id)
            else:
                found[task_id] = json.loads(raw)
        if gone:
            self.redis.zrem(_user_key(user), *gone)
        return found

    def healthy(self) -> bool:
        try:
            return bool(self.redis.ping())
        except redis.RedisError:
            return False


INTERRUPTED = (
    "The service restarted while this task was queued or running, so its outcome is unknown"
    " (a job may have been submitted: check /compute/jobs); make the request again"
)


class TaskRunner:
    """Runs a task's work in a thread pool and records how it ended.

    Tasks being worked on are kept in a Redis set per service; a runner that
    starts finds there the tasks its predecessor left unfinished and fails
    them, so no task stays "in progress" forever after a restart.
    """

    def __init__(self, store: TaskStore, workers: int, service: str) -> None:
        self.store = store
        self.active = f"active-tasks:{service}"
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="task")

    def fail_interrupted(self) -> list[str]:
        interrupted = _text(self.store.redis.smembers(self.active))
        for task_id in interrupted:
            self.store.update(task_id, TaskStatus.FAILED, INTERRUPTED)
            self.store.redis.srem(self.active, task_id)
            log.warning("task %s was interrupted by a restart", task_id, extra={"task_id": task_id})
        return interrupted

    def submit(self, task_id: str, work: Callable[[], Outcome]) -> None:
        self.store.redis.sadd(self.active, task_id)
        self.pool.submit(self._run, task_id, work)

    def _run(self, task_id: str, work: Callable[[], Outcome]) -> None:
        try:
            self.store.update(task_id, TaskStatus.IN_PROGRESS)
            status, data = work()
        except Exception:
            log.exception("task %s failed unexpectedly", task_id, extra={"task_id": task_id})
            status, data = (
                TaskStatus.FAILED,
                "Internal error while running the task; see the API's log",
            )
        try:
            self.store.update(task_id, status, data)
        finally:
            self.store.redis.srem(self.active, task_id)


def _key(task_id: str) -> str:
    return f"task:{task_id}"


def _user_key(user: str) -> str:
    return f"user-tasks:{user}"


def _text(members: Any) -> list[str]:
    """Members of a Redis set or sorted set as text (the client answers bytes)."""
    return [member.decode() for member in members]
