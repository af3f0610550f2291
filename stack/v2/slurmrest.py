"""The scheduler through slurmrestd with the user's token (FirecREST v2's
`connection_mode` rest and hybrid): jobs, nodes, partitions and
reservations from Slurm's REST API, as the description's models.

slurmrestd authenticates the caller by their JWT (`X-SLURM-USER-TOKEN`,
`X-SLURM-USER-NAME`; auth/jwt reads the user from the token). Jobs come
from both the controller (`/slurm/...`) and the database (`/slurmdb/...`),
the controller's record winning while it has one, as with squeue and sacct.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

from firecrest_testbuild.stack.errors import ApiError


def number(value: Any) -> int | None:
    """slurmrestd's numbers: plain, or `{"set", "infinite", "number"}` (None unless set)."""
    if isinstance(value, dict):
        if not value.get("set") or value.get("infinite"):
            return None
        value = value.get("number")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _first(states: Any) -> str:
    if isinstance(states, list):
        return str(states[0]) if states else "UNKNOWN"
    return str(states or "UNKNOWN")


def _status(state: Any, reason: Any, exit_code: Any) -> dict[str, Any]:
    code = exit_code if isinstance(exit_code, dict) else {}
    signal = code.get("signal", {}) if isinstance(code.get("signal"), dict) else {}
    return {
        "state": _first(state),
        "stateReason": reason if reason not in (None, "", "None") else None,
        "exitCode": number(code.get("return_code")),
        "interruptSignal": number(signal.get("id")),
    }


def controller_job(job: dict[str, Any]) -> dict[str, Any]:
    """A job of `/slurm/v0.0.4x/jobs` as v2's JobModel."""
    limit = number(job.get("time_limit"))
    start, end = number(job.get("start_time")), number(job.get("end_time"))
    return {
        "jobId": str(job.get("job_id")),
        "name": job.get("name", ""),
        "status": _status(job.get("job_state"), job.get("state_reason"), job.get("exit_code")),
        "tasks": [],
        "time": {
            "elapsed": None,
            "start": start or None,
            "end": end or None,
            "suspended": number(job.get("suspend_time")),
            "limit": limit * 60 if limit is not None else None,
        },
        "account": job.get("account") or None,
        "allocationNodes": number(job.get("node_count")) or 0,
        "cluster": job.get("cluster", ""),
        "group": job.get("group_name") or None,
        "nodes": job.get("nodes", ""),
        "partition": job.get("partition", ""),
        "priority": number(job.get("priority")),
        "killRequestUser": None,
        "user": job.get("user_name") or None,
        "workingDirectory": job.get("current_working_directory", ""),
    }


def _time(time: dict[str, Any]) -> dict[str, Any]:
    limit = number(time.get("limit"))
    return {
        "elapsed": number(time.get("elapsed")),
        "start": number(time.get("start")) or None,
        "end": number(time.get("end")) or None,
        "suspended": number(time.get("suspended")),
        "limit": limit * 60 if limit is not None else None,
    }


def database_job(job: dict[str, Any]) -> dict[str, Any]:
    """A job of `/slurmdb/v0.0.4x/jobs` as v2's JobModel, its steps as tasks."""
    state = job.get("state", {})
    return {
        "jobId": str(job.get("job_id")),
        "name": job.get("name", ""),
        "status": _status(state.get("current"), state.get("reason"), job.get("exit_code")),
        "tasks": [
            {
                "id": str(step.get("step", {}).get("id", "")),
                "name": step.get("step", {}).get("name", ""),
                "status": _status(step.get("state"), None, step.get("exit_code")),
                "time": _time(step.get("time", {})),
            }
            for step in job.get("steps", [])
        ],
        "time": _time(job.get("time", {})),
        "account": job.get("account") or None,
        "allocationNodes": number(job.get("allocation_nodes")) or 0,
        "cluster": job.get("cluster", ""),
        "group": job.get("group") or None,
        "nodes": job.get("nodes", ""),
        "partition": job.get("partition", ""),
        "priority": number(job.get("priority")),
        "killRequestUser": None,
        "user": job.get("user") or None,
        "workingDirectory": job.get("working_directory", ""),
    }


def node(record: dict[str, Any]) -> dict[str, Any]:
    cpus, allocated = number(record.get("cpus")), number(record.get("alloc_cpus"))
    states = [str(state) for state in record.get("state", [])]
    return {
        "name": record.get("name", ""),
        "hostname": record.get("hostname"),
        "address": record.get("address"),
        "state": states or ["UNKNOWN"],
        "partitions": list(record.get("partitions", [])),
        "features": list(record.get("features", [])),
        "cpus": cpus or 0,
        "allocCpus": allocated,
        "idleCpus": number(record.get("alloc_idle_cpus")),
        "cores": number(record.get("cores")),
        "sockets": number(record.get("sockets")),
        "threads": number(record.get("threads")),
        "weight": number(record.get("weight")),
        "cpuLoad": _load(record.get("cpu_load")),
        "freeMemory": number(record.get("free_mem")),
        "allocMemory": number(record.get("alloc_memory")),
    }


