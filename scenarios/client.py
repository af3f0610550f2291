"""The suites' FirecREST client: real tokens from the target's identity
provider, every exchange recorded (for the conformance matrix and for
failure reports), and the one deadline-polling helper (`poll`) that every
wait of the suites and of the project's tests goes through."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import jwt
import requests

from firecrest_testbuild.scenarios.endpoints import V1, Catalog
from firecrest_testbuild.scenarios.target import Identity, Target
from firecrest_testbuild.scenarios.verdict import (
    OPERATION_ATTRIBUTE,
    must,
    reference,
    should,
    spec,
    tutorial,
)

FINAL_STATUSES = {"114", "115", "117", "118", "200", "400"}
TOKEN_MARGIN = 30  # seconds before expiry a token is renewed


SHARED = "session"  # the pseudo-test charged with session-scoped fixtures' requests


@dataclass(frozen=True)
class Exchange:
    test: str  # the test (or shared fixture's owner) that sent it
    phase: str  # setup, call or teardown
    method: str
    path: str
    operation: tuple[str, str] | None
    status: int
    request: str
    response: str
    # The operation the exchange serves: its own, or for a look at a task
    # (GET /tasks/{taskid}; v2: a look at a transfer's job) the operation
    # that created it.
    subject: tuple[str, str] | None = None


@dataclass
class Recorder:
    """What the suites sent and got, each exchange charged to the test and
    phase that sent it (the plugin sets them: `charged_to`)."""

    exchanges: list[Exchange] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    charges: list[tuple[str, str]] = field(default_factory=list)
    task_origins: dict[str, tuple[str, str]] = field(default_factory=dict)
    # The API generation's operations (the `target` fixture sets the target's).
    catalog: Catalog = V1

    @property
    def current(self) -> tuple[str, str]:
        return self.charges[-1] if self.charges else ("", "")

    def charge(self, test: str, phase: str) -> None:
        self.charges.append((test, phase))

    def release(self) -> None:
        if self.charges:
            self.charges.pop()

    @contextmanager
    def charged_to(self, test: str, phase: str) -> Iterator[None]:
        self.charge(test, phase)
        try:
            yield
        finally:
            self.release()

    def record(self, response: requests.Response, path: str) -> None:
        request = response.request
        body = request.body if isinstance(request.body, str | bytes) else b""
        shown = body[:300] if isinstance(body, str) else body[:300].decode(errors="replace")
        operation = self.catalog.operation_of(request.method or "", path)
        test, phase = self.current
        exchange = Exchange(
            test=test,
            phase=phase,
            method=request.method or "",
            path=path,
            operation=operation,
            status=response.status_code,
            request=f"{request.method} {request.url}\n{shown}".strip(),
            response=_response_text(response),
            subject=self._subject(path, operation),
        )
        if operation is not None:
            setattr(response, OPERATION_ATTRIBUTE, " ".join(operation))
            self._remember_task(response, operation)
        with self.lock:
            self.exchanges.append(exchange)

    def of_test(self, test: str) -> list[Exchange]:
        return [exchange for exchange in self.exchanges if exchange.test == test]

    def origin(self, task_id: str) -> str | None:
        """The operation ("GET /compute/jobs") that created a task, if recorded."""
        found = self.task_origins.get(task_id)
        return " ".join(found) if found else None

    def _subject(self, path: str, operation: tuple[str, str] | None) -> tuple[str, str] | None:
        if operation == self.catalog.follow_up:
            return self.task_origins.get(path.rstrip("/").rsplit("/", 1)[-1], operation)
        return operation

    def _remember_task(self, response: requests.Response, operation: tuple[str, str]) -> None:
        """A 'Task created' answer (v2: a transfer's job): later looks at that
        task or job serve this operation."""
        if operation == self.catalog.follow_up or not response.ok:
            return
        if "json" not in response.headers.get("Content-Type", ""):
            return
        try:
            task_id = _follow_up_id(response.json())
        except ValueError:
            return
        if task_id:
            self.task_origins[task_id] = operation


def _follow_up_id(body: object) -> str | None:
    """The id a created task (v1 `task_id`) or transfer job (v2
    `transferJob.jobId`) is followed by, if the body names one."""
    if not isinstance(body, dict):
        return None
    task_id = body.get("task_id")
    if isinstance(task_id, str):
        return task_id
    job = body.get("transferJob")
    job_id = job.get("jobId") if isinstance(job, dict) else None
    return str(job_id) if isinstance(job_id, str | int) else None


def _response_text(response: requests.Response) -> str:
    headers = " ".join(f"{k}: {v}" for k, v in response.headers.items() if k.startswith("X-"))
    content_type = response.headers.get("Content-Type", "")
    body = response.text[:500] if "json" in content_type or "text" in content_type else "<binary>"
    return f"HTTP {response.status_code} {headers}\n{body}".strip()


T = TypeVar("T")


class PollTimeout(AssertionError):
    """Polling ran past its deadline; says what was awaited and the last state seen."""


def poll(
    fetch: Callable[[], T],
    until: Callable[[T], object] = bool,
    *,
    timeout: float | None = None,
    deadline: float | None = None,
    what: str = "the condition",
    interval: float = 0.1,
    max_interval: float = 2.0,
    transient: tuple[type[Exception], ...] = (),
    show: Callable[[T], str] = repr,
) -> T:
    """Call `fetch` until `until(result)` holds (by default: the result is
    truthy) and return that result.

    The deadline is `timeout` seconds from now, or `deadline` (a
    `time.monotonic()` instant, so that several waits can share one budget).
    Between calls it sleeps `interval`, growing by half each round up to
    `max_interval` (equal values: a fixed pace). An exception listed in
    `transient` counts as "not yet". Past the deadline it raises PollTimeout
    naming `what` and showing the last state (`show` of the last result, or
    the last transient error).
    """
    if (timeout is None) == (deadline is None):
        raise ValueError("poll needs either a timeout or a deadline")
    end = deadline if deadline is not None else time.monotonic() + (timeout or 0)
    delay = interval
    while True:
        try:
            result = fetch()
        except transient as error:
            state = f"{type(error).__name__}: {error}"
        else:
            if until(result):
                return result
            state = show(result)
        left = end - time.monotonic()
        if left <= 0:
            waited = f"within {timeout:g} s" if timeout is not None else "by the deadline"
            raise PollTimeout(f"{what}: not reached {waited}; last state: {state}")
        time.sleep(min(delay, left))
        delay = min(delay * 1.5, max_interval)


class Tokens:
    """Access tokens of one identity, renewed before they expire."""

    def __init__(self, target: Target, identity: Identity) -> None:
        self.target = target
        self.identity = identity
        self.token = ""
        self.expires = 0.0

    def current(self) -> str:
        if time.time() > self.expires - TOKEN_MARGIN:
            self.token = self.fetch()
            self.expires = jwt.decode(self.token, options={"verify_signature": False})["exp"]
        return self.token

    def fetch(self) -> str:
        auth = self.target.auth
        form = {"client_id": auth.client_id, "client_secret": auth.client_secret}
        if self.identity.password is None:
            form["grant_type"] = "client_credentials"
        else:
            form |= {
                "grant_type": "password",
                "username": self.identity.name,
                "password": self.identity.password,
            }
        response = requests.post(auth.token_url, data=form, timeout=30)
        if response.status_code != 200:
            raise AssertionError(
                f"no token for {self.identity.name} from {auth.token_url}:"
                f" HTTP {response.status_code} {response.text[:200]}"
            )
        return response.json()["access_token"]


class Client:
    """FirecREST v1 as one identity sees it."""

    def __init__(self, target: Target, identity: Identity, recorder: Recorder) -> None:
        self.target = target
        self.identity = identity
        self.user = identity.name
        self.tokens = Tokens(target, identity)
        self.recorder = recorder
        self.base = target.api.url.rstrip("/")

    def request(
        self,
        method: str,
        path: str,
        machine: bool = True,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        anonymous: bool = False,
        **kwargs: Any,
    ) -> requests.Response:
        """One recorded exchange; `anonymous`: without any Authorization header."""
        sent = {} if anonymous else {"Authorization": f"Bearer {token or self.tokens.current()}"}
        if machine:
            sent["X-Machine-Name"] = self.target.system.name
        sent |= headers or {}
        response = requests.request(
            method, f"{self.base}{path}", headers=sent, timeout=120, **kwargs
        )
        self.recorder.record(response, path)
        return response

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.request("GET", path, params=params)

    def post(self, path: str, files: dict | None = None, **form: Any) -> requests.Response:
        return self.request("POST", path, data=form, files=files)

    def put(self, path: str, **form: Any) -> requests.Response:
        return self.request("PUT", path, data=form)

    def delete(self, path: str, **form: Any) -> requests.Response:
        return self.request("DELETE", path, data=form)

    def task(self, task_id: str) -> dict[str, Any]:
        response = self.request("GET", f"/tasks/{task_id}", machine=False)
        must(
            response.status_code == 200,
            f"GET /tasks/{task_id}: {response.status_code} {response.text[:200]}",
            TASK_IS_SHOWN,
            about=response,
        )
        task: dict[str, Any] = response.json()["task"]
        return task

    def wait_task(
        self, task_id: str, until: set[str] = FINAL_STATUSES, timeout: float | None = None
    ) -> dict[str, Any]:
        """Poll a task until its status is in `until`; on timeout, report its
        last state as a miss about the operation that created the task."""
        try:
            return poll(
                lambda: self.task(task_id),
                lambda task: task["status"] in until,
                timeout=timeout or self.target.limits.task_timeout,
                what=f"task {task_id} reaching status {sorted(until)}",
                show=lambda task: (
                    f"status {task['status']} ({task.get('description')}),"
                    f" data {str(task.get('data'))[:300]}"
                ),
            )
        except PollTimeout as timeout_error:
            must(False, str(timeout_error), TASK_ENDS, about=self.recorder.origin(task_id))
            raise  # must() raised already; this line keeps the type checker informed

    def created_task(self, response: requests.Response) -> str:
        """The task id of a 'Task created' answer (checked)."""
        what = f"{response.request.method} {response.request.path_url}"
        operation = getattr(response, OPERATION_ATTRIBUTE, what)
        must(
            response.status_code in (200, 201),
            f"{what}: expected a task, got {response.status_code} {response.text[:200]}",
            spec(operation, "a task is created: 200/201 'Task created' (Task-Creation-Success)"),
            about=response,
        )
        body = response.json()
        task_id = body.get("task_id")
        must(
            isinstance(task_id, str) and task_id, f"{what}: no task_id in {body}", TASK_ID, response
        )
        should(
            body.get("success") == "Task created",
            f"{what}: success is {body.get('success')!r}",
            TASK_CREATED_TEXT,
            about=response,
        )
        url = body.get("task_url")
        should(
            url is None or str(url).endswith(f"/tasks/{task_id}"),
            f"{what}: task_url {url!r} does not name the task",
            TASK_URL,
            about=response,
        )
        return str(task_id)

    def task_result(self, response: requests.Response) -> Any:
        """The data of the task a response created, which must end in status 200."""
        task = self.wait_task(self.created_task(response))
        must(
            task["status"] == "200",
            f"task ended {task['status']}: {str(task['data'])[:300]}",
            TASK_SUCCEEDS,
            about=response,
        )
        return task["data"]


TASK_IS_SHOWN = spec("GET /tasks/{taskid}", "200 with the task of its owner")
TASK_ENDS = spec(
    "GET /tasks/{taskid}",
    "a long running task's progress and result is tracked through its id: it ends",
)
TASK_ID = tutorial(
    "Submit a job", "the answer carries the task ID with which the request is tracked"
)
TASK_SUCCEEDS = spec(
    "GET /tasks/{taskid}", "the task of a successful request ends in status 200 with its result"
)
TASK_CREATED_TEXT = reference("every task-creating route", 'answers {"success": "Task created"}')
TASK_URL = reference(
    "compute.py", "task_url, when sent, is the task's URL (/tasks/<id>); storage sends none"
)
