"""FirecREST v2 as one identity sees it: the system is a path segment,
bodies are JSON, and long work (every filesystem transfer) is a scheduler
job the client follows through /compute and whose log it reads.

The shapes checked here come from the API description
(firecrest-api-v2.5.6.yaml); how a transfer is followed, and which log lines
say it worked, from pyfirecrest 3.x's v2 client (its `_wait_for_transfer_job`
and `wait_for_job`), named as the source of those SHOULD checks.
"""

from __future__ import annotations

from typing import Any

import requests

from firecrest_testbuild.scenarios.client import Client, PollTimeout, Recorder, poll
from firecrest_testbuild.scenarios.endpoints import V2
from firecrest_testbuild.scenarios.target import Identity, Target
from firecrest_testbuild.scenarios.verdict import (
    OPERATION_ATTRIBUTE,
    Source,
    client,
    must,
    reference,
    should,
    spec,
)

PYFIRECREST = "pyfirecrest 3.x (v2 Firecrest)"
# pyfirecrest's sched_state_completed: a job is over when every step's state
# holds one of these (Slurm's, and PBS's F for finished).
FINAL_STATES = (
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "DEADLINE",
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "TIMEOUT",
    "F",
)
# What pyfirecrest reads in a transfer job's output log to decide it worked.
SUCCESS_LINES = (
    "File was successfully",
    "Files were successfully",
    "Multipart file upload successfully completed",
)
VERSION_HEADER = "F7T-AppVersion"

ERROR_MODEL = spec(
    "components: ApiResponseError",
    "every 4XX/5XX answer is an ApiResponseError: a JSON object with a string 'message'",
)
TRANSFER_JOB = spec(
    "components: TransferJob",
    "a transfer answers a transferJob with jobId, system, workingDirectory and"
    " logs {outputLog, errorLog}",
)
JOB_ENDS = spec(
    "GET /compute/{system_name}/jobs/{job_id}",
    "the status of a job by its id: a transfer's job reaches a final state",
)
LOG_SAYS_SUCCESS = client(
    PYFIRECREST,
    "a transfer worked when its job's output log (read with ops/view) holds 'File was"
    " successfully', 'Files were successfully' or 'Multipart file upload successfully"
    " completed' (_wait_for_transfer_job)",
)
JOB_NOT_FOUND_YET = client(
    PYFIRECREST,
    "a job the scheduler does not know (yet) answers 404 whose message holds 'Job not found'"
    " (wait_for_job retries on it)",
)
NOT_FOUND_TEXT = client(
    PYFIRECREST,
    "a missing path answers 404 whose message holds 'No such file or directory'"
    " (download's stat, _wait_for_transfer_job's view)",
)


