"""The service stack's figures for `make bench`: latency and throughput under
concurrent clients, the tutorial job's turnaround, and where a request's
time goes (certificate signing, SSH round trip)."""

from __future__ import annotations

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from harness.components.cluster import ClusterComponent
from harness.components.firecrest import FirecrestComponent
from harness.components.keycloak import KeycloakComponent
from harness.environment import Environment
from stack.certificator import issue_identity

CLIENTS = 20
REQUESTS_PER_CLIENT = 10
JOB = b"#!/bin/bash\n#SBATCH --job-name=bench\n#SBATCH --ntasks=1\nsha1sum /etc/hostname\n"


def stack_figures(environment: Environment) -> dict[str, Any]:
    context = environment.context()
    url = FirecrestComponent().url(context)
    user = context.config.users[0].name
    headers = {
        "Authorization": f"Bearer {KeycloakComponent().token(context, user=user)}",
        "X-Machine-Name": context.config.cluster.name,
    }
    return {
        "clients": CLIENTS,
        "requests_per_client": REQUESTS_PER_CLIENT,
        "ls": load(f"{url}/utilities/ls?targetPath=/home/{user}", headers),
        "status_systems": load(f"{url}/status/systems", headers),
        "ls_single_client_ms": single(f"{url}/utilities/ls?targetPath=/home/{user}", headers),
        "job_turnaround_seconds": job_turnaround(url, headers),
        "certificate_signing_ms": certificate_signing_ms(environment),
        "ssh_round_trip_ms": ssh_round_trip_ms(environment, user),
    }


def load(url: str, headers: dict[str, str]) -> dict[str, float]:
    """p50/p95 latency (ms), requests per second and failures with CLIENTS at once."""
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()

    def client() -> None:
        nonlocal failures
        with requests.Session() as session:
            for _ in range(REQUESTS_PER_CLIENT):
                started = time.monotonic()
                response = session.get(url, headers=headers, timeout=60)
                elapsed = (time.monotonic() - started) * 1000
                with lock:
                    latencies.append(elapsed)
                    failures += response.status_code != 200

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        for future in [pool.submit(client) for _ in range(CLIENTS)]:
            future.result()
    wall = time.monotonic() - started
    ordered = sorted(latencies)
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
        "requests_per_second": round(len(ordered) / wall, 1),
        "failures": failures,
    }


def single(url: str, headers: dict[str, str], samples: int = 20) -> float:
    with requests.Session() as session:
        times = []
        for _ in range(samples):
            started = time.monotonic()
            session.get(url, headers=headers, timeout=60).raise_for_status()
            times.append((time.monotonic() - started) * 1000)
    return round(statistics.median(times), 1)


def job_turnaround(url: str, headers: dict[str, str]) -> float:
    """Seconds from POST /compute/jobs/upload to COMPLETED in /compute/acct."""
    started = time.monotonic()
    created = requests.post(
        f"{url}/compute/jobs/upload", headers=headers, files={"file": ("bench.sh", JOB)}, timeout=60
    )
    jobid = str(_task_data(url, headers, created.json()["task_id"])["jobid"])
    while time.monotonic() - started < 120:
        accounted = requests.get(
            f"{url}/compute/acct", headers=headers, params={"jobs": jobid}, timeout=60
        )
        rows = _task_data(url, headers, accounted.json()["task_id"])
        if rows and rows[0]["state"] == "COMPLETED":
            return round(time.monotonic() - started, 2)
        time.sleep(0.2)
    raise RuntimeError(f"job {jobid} not COMPLETED in /compute/acct after 120 s")


def _task_data(url: str, headers: dict[str, str], task_id: str) -> Any:
    while True:
        task = requests.get(f"{url}/tasks/{task_id}", headers=headers, timeout=60).json()["task"]
        if task["status"] == "200":
            return task["data"]
        if task["status"] == "400":
            raise RuntimeError(f"task {task_id} failed: {task['data']}")
        time.sleep(0.05)


def certificate_signing_ms(environment: Environment, samples: int = 50) -> float:
    """A fresh key and its certificate, as the stack makes one per command."""
    ca = environment.state.user_ca.private_key()
    started = time.monotonic()
    for _ in range(samples):
        issue_identity(ca, "bench", "true")
    return round((time.monotonic() - started) * 1000 / samples, 2)


def ssh_round_trip_ms(environment: Environment, user: str, samples: int = 20) -> float:
    """Connect, authenticate with a certificate, run `true`: from the host."""
    login = ClusterComponent().login_node(environment.context())
    times = []
    for _ in range(samples):
        started = time.monotonic()
        login.run(user, "true")
        times.append((time.monotonic() - started) * 1000)
    return round(statistics.median(times), 1)


def report(figures: dict[str, Any]) -> list[str]:
    lines = [f"  FirecREST stack, {figures['clients']} concurrent clients"]
    for name in ("ls", "status_systems"):
        entry = figures[name]
        lines.append(
            f"    GET {name:<15} p50 {entry['p50_ms']:>7.1f} ms  p95 {entry['p95_ms']:>7.1f} ms"
            f"  {entry['requests_per_second']:>6.1f} req/s  failures {entry['failures']}"
        )
    lines += [
        f"    GET ls, one client      {figures['ls_single_client_ms']:>7.1f} ms (median)",
        f"    job upload -> COMPLETED {figures['job_turnaround_seconds']:>7.2f} s",
        f"    certificate signing     {figures['certificate_signing_ms']:>7.2f} ms",
        f"    SSH round trip (host)   {figures['ssh_round_trip_ms']:>7.1f} ms",
    ]
    return lines
