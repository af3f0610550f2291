"""FirecREST v2's figures for `make bench`, beside v1's from the same run:
`ls` under 1 and 20 clients (pooled connections), a job from submission to
COMPLETED, a large file through S3 (multipart parts + transfer jobs) against
plain presigned PUT and GET of the same file, and the API process's memory."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from firecrest_testbuild.common.buckets import bucket_of
from firecrest_testbuild.harness.bench_stack import (
    CLIENTS,
    JOB,
    MemoryWatch,
    get_discarded,
    load,
    put_file,
    random_file,
    seconds_of,
    single,
    transfer_lines,
    transfer_rates,
)
from firecrest_testbuild.harness.contracts import (
    ClusterEndpoints,
    KeycloakEndpoints,
    MinioEndpoints,
    StackEndpoints,
)
from firecrest_testbuild.harness.environment import Environment

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL"}


def v2_figures(environment: Environment, transfer_mb: int = 1024) -> dict[str, Any]:
    context = environment.context()
    url = context.endpoints(StackEndpoints).v2_url
    if url is None:
        return {}
    first = context.config.users[0]
    token = context.endpoints(KeycloakEndpoints).token(user=first)
    headers = {"Authorization": f"Bearer {token}"}
    system = context.config.cluster.name
    ls = f"{url}/filesystem/{system}/ops/ls?path=/home/{first.name}"
    return {
        "clients": CLIENTS,
        "ls": load(ls, headers),
        "ls_single_client_ms": single(ls, headers),
        "job_turnaround_seconds": job_turnaround(url, system, headers, f"/home/{first.name}"),
        "transfer": transfer_figures(environment, url, system, headers, first.name, transfer_mb)
        if transfer_mb
        else {},
    }


def _job_state(url: str, system: str, headers: dict[str, str], job_id: str) -> str | None:
    response = requests.get(f"{url}/compute/{system}/jobs/{job_id}", headers=headers, timeout=60)
    return str(response.json()["jobs"][0]["status"]["state"]) if response.ok else None


def _wait_for_job(url: str, system: str, headers: dict[str, str], job_id: str) -> str:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        state = _job_state(url, system, headers, job_id)
        if state in TERMINAL:
            return state
        time.sleep(0.2)
    raise RuntimeError(f"job {job_id} did not end in 600 s")


def job_turnaround(url: str, system: str, headers: dict[str, str], home: str) -> float:
    """Seconds from POST /compute/{system}/jobs to COMPLETED."""
    started = time.monotonic()
    body = {"job": {"script": JOB.decode(), "workingDirectory": home}}
    created = requests.post(f"{url}/compute/{system}/jobs", headers=headers, json=body, timeout=60)
    created.raise_for_status()
    state = _wait_for_job(url, system, headers, created.json()["jobId"])
    if state != "COMPLETED":
        raise RuntimeError(f"the bench job ended {state}")
    return round(time.monotonic() - started, 2)


def _transfer_log(url: str, system: str, headers: dict[str, str], answer: dict[str, Any]) -> str:
    job = answer["transferJob"]
    _wait_for_job(url, system, headers, job["jobId"])
    view = requests.get(
        f"{url}/filesystem/{system}/ops/view",
        headers=headers,
        params={"path": job["logs"]["outputLog"]},
        timeout=60,
    )
    view.raise_for_status()
    return str(view.json()["output"])


def upload(url: str, system: str, headers: dict[str, str], target: str, local: Path) -> None:
    """A client's large upload: parts to their presigned URLs, completion, the job's log."""
    size = local.stat().st_size
    body = {"sourcePath": target, "transferDirectives": {"transferMethod": "s3", "fileSize": size}}
    created = requests.post(
        f"{url}/filesystem/{system}/transfer/upload", headers=headers, json=body, timeout=60
    )
    created.raise_for_status()
    directives = created.json()["transferDirectives"]
    part_size = directives["maxPartSize"]
    parts = []
    urls = directives["partsUploadUrls"]
    with local.open("rb") as handle:
        for number, part_url in enumerate(urls, start=1):
            # One part streams from the file; more are read one at a time (the
            # bench's memory, not the API's).
            data = handle if len(urls) == 1 else handle.read(part_size)
            put = requests.put(part_url, data=data, timeout=600)
            put.raise_for_status()
            etag = put.headers["ETag"]
            parts.append(f"<Part><PartNumber>{number}</PartNumber><ETag>{etag}</ETag></Part>")
    document = f"<CompleteMultipartUpload>{''.join(parts)}</CompleteMultipartUpload>"
    requests.post(directives["completeUploadUrl"], data=document, timeout=600).raise_for_status()
    log = _transfer_log(url, system, headers, created.json())
    if "File was successfully" not in log:
        raise RuntimeError(f"the upload job failed: {log[-500:]}")


def download(url: str, system: str, headers: dict[str, str], source: str) -> None:
    body = {"sourcePath": source, "transferDirectives": {"transferMethod": "s3"}}
    created = requests.post(
        f"{url}/filesystem/{system}/transfer/download", headers=headers, json=body, timeout=60
    )
    created.raise_for_status()
    log = _transfer_log(url, system, headers, created.json())
    if "Multipart file upload successfully completed" not in log:
        raise RuntimeError(f"the download job failed: {log[-500:]}")
    get_discarded(created.json()["transferDirectives"]["downloadUrl"])


def transfer_figures(
    environment: Environment,
    url: str,
    system: str,
    headers: dict[str, str],
    user: str,
    megabytes: int,
) -> dict[str, Any]:
    context = environment.context()
    client = context.endpoints(MinioEndpoints).client()
    bucket = bucket_of(user)
    target = f"/home/{user}/bench-transfer-v2.bin"
    with tempfile.TemporaryDirectory(prefix="testbuild-bench-") as folder:
        local = random_file(Path(folder) / "bench-transfer.bin", megabytes)
        with MemoryWatch(environment.runtime.container("stack-v2")) as memory:
            plain_put = seconds_of(
                lambda: put_file(client.presigned_put_object(bucket, "bench/plain-v2"), local)
            )
            plain_get = seconds_of(
                lambda: get_discarded(client.presigned_get_object(bucket, "bench/plain-v2"))
            )
            up = seconds_of(lambda: upload(url, system, headers, target, local))
            down = seconds_of(lambda: download(url, system, headers, target))
        client.remove_object(bucket, "bench/plain-v2")
    context.endpoints(ClusterEndpoints).login_node().run(user, f"rm -f {target}")

    return transfer_rates(megabytes, plain_put, plain_get, up, down, memory)


def report(figures: dict[str, Any]) -> list[str]:
    if not figures:
        return []
    ls = figures["ls"]
    lines = [
        f"  FirecREST v2 (pooled SSH), {figures['clients']} concurrent clients",
        f"    GET ops/ls          p50 {ls['p50_ms']:>7.1f} ms  p95 {ls['p95_ms']:>7.1f} ms"
        f"  {ls['requests_per_second']:>6.1f} req/s  failures {ls['failures']}",
        f"    GET ops/ls, one client  {figures['ls_single_client_ms']:>7.1f} ms (median)",
        f"    job submit -> COMPLETED {figures['job_turnaround_seconds']:>7.2f} s",
    ]
    transfer = figures["transfer"]
    if transfer:
        lines += transfer_lines(transfer, "through S3, v2", "transfer/upload", "transfer/download")
    return lines