class ApiV2(Client):
    """The suites' v2 client: every request recorded and charged like v1's."""

    def __init__(self, target: Target, identity: Identity, recorder: Recorder | None = None):
        super().__init__(target, identity, recorder or Recorder(catalog=V2))
        self.system = target.system.name
        # Transfer jobs a test started and did not see end: cancelled in its teardown.
        self.unfinished: list[str] = []

    def request(
        self,
        method: str,
        path: str,
        machine: bool = False,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        anonymous: bool = False,
        **kwargs: Any,
    ) -> requests.Response:
        # v2 names the system in the path: never X-Machine-Name.
        return super().request(method, path, False, token, headers, anonymous, **kwargs)

    def ops(
        self, method: str, name: str, body: dict[str, Any] | None = None, **kwargs: Any
    ) -> requests.Response:
        """/filesystem/{system}/ops/{name}: `body` as JSON, other keywords as requests'."""
        path = f"/filesystem/{self.system}/ops/{name}"
        return self.request(method, path, json=body, **kwargs)

    def transfer(
        self, method: str, name: str, body: dict[str, Any] | None = None, **kwargs: Any
    ) -> requests.Response:
        path = f"/filesystem/{self.system}/transfer/{name}"
        return self.request(method, path, json=body, **kwargs)

    def jobs(self, suffix: str = "", method: str = "GET", **kwargs: Any) -> requests.Response:
        return self.request(method, f"/compute/{self.system}/jobs{suffix}", **kwargs)

    def status(self, name: str, **params: Any) -> requests.Response:
        return self.request("GET", f"/status/{self.system}/{name}", params=params)

    def app_version(self) -> str | None:
        """The F7T-AppVersion header of GET /status/systems (pyfirecrest's server_version)."""
        return self.request("GET", "/status/systems").headers.get(VERSION_HEADER)

    def mkdir(self, path: str, parent: bool = False) -> requests.Response:
        return self.ops("POST", "mkdir", {"sourcePath": path, "parent": parent})

    def upload_small(self, folder: str, name: str, data: bytes) -> requests.Response:
        return self.ops("POST", "upload", params={"path": folder}, files={"file": (name, data)})

    def names(self, folder: str, **params: Any) -> set[str]:
        """The names ls lists in `folder` (checked: 200 with an output list)."""
        answer = self.ops("GET", "ls", params={"path": folder, **params})
        must(
            answer.status_code == 200 and isinstance(answer.json().get("output"), list),
            f"ls {folder}: {answer.status_code} {answer.text[:200]}",
            spec("GET /filesystem/{system_name}/ops/ls", "200 with output: a list of File"),
            about=answer,
        )
        return {entry["name"] for entry in answer.json()["output"]}

    def job(self, job_id: str) -> dict[str, Any] | None:
        """The job's JobModel, or None while the scheduler does not know it (404)."""
        answer = self.jobs(f"/{job_id}")
        if answer.status_code == 404:
            message = _message(answer)
            should(
                "Job not found" in message,
                f"job {job_id}: 404 says {message!r}",
                JOB_NOT_FOUND_YET,
                about=answer,
            )
            return None
        must(
            answer.status_code == 200 and bool(answer.json().get("jobs")),
            f"job {job_id}: {answer.status_code} {answer.text[:200]}",
            spec("GET /compute/{system_name}/jobs/{job_id}", "200 with jobs: [JobModel]"),
            about=answer,
        )
        found: dict[str, Any] = answer.json()["jobs"][0]
        return found

    def wait_job(self, job_id: str, about: object = None) -> dict[str, Any]:
        """Poll a job until it is over (pyfirecrest's final states); a job that
        never ends is a miss about `about` (the operation that made it)."""
        try:
            found = poll(
                lambda: self.job(job_id),
                lambda job: job is not None and is_over(job),
                timeout=self.target.limits.task_timeout,
                what=f"job {job_id} reaching a final state {FINAL_STATES}",
                interval=0.5,
                show=lambda job: f"state {state_of(job) if job else 'not known yet'}",
            )
            assert found is not None  # poll returns only what `until` accepted
            return found
        except PollTimeout as timeout:
            self.unfinished.append(job_id)
            must(False, str(timeout), JOB_ENDS, about=about or self.recorder.origin(job_id))
            raise  # must() raised already; this line keeps the type checker informed

    def transfer_job(self, answer: requests.Response, created: int = 201) -> dict[str, Any]:
        """The transferJob of a transfer's answer (checked against the description)."""
        operation = getattr(answer, OPERATION_ATTRIBUTE, answer.request.path_url)
        must(
            answer.status_code == created,
            f"{operation}: expected {created} with a transferJob, got {answer.status_code}"
            f" {answer.text[:300]}",
            spec(str(operation), f"{created} with a transferJob"),
            about=answer,
        )
        job = answer.json().get("transferJob")
        must(
            isinstance(job, dict)
            and isinstance(job.get("jobId"), str | int)
            and isinstance(job.get("system"), str)
            and isinstance(job.get("workingDirectory"), str)
            and isinstance(job.get("logs"), dict)
            and all(isinstance(job["logs"].get(k), str) for k in ("outputLog", "errorLog")),
            f"{operation}: transferJob is {job!r}",
            TRANSFER_JOB,
            about=answer,
        )
        should(
            str(job["system"]).lower() == self.system.lower(),
            f"{operation}: transferJob.system is {job['system']!r}, not {self.system!r}",
            reference("filesystem/transfer/router.py", "transferJob.system is the system's name"),
            about=answer,
        )
        return dict(job)

    def follow(self, answer: requests.Response, created: int = 201) -> dict[str, Any]:
        """What a client does with a transfer's answer: wait for its job to end,
        then read the job's output log and look for the success line."""
        transfer = self.transfer_job(answer, created)
        job_id = str(transfer["jobId"])
        self.wait_job(job_id, about=answer)
        log = self.ops("GET", "view", params={"path": transfer["logs"]["outputLog"]})
        text = log.json().get("output") if log.status_code == 200 else None
        should(
            isinstance(text, str) and any(line in text for line in SUCCESS_LINES),
            f"transfer job {job_id}: its output log {transfer['logs']['outputLog']} says"
            f" {str(text)[-300:]!r} ({log.status_code})",
            LOG_SAYS_SUCCESS,
            about=answer,
        )
        return transfer


