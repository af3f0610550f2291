"""Reading Slurm's command output (squeue, sacct, scontrol -o) into FirecREST v1 records."""

from __future__ import annotations

import re
from typing import Any

SQUEUE_FORMAT = "%i|%P|%u|%T|%M|%L|%D|%R|%S|%j"
SQUEUE_KEYS = (
    "jobid",
    "partition",
    "user",
    "state",
    "time",
    "time_left",
    "nodes",
    "nodelist",
    "start_time",
)

SACCT_FORMAT = "JobID,Partition,User,State,Start,CPUTime,End,NNodes,NodeList,Elapsed,JobName"

FIELD = re.compile(r"(?:^|\s)([A-Z][A-Za-z0-9_:/]*)=(.*?)(?=\s[A-Z][A-Za-z0-9_:/]*=|$)")
SUBMITTED = re.compile(r"^(\d+)(?:;\S+)?$", re.MULTILINE)


def parse_squeue(text: str) -> list[dict[str, str]]:
    """Rows of `squeue --format=SQUEUE_FORMAT`; the job name comes last as it may hold '|'."""
    jobs = []
    for line in text.splitlines():
        parts = line.split("|", len(SQUEUE_KEYS))
        if len(parts) != len(SQUEUE_KEYS) + 1:
            continue
        job = dict(zip(SQUEUE_KEYS, parts[:-1], strict=True))
        job["name"] = parts[-1]
        jobs.append(job)
    return jobs


def parse_sacct(text: str) -> list[dict[str, str]]:
    """Rows of `sacct --parsable2 --format=SACCT_FORMAT`, keyed as FirecREST v1 does."""
    jobs = []
    for line in text.splitlines():
        parts = line.split("|", 10)
        if len(parts) != 11:
            continue
        jobid, partition, user, state, start, cputime, end, nnodes, nodelist, elapsed, name = parts
        jobs.append(
            {
                "jobid": jobid,
                "partition": partition,
                "name": name,
                "user": user,
                "state": state,
                "start_time": start,
                "time": cputime,
                "time_left": end,  # FirecREST v1 reports the end time under this key
                "cpu_time": cputime,
                "elapsed_time": elapsed,
                "termination_time": end,
                "nodes": nnodes,
                "nodelist": nodelist,
            }
        )
    return jobs


def parse_records(text: str) -> list[dict[str, str]]:
    """Records of `scontrol -o show ...`: one line each, Key=Value pairs.

    Fields may be parted by more than one space (`Partitions=xfer  BootTime=`
    in Slurm 22.05's node records), which belongs to no value.
    """
    return [
        {key: value.strip() for key, value in FIELD.findall(line)}
        for line in text.splitlines()
        if "=" in line
    ]


def node_summary(record: dict[str, str]) -> dict[str, Any]:
    return {
        "NodeName": record.get("NodeName", ""),
        "State": [state for state in record.get("State", "").split("+") if state],
        "Partitions": _listed(record.get("Partitions")),
        "ActiveFeatures": _listed(record.get("ActiveFeatures")),
    }


PARTITION_KEYS = ("PartitionName", "State", "TotalCPUs", "TotalNodes", "Default")
RESERVATION_KEYS = ("ReservationName", "State", "Nodes", "StartTime", "EndTime", "Features")


def partition_summary(record: dict[str, str]) -> dict[str, Any]:
    return {key: record.get(key, "") for key in PARTITION_KEYS}


def reservation_summary(record: dict[str, str]) -> dict[str, Any]:
    return {key: record.get(key, "") for key in RESERVATION_KEYS}


def submitted_job_id(text: str) -> str | None:
    """The job id `sbatch --parsable` printed."""
    match = SUBMITTED.search(text)
    return match.group(1) if match else None


def _listed(value: str | None) -> list[str]:
    if not value or value == "(null)":
        return []
    return value.split(",")


# FirecREST v2's shapes of the same records (NodeModel, PartitionModel,
# ReservationModel, JobModel of its API description).

NODE_STATES = {
    "IDLE", "ALLOCATED", "MIXED", "DOWN", "DRAIN", "OFFLINE", "RESERVED",
    "COMPLETING", "BUSY", "POWERING_DOWN", "POWERING_UP", "UNKNOWN",
}  # fmt: skip


def _number(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "", "N/A") else None
    except ValueError:
        return None


def _decimal(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "", "N/A") else None
    except ValueError:
        return None


def node_model(record: dict[str, str]) -> dict[str, Any]:
    """A `scontrol -o show nodes` record as v2's NodeModel."""
    # "IDLE+DRAIN", "IDLE*" (not responding): the enum's words, in order.
    states = [word.rstrip("*~#!%$@^-") for word in record.get("State", "").split("+")]
    known = [state for state in states if state in NODE_STATES]
    cpus, allocated = _number(record.get("CPUTot")), _number(record.get("CPUAlloc"))
    return {
        "name": record.get("NodeName", ""),
        "hostname": record.get("NodeHostName"),
        "address": record.get("NodeAddr"),
        "state": known or ["UNKNOWN"],
        "partitions": _listed(record.get("Partitions")),
        "features": _listed(record.get("AvailableFeatures")),
        "cpus": cpus or 0,
        "allocCpus": allocated,
        "idleCpus": cpus - allocated if cpus is not None and allocated is not None else None,
        "cores": _number(record.get("CoresPerSocket")),
        "sockets": _number(record.get("Sockets")),
        "threads": _number(record.get("ThreadsPerCore")),
        "weight": _number(record.get("Weight")),
        "cpuLoad": _decimal(record.get("CPULoad")),
        "freeMemory": _number(record.get("FreeMem")),
        "allocMemory": _number(record.get("AllocMem")),
    }


