"""A response-altering proxy: the stack behind it, with faults put in between,
so that the conformance suites can be shown to fail where they should. The
product carries no fault switches; the faults live here."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}
# Requests to this path the proxy answers itself, 200 with nothing, never forwarded
# (where a fault sends what should have reached the object store).
SWALLOWED = "/__swallowed"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)

    def replace_json(self, document) -> None:
        self.body = json.dumps(document).encode()
        self.headers["Content-Type"] = "application/json"


Fault = Callable[[str, str, Answer], None]  # (method, path, answer): alter in place


class FaultProxy:
    def __init__(self, upstream: str, faults: list[Fault]) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults = faults
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self) -> FaultProxy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length) if length else b""
                if self.path.startswith(SWALLOWED):
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                upstream = requests.request(
                    self.command,
                    proxy.upstream + self.path,
                    headers=headers,
                    data=body,
                    timeout=300,
                    allow_redirects=False,
                )
                answer = Answer(
                    upstream.status_code,
                    {
                        k: v
                        for k, v in upstream.headers.items()
                        if k.lower() not in HOP_BY_HOP and k.lower() != "content-encoding"
                    },
                    upstream.content,
                )
                path = self.path.split("?", 1)[0]
                for fault in proxy.faults:
                    fault(self.command, path, answer)
                self.send_response(answer.status)
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = do_PUT = do_DELETE = _forward

            def log_message(self, *args: object) -> None:
                pass

        return Handler


def missing_path_is_not_an_error(method: str, path: str, answer: Answer) -> None:
    """ls of a path that does not exist answers 200 with nothing, no header."""
    if path == "/utilities/ls" and "X-Invalid-Path" in answer.headers:
        answer.status = 200
        del answer.headers["X-Invalid-Path"]
        answer.replace_json({"description": "List of contents", "output": []})


def ls_hides_dot_files(method: str, path: str, answer: Answer) -> None:
    if path == "/utilities/ls" and answer.status == 200:
        document = answer.json()
        document["output"] = [e for e in document["output"] if not e["name"].startswith(".")]
        answer.replace_json(document)


def partition_listings_never_finish(method: str, path: str, answer: Answer) -> None:
    """A task whose result is a list of partitions stays "In progress" forever."""
    if not path.startswith("/tasks/") or answer.status != 200:
        return
    document = answer.json()
    data = document["task"]["data"]
    if isinstance(data, list) and data and "PartitionName" in data[0]:
        document["task"].update(status="101", description="In progress", data={})
        answer.replace_json(document)


def exists_header_dropped(method: str, path: str, answer: Answer) -> None:
    answer.headers.pop("X-Exists", None)


def unknown_service_body_changed(method: str, path: str, answer: Answer) -> None:
    """An unknown service's 404 says something else than the reference's text:
    the description allows it (a SHOULD check warns, it fails nothing)."""
    if path.startswith("/status/services/") and answer.status == 404:
        answer.replace_json({"description": "No such service"})


ALL_FAULTS: list[Fault] = [
    missing_path_is_not_an_error,
    ls_hides_dot_files,
    partition_listings_never_finish,
    exists_header_dropped,
    unknown_service_body_changed,
]


# FirecREST v2: the faults the v2 suites must catch (tests/integration/test_conformance_v2.py).

V2_LS = re.compile(r"^/filesystem/[^/]+/ops/ls/?$")
V2_TRANSFER = re.compile(r"^/filesystem/[^/]+/transfer/[a-z]+/?$")
V2_JOB = re.compile(r"^/compute/[^/]+/jobs/([^/]+)/?$")


def v2_missing_path_is_not_an_error(method: str, path: str, answer: Answer) -> None:
    """ls of a path that does not exist answers 200 with an empty listing
    (an unknown system's refusal and a refused token stay as they are)."""
    if not V2_LS.match(path) or not 400 <= answer.status < 500 or answer.status in (401, 403):
        return
    if "system" in answer.body.decode(errors="replace").lower():
        return
    answer.status = 200
    answer.replace_json({"output": []})


def v2_ls_hides_dot_files(method: str, path: str, answer: Answer) -> None:
    if V2_LS.match(path) and answer.status == 200:
        document = answer.json()
        entries = document.get("output") or []
        document["output"] = [
            e for e in entries if not e["name"].rsplit("/", 1)[-1].startswith(".")
        ]
        answer.replace_json(document)


class V2TransferJobsNeverEnd:
    """The job of every transfer stays RUNNING whatever the scheduler says."""

    def __init__(self) -> None:
        self.jobs: set[str] = set()

    def __call__(self, method: str, path: str, answer: Answer) -> None:
        if V2_TRANSFER.match(path) and answer.status in (200, 201):
            self.jobs.add(str(answer.json()["transferJob"]["jobId"]))
        job = V2_JOB.match(path)
        if job and method == "GET" and job.group(1) in self.jobs and answer.status == 200:
            document = answer.json()
            for each in document.get("jobs") or []:
                each["status"]["state"] = "RUNNING"
            answer.replace_json(document)


class V2MultipartCompletionIgnored:
    """An upload's completeUploadUrl points at the proxy, which answers 200
    and drops it: the object is never assembled in the store. `proxy` is the
    proxy's URL (set once it runs)."""

    def __init__(self) -> None:
        self.proxy = ""

    def __call__(self, method: str, path: str, answer: Answer) -> None:
        if path.rstrip("/").endswith("/transfer/upload") and answer.status == 201:
            document = answer.json()
            directives = document.get("transferDirectives") or {}
            if directives.get("completeUploadUrl"):
                directives["completeUploadUrl"] = f"{self.proxy}{SWALLOWED}"
                answer.replace_json(document)


def v2_error_message_dropped(method: str, path: str, answer: Answer) -> None:
    """Client errors lose the ApiResponseError's required 'message'."""
    if not 400 <= answer.status < 500:
        return
    try:
        document = answer.json()
    except ValueError:
        return
    if isinstance(document, dict) and "message" in document:
        del document["message"]
        answer.replace_json(document)