def state_of(job: dict[str, Any]) -> str:
    state = job.get("status", {}).get("state", "")
    return ",".join(state) if isinstance(state, list) else str(state)


def is_over(job: dict[str, Any]) -> bool:
    """pyfirecrest's rule: every step's state holds a final state."""
    state = state_of(job)
    return bool(state) and all(
        any(final in step for final in FINAL_STATES) for step in state.split(",")
    )


def _message(answer: requests.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return ""
    return str(body.get("message", "")) if isinstance(body, dict) else ""


CLIENT_ERROR = reference(
    "firecrest-v2 (command error handling, FastAPI validation)",
    "a client's mistake is a 4XX: 404 a missing path or system, 403 a denied one, 400 an"
    " existing one or an unknown user, 422 a body that breaks its schema",
)


def failed(answer: requests.Response, source: Source | None = None) -> str:
    """An error answer (the description lists 4XX and 5XX for every operation)
    whose body is an ApiResponseError; returns its message. `source`: where the
    error itself is expected (the test's own source when None: a plain assert)."""
    operation = getattr(answer, OPERATION_ATTRIBUTE, answer.request.path_url)
    error = f"{operation}: expected an error, got {answer.status_code} {answer.text[:200]}"
    if source is None:
        assert answer.status_code >= 400, error
    else:
        must(answer.status_code >= 400, error, source, about=answer)
    try:
        body = answer.json()
    except ValueError:
        body = None
    must(
        isinstance(body, dict) and isinstance(body.get("message"), str),
        f"{operation}: the {answer.status_code} body is no ApiResponseError: {answer.text[:200]}",
        ERROR_MODEL,
        about=answer,
    )
    return str(body["message"])  # type: ignore[index]


def refused(answer: requests.Response, source: Source | None = None) -> str:
    """An error (MUST) that is a client error, 4XX, as the reference answers a
    client's mistake (SHOULD); returns its message."""
    message = failed(answer, source)
    should(
        400 <= answer.status_code < 500,
        f"a client's mistake answered {answer.status_code} {message[:200]!r}",
        CLIENT_ERROR,
        about=answer,
    )
    return message


def not_found(answer: requests.Response, source: Source | None = None) -> None:
    """A missing path: an error (MUST), 404 saying 'No such file or directory'
    (SHOULD: the reference's answer, which pyfirecrest reads)."""
    message = failed(answer, source)
    should(
        answer.status_code == 404 and "No such file or directory" in message,
        f"a missing path answers {answer.status_code} {message!r}",
        NOT_FOUND_TEXT,
        about=answer,
    )
