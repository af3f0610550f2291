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