def _load(value: Any) -> float | None:
    """slurmrestd counts the load in hundredths (429 for scontrol's 4.29)."""
    hundredths = number(value)
    return hundredths / 100 if hundredths is not None else None


def partition(record: dict[str, Any]) -> dict[str, Any]:
    state = record.get("partition", {}).get("state", [])
    return {
        "name": record.get("name", ""),
        "cpus": number(record.get("cpus", {}).get("total")),
        "totalNodes": number(record.get("nodes", {}).get("total")),
        "partition": state,
    }


def reservation(record: dict[str, Any]) -> dict[str, Any]:
    features = record.get("features")
    return {
        "name": record.get("name", ""),
        "nodeList": record.get("node_list", ""),
        "startTime": number(record.get("start_time")) or 0,
        "endTime": number(record.get("end_time")) or 0,
        "features": features or None,
        "state": None,
    }


@dataclass(frozen=True)
class SlurmRest:
    """slurmrestd of one system, spoken to as the caller."""

    url: str  # e.g. http://controller:6820
    version: str  # the OpenAPI plugin's version, e.g. 0.0.41
    timeout: float

    def _call(
        self, method: str, path: str, user: str, token: str, body: Any = None
    ) -> dict[str, Any] | None:
        """The JSON answer; None for a 404 (a job slurmrestd does not know)."""
        headers = {"X-SLURM-USER-NAME": user, "X-SLURM-USER-TOKEN": token}
        try:
            answer = requests.request(
                method, f"{self.url}{path}", headers=headers, json=body, timeout=self.timeout
            )
        except requests.RequestException as error:
            raise ApiError(503, f"slurmrestd cannot be reached: {error}") from error
        if answer.status_code == 404:
            return None
        try:
            document: dict[str, Any] = answer.json()
        except ValueError:
            raise ApiError(503, f"slurmrestd answered HTTP {answer.status_code}") from None
        if answer.status_code in (401, 403):
            raise ApiError(403, f"slurmrestd refused {user}: {self._errors(document)}")
        if answer.status_code >= 400 or document.get("errors"):
            raise ApiError(400, f"slurmrestd: {self._errors(document)}")
        return document

    @staticmethod
    def _errors(document: dict[str, Any]) -> str:
        found = [
            str(error.get("description") or error.get("error") or error)
            for error in document.get("errors", [])
        ]
        return "; ".join(found) or "no reason given"

    def jobs(
        self, user: str, token: str, job_id: str | None, allusers: bool, account: str | None
    ) -> list[dict[str, Any]]:
        """The controller's jobs over the database's, the user's own unless `allusers`."""
        suffix = f"job/{job_id}" if job_id else "jobs"
        query = f"?account={account}" if account and not job_id else ""
        found: dict[str, dict[str, Any]] = {}
        stored = self._call("GET", f"/slurmdb/v{self.version}/{suffix}{query}", user, token)
        for record in (stored or {}).get("jobs", []):
            job = database_job(record)
            found[job["jobId"]] = job
        live = self._call("GET", f"/slurm/v{self.version}/{suffix}{query}", user, token)
        for record in (live or {}).get("jobs", []):
            job = controller_job(record)
            known = found.get(job["jobId"])
            if known is not None:
                # The controller's word, with the database's steps and the times it lacks.
                times = {key: value for key, value in job["time"].items() if value is not None}
                job = {**job, "tasks": known["tasks"], "time": {**known["time"], **times}}
            found[job["jobId"]] = job
        return [job for job in found.values() if allusers or job["user"] == user]

    def submit(self, user: str, token: str, job: dict[str, Any]) -> str:
        answer = self._call("POST", f"/slurm/v{self.version}/job/submit", user, token, {"job": job})
        job_id = (answer or {}).get("job_id")
        if job_id is None:
            raise ApiError(400, "slurmrestd did not submit the job")
        return str(job_id)

    def cancel(self, user: str, token: str, job_id: str) -> bool:
        """Whether the controller knew the job (slurmrestd answers 200 to the
        cancelling of any id, so the job is looked up first)."""
        path = f"/slurm/v{self.version}/job/{job_id}"
        if self._call("GET", path, user, token) is None:
            return False
        return self._call("DELETE", path, user, token) is not None

    def nodes(self, user: str, token: str) -> list[dict[str, Any]]:
        answer = self._call("GET", f"/slurm/v{self.version}/nodes", user, token) or {}
        return [node(record) for record in answer.get("nodes", [])]

    def partitions(self, user: str, token: str, hidden: bool) -> list[dict[str, Any]]:
        flags = "?flags=ALL" if hidden else ""
        answer = self._call("GET", f"/slurm/v{self.version}/partitions{flags}", user, token) or {}
        return [partition(record) for record in answer.get("partitions", [])]

    def reservations(self, user: str, token: str) -> list[dict[str, Any]]:
        answer = self._call("GET", f"/slurm/v{self.version}/reservations", user, token) or {}
        return [reservation(record) for record in answer.get("reservations", [])]
