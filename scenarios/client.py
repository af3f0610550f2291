"""The suites' FirecREST client: real tokens from the target's identity
provider, every exchange recorded (for the conformance matrix and for
failure reports), and the one deadline-polling helper (`poll`) that every
wait of the suites and of the project's tests goes through."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import jwt
import requests

from firecrest_testbuild.scenarios.endpoints import operation_of
from firecrest_testbuild.scenarios.target import Identity, Target

FINAL_STATUSES = {"114", "115", "117", "118", "200", "400"}
TOKEN_MARGIN = 30  # seconds before expiry a token is renewed


@dataclass(frozen=True)
class Exchange:
    test: str
    method: str
    path: str
    operation: tuple[str, str] | None
    status: int
    request: str
    response: str


@dataclass
class Recorder:
    """What the suites sent and got, attributed to the test that sent it."""

    exchanges: list[Exchange] = field(default_factory=list)
    current_test: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, response: requests.Response, path: str) -> None:
        request = response.request
        body = request.body if isinstance(request.body, str | bytes) else b""
        shown = body[:300] if isinstance(body, str) else body[:300].decode(errors="replace")
        exchange = Exchange(
            test=self.current_test,
            method=request.method or "",
            path=path,
            operation=operation_of(request.method or "", path),
            status=response.status_code,
            request=f"{request.method} {request.url}\n{shown}".strip(),
            response=_response_text(response),
        )
        with self.lock:
            self.exchanges.append(exchange)

    def of_test(self, test: str) -> list[Exchange]:
        return [exchange for exchange in self.exchanges if exchange.test == test]


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
        **kwargs: Any,
    ) -> requests.Response:
        sent = {"Authorization": f"Bearer {token or self.tokens.current()}"}
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
        assert response.status_code == 200, f"GET /tasks/{task_id}: {response.status_code}"
        return response.json()["task"]

    def wait_task(
        self, task_id: str, until: set[str] = FINAL_STATUSES, timeout: float | None = None
    ) -> dict[str, Any]:
        """Poll a task until its status is in `until`; on timeout, report its last state."""
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

    def created_task(self, response: requests.Response) -> str:
        """The task id of a 'Task created' answer (checked)."""
        assert response.status_code in (200, 201), (
            f"{response.request.method} {response.request.path_url}: expected a task,"
            f" got {response.status_code} {response.text[:200]}"
        )
        body = response.json()
        assert body.get("success") == "Task created", body
        assert body["task_url"].endswith(f"/tasks/{body['task_id']}"), body
        return body["task_id"]

    def task_result(self, response: requests.Response) -> Any:
        """The data of the task a response created, which must end in status 200."""
        task = self.wait_task(self.created_task(response))
        assert task["status"] == "200", f"task ended {task['status']}: {task['data']}"
        return task["data"]