def partition_model(record: dict[str, str]) -> dict[str, Any]:
    """A `scontrol -o show partitions` record as v2's PartitionModel (`partition`: its state)."""
    return {
        "name": record.get("PartitionName", ""),
        "cpus": _number(record.get("TotalCPUs")),
        "totalNodes": _number(record.get("TotalNodes")),
        "partition": record.get("State", ""),
    }


def reservation_model(record: dict[str, str]) -> dict[str, Any]:
    """A record of `SLURM_TIME_FORMAT=%s scontrol -o show reservations` as v2's ReservationModel."""
    return {
        "name": record.get("ReservationName", ""),
        "nodeList": record.get("Nodes", ""),
        "startTime": _number(record.get("StartTime")) or 0,
        "endTime": _number(record.get("EndTime")) or 0,
        "features": None if record.get("Features") in (None, "(null)") else record["Features"],
        "state": record.get("State"),
    }


# sacct's fields for v2's JobModel (as upstream asks for them), run with
# SLURM_TIME_FORMAT=%s so that times are epoch seconds.
JOB_FIELDS = (
    "JobID,AllocNodes,Cluster,ExitCode,Group,Account,JobName,NodeList,Partition,"
    "Priority,State,Reason,ElapsedRaw,Submit,Start,End,Suspended,TimelimitRaw,User,WorkDir"
)


def _seconds(text: str) -> int | None:
    """[D-]HH:MM:SS, MM:SS or a number of seconds."""
    match = re.fullmatch(r"(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)", text)
    if match is None:
        return _number(text)
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


# squeue's fields in the same columns as JOB_FIELDS (a job is in sacct only
# once the controller has told the database); squeue has no cluster, exit
# code or suspended time: those columns stay empty.
SQUEUE_JOB_FORMAT = "%i|%D|||%g|%a|%j|%N|%P|%Q|%T|%r|%M|%V|%S|%e||%l|%u|%Z"


def _status(state: str, reason: str, exit_code: str) -> dict[str, Any]:
    code, _, signal = exit_code.partition(":")
    # "CANCELLED by 1001": the state is the first word.
    word = state.split()[0] if state else "UNKNOWN"
    # squeue has no exit code; a COMPLETED job's is 0 by Slurm's definition.
    completed = word == "COMPLETED" and not code
    return {
        "state": word,
        "stateReason": reason if reason not in ("", "None") else None,
        "exitCode": 0 if completed else _number(code),
        "interruptSignal": 0 if completed else _number(signal),
    }


def _time(fields: list[str]) -> dict[str, Any]:
    elapsed, _submit, start, end, suspended, limit = fields
    # sacct's TimelimitRaw counts minutes; squeue's TimeLimit is [D-]HH:MM:SS.
    minutes = _number(limit)
    return {
        "elapsed": _seconds(elapsed),
        "start": _number(start),
        "end": _number(end),
        "suspended": _seconds(suspended),
        "limit": minutes * 60 if minutes is not None else _seconds(limit),
    }


def parse_jobs(text: str) -> list[dict[str, Any]]:
    """`sacct --parsable2 --noheader --format=JOB_FIELDS` (or squeue's
    SQUEUE_JOB_FIELDS) rows as JobModels, their steps as tasks."""
    jobs: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        row = line.split("|")
        if len(row) != 20:
            continue
        job_id, nodes, cluster, exit_code, group, account, name, nodelist, partition = row[:9]
        priority, state, reason = row[9:12]
        time = _time(row[12:18])
        user, workdir = row[18], row[19]
        main_id, _, step = job_id.partition(".")
        if step:
            if main_id in jobs:
                jobs[main_id]["tasks"].append(
                    {
                        "id": job_id,
                        "name": name,
                        "status": _status(state, "", exit_code),
                        "time": time,
                    }
                )
            continue
        jobs[job_id] = {
            "jobId": job_id,
            "name": name,
            "status": _status(state, reason, exit_code),
            "tasks": [],
            "time": time,
            "account": account or None,
            "allocationNodes": _number(nodes) or 0,
            "cluster": cluster,
            "group": group or None,
            "nodes": nodelist,
            "partition": partition,
            "priority": _number(priority),
            "killRequestUser": None,
            "user": user or None,
            "workingDirectory": workdir,
        }
    return list(jobs.values())


def merge_jobs(
    accounted: list[dict[str, Any]], queued: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """sacct's jobs with squeue's word for the jobs the controller still holds.

    The database lags the controller: a job just submitted is not in it yet,
    and one just ended may show a placeholder record for a moment (name
    `allocation`, no partition). What squeue knows wins; what it cannot know
    (exit code, steps, cluster) stays sacct's.
    """
    merged = {job["jobId"]: job for job in accounted}
    for job in queued:
        known = merged.get(job["jobId"])
        if known is None:
            merged[job["jobId"]] = job
            continue
        given = {key: value for key, value in job.items() if value not in (None, "", [])}
        status = {**known["status"], **{k: v for k, v in job["status"].items() if v is not None}}
        merged[job["jobId"]] = {**known, **given, "status": status, "tasks": known["tasks"]}
    return list(merged.values())
