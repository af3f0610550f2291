"""The service stack's figures for `make bench`: latency and throughput under
concurrent clients, the tutorial job's turnaround, where a request's time
goes (certificate signing, SSH round trip), large transfers through the
staging area, and the conformance suites' running time (each API generation
the stack serves)."""

from __future__ import annotations

import io
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

import paramiko
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from docker.models.containers import Container

from firecrest_testbuild.common import sshexec
from firecrest_testbuild.common.buckets import bucket_of
from firecrest_testbuild.common.certificates import issue_identity
from firecrest_testbuild.common.sshexec import SshTarget
from firecrest_testbuild.harness import conformance
from firecrest_testbuild.harness.contracts import (
    ClusterEndpoints,
    KeycloakEndpoints,
    MinioEndpoints,
    SshcaEndpoints,
    StackEndpoints,
)
from firecrest_testbuild.harness.environment import Environment

CLIENTS = 20
REQUESTS_PER_CLIENT = 10
MIB = 1024 * 1024
JOB = b"#!/bin/bash\n#SBATCH --job-name=bench\n#SBATCH --ntasks=1\nsha1sum /etc/hostname\n"


def stack_figures(environment: Environment, transfer_mb: int = 1024) -> dict[str, Any]:
    context = environment.context()
    url = context.endpoints(StackEndpoints).url
    first = context.config.users[0]
    user = first.name
    headers = {
        "Authorization": f"Bearer {context.endpoints(KeycloakEndpoints).token(user=first)}",
        "X-Machine-Name": context.config.cluster.name,
    }
    return {
        "clients": CLIENTS,
        "requests_per_client": REQUESTS_PER_CLIENT,
        "ls": load(f"{url}/utilities/ls?targetPath=/home/{user}", headers),
        "certificate_logins_per_second": certificate_login_rate(environment, user),
        "status_systems": load(f"{url}/status/systems", headers),
        "ls_single_client_ms": single(f"{url}/utilities/ls?targetPath=/home/{user}", headers),
        "job_turnaround_seconds": job_turnaround(url, headers),
        "slurmrestd_turnaround_seconds": slurmrestd_turnaround(environment, user),
        "certificate_signing_ms": certificate_signing_ms(environment),
        "ssh_round_trip_ms": ssh_round_trip_ms(environment, user),
        "ssh_round_trip_without_wrapper_ms": ssh_round_trip_without_wrapper_ms(environment, user),
        "pooled_commands": pooled_commands(environment, user),
        "sshca_round_trip_ms": sshca_round_trip_ms(environment, user),
        "transfer": transfer_figures(environment, url, headers, user, transfer_mb)
        if transfer_mb
        else {},
        "conformance": conformance_run(environment),
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

    wall = _clients_at_once(client)
    ordered = sorted(latencies)
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
        "requests_per_second": round(len(ordered) / wall, 1),
        "failures": failures,
    }


def certificate_login_rate(environment: Environment, user: str) -> float:
    """The `ls` row's baseline from the same run: certificate logins running
    `true` through the command wrapper per second, from the host with CLIENTS
    at once (each v1 request is one such login, plus the API's work). It is
    what the login node's sshd allows on this machine."""

    login = environment.context().endpoints(ClusterEndpoints).login_node()

    def client() -> None:
        for _ in range(REQUESTS_PER_CLIENT):
            result = login.run(user, "true")
            if result.exit_status != 0:
                raise RuntimeError(f"a benchmark login failed: {result.stderr}")

    return round(CLIENTS * REQUESTS_PER_CLIENT / _clients_at_once(client), 1)


def _clients_at_once(client: Callable[[], None]) -> float:
    """Runs `client` in CLIENTS threads at once; the seconds until all are done."""
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        for future in [pool.submit(client) for _ in range(CLIENTS)]:
            future.result()
    return time.monotonic() - started


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


def slurmrestd_turnaround(environment: Environment, user: str) -> float | None:
    """Seconds from slurmrestd's job/submit (the user's Keycloak token) to
    COMPLETED in its job/{id}; None when the cluster runs no slurmrestd."""
    context = environment.context()
    rest = context.endpoints(ClusterEndpoints).slurmrestd
    if rest is None:
        return None
    token = context.endpoints(KeycloakEndpoints).token(user=context.config.user(user))
    api = f"{rest.url}/slurm/{rest.versions[-1]}"
    job = {
        "script": JOB.decode(),
        "current_working_directory": f"/home/{user}",
        "environment": ["PATH=/usr/bin:/bin"],
        "standard_output": "/dev/null",
    }
    with requests.Session() as session:
        session.headers.update(rest.headers(user, token))
        started = time.monotonic()
        submitted = session.post(f"{api}/job/submit", json={"job": job}, timeout=60)
        submitted.raise_for_status()
        job_id = submitted.json()["job_id"]
        while time.monotonic() - started < 120:
            jobs = session.get(f"{api}/job/{job_id}", timeout=60).json().get("jobs") or [{}]
            if "COMPLETED" in jobs[0].get("job_state", []):
                return round(time.monotonic() - started, 2)
            time.sleep(0.2)
    raise RuntimeError(f"slurmrestd job {job_id} not COMPLETED after 120 s")


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
    login = environment.context().endpoints(ClusterEndpoints).login_node()
    times = []
    for _ in range(samples):
        started = time.monotonic()
        login.run(user, "true")
        times.append((time.monotonic() - started) * 1000)
    return round(statistics.median(times), 1)


BARE_SSHD_PORT = 2223  # inside the controller, for the wrapper's baseline


def ssh_round_trip_without_wrapper_ms(
    environment: Environment, user: str, samples: int = 20
) -> float | None:
    """ssh_round_trip_ms's baseline: the same login (a fresh certificate whose
    force-command is `true`) to the login node's sshd with its configuration
    and host keys but without the command wrapper: a second sshd on the
    controller with `ForceCommand none`, reached on the engine's network for
    the measurement only. None where the host cannot reach container addresses."""
    controller = environment.runtime.container("controller")
    pid_file = "/run/sshd-bench.pid"
    controller.exec_run(
        ["/usr/sbin/sshd", "-p", str(BARE_SSHD_PORT), "-o", "ForceCommand=none",
         "-o", f"PidFile={pid_file}"]
    )  # fmt: skip
    try:
        networks = controller.attrs["NetworkSettings"]["Networks"]
        address = networks[environment.runtime.network_name]["IPAddress"]
        ssh = environment.context().endpoints(ClusterEndpoints).ssh
        target = SshTarget(address, BARE_SSHD_PORT, ssh.host_key, connect_timeout=5)
        ca = environment.state.user_ca.private_key()
        times = []
        for _ in range(samples):
            started = time.monotonic()
            identity = issue_identity(ca, user, force_command="true")
            sshexec.execute(target, user, identity.pkey, "true")
            times.append((time.monotonic() - started) * 1000)
        return round(statistics.median(times), 1)
    except sshexec.Unreachable:
        return None
    finally:
        controller.exec_run(["sh", "-c", f"kill $(cat {pid_file})"])


def pooled_commands(environment: Environment, user: str, count: int = 200) -> dict[str, float]:
    """FirecREST v2's way: one connection kept open (a certificate without
    force-command), `true` run `count` times over it, a session each."""
    ssh = environment.context().endpoints(ClusterEndpoints).ssh
    target = SshTarget(ssh.host, ssh.port, ssh.host_key)
    identity = issue_identity(environment.state.user_ca.private_key(), user)
    client = sshexec.connect(target, user, identity.pkey)
    times = []
    try:
        for _ in range(count):
            started = time.monotonic()
            sshexec.run(client, target, "true")
            times.append((time.monotonic() - started) * 1000)
    finally:
        client.close()
    ordered = sorted(times)
    return {
        "commands": count,
        "p50_ms": round(statistics.median(times), 1),
        "p90_ms": round(ordered[int(0.9 * count) - 1], 1),
    }


def sshca_round_trip_ms(environment: Environment, user: str, samples: int = 10) -> float:
    """A fresh key signed by the SSH CA service (SSHCA's POST /sign with the
    user's token), then a login with it running `true`: median."""
    context = environment.context()
    sign_url = context.endpoints(SshcaEndpoints).sign_url
    token = context.endpoints(KeycloakEndpoints).token(user=context.config.user(user))
    ssh = context.endpoints(ClusterEndpoints).ssh
    target = SshTarget(ssh.host, ssh.port, ssh.host_key)
    times = []
    for _ in range(samples):
        started = time.monotonic()
        key = paramiko.Ed25519Key.from_private_key(io.StringIO(_new_private_key()))
        public = f"{key.get_name()} {key.get_base64()}"
        answer = requests.post(sign_url, json={"PublicKey": public, "OTT": token}, timeout=30)
        answer.raise_for_status()
        key.load_certificate(answer.text.strip())
        sshexec.execute(target, user, key, "true")
        times.append((time.monotonic() - started) * 1000)
    return round(statistics.median(times), 1)


def _new_private_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()


def transfer_figures(
    environment: Environment, url: str, headers: dict[str, str], user: str, megabytes: int
) -> dict[str, Any]:
    """A file of `megabytes` through xfer-external upload and download, against plain
    presigned PUT and GET of the same file, and the API container's peak memory."""
    context = environment.context()
    client = context.endpoints(MinioEndpoints).client()
    bucket = bucket_of(user)
    with tempfile.TemporaryDirectory(prefix="testbuild-bench-") as folder:
        local = random_file(Path(folder) / "bench-transfer.bin", megabytes)
        with MemoryWatch(environment.runtime.container("stack")) as memory:
            plain_put = seconds_of(
                lambda: put_file(client.presigned_put_object(bucket, "bench/plain"), local)
            )
            plain_get = seconds_of(
                lambda: get_discarded(client.presigned_get_object(bucket, "bench/plain"))
            )
            upload = seconds_of(lambda: _external_upload(url, headers, user, local))
            download = seconds_of(lambda: _external_download(url, headers, user))
        client.remove_object(bucket, "bench/plain")
    login = context.endpoints(ClusterEndpoints).login_node()
    login.run(user, "rm -f bench-transfer.bin")

    return transfer_rates(megabytes, plain_put, plain_get, upload, download, memory)


def random_file(path: Path, megabytes: int) -> Path:
    with path.open("wb") as handle:
        for _ in range(megabytes):
            handle.write(os.urandom(MIB))
    return path


def transfer_rates(
    megabytes: int,
    plain_put: float,
    plain_get: float,
    upload: float,
    download: float,
    memory: MemoryWatch,
) -> dict[str, float]:
    """Seconds of a transfer through the API and of plain presigned S3, as
    MB/s, their ratios and the API process's memory."""

    def rate(seconds: float) -> float:
        return round(megabytes / seconds, 1)

    return {
        "megabytes": megabytes,
        "plain_put_mb_s": rate(plain_put),
        "plain_get_mb_s": rate(plain_get),
        "upload_mb_s": rate(upload),
        "download_mb_s": rate(download),
        "upload_ratio": round(plain_put / upload, 2),
        "download_ratio": round(plain_get / download, 2),
        # The file crosses the staging area twice (a PUT and a GET): the
        # ratios if both crossings ran at the plain speeds and nothing else took time.
        "upload_ratio_at_plain_speeds": round(plain_put / (plain_put + plain_get), 2),
        "download_ratio_at_plain_speeds": round(plain_get / (plain_put + plain_get), 2),
        "api_memory_before_mib": memory.first,
        "api_memory_peak_mib": memory.peak,
    }


class MemoryWatch:
    """Samples a container's resident memory twice a second while in use."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.samples: list[float] = []
        self.stop = threading.Event()

    def __enter__(self) -> MemoryWatch:
        self.samples.append(self._sample())
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    @property
    def first(self) -> float:
        return self.samples[0]

    @property
    def peak(self) -> float:
        return max(self.samples)

    def _watch(self) -> None:
        while not self.stop.wait(0.5):
            self.samples.append(self._sample())

    def _sample(self) -> float:
        return container_rss_mib(self.container)


def container_rss_mib(container: Container) -> float:
    """Resident memory in MiB (the cgroup's usage without the page cache)."""
    stats = container.stats(stream=False)
    if not isinstance(stats, dict):  # streamed stats are an iterator; stream=False is one
        raise TypeError(f"stats of {container.name} came as a stream")
    memory = stats["memory_stats"]
    details = memory.get("stats", {})
    resident: int = details.get("rss", details.get("anon", memory.get("usage", 0)))
    return round(resident / MIB, 1)


def seconds_of(action: Callable[[], object]) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def put_file(presigned: str, local: Path) -> None:
    with local.open("rb") as handle:
        requests.put(presigned, data=handle, timeout=600).raise_for_status()


def get_discarded(presigned: str) -> None:
    with requests.get(presigned, stream=True, timeout=600) as response:
        response.raise_for_status()
        for _ in response.iter_content(1024 * 1024):
            pass


def _external_upload(url: str, headers: dict[str, str], user: str, local: Path) -> None:
    """The tutorial's way: task, form, POST to the staging area, wait for 114."""
    created = requests.post(
        f"{url}/storage/xfer-external/upload",
        headers=headers,
        data={"targetPath": f"/home/{user}", "sourcePath": str(local)},
        timeout=60,
    )
    task_id = created.json()["task_id"]
    form = _task_reaching(url, headers, task_id, {"111"})["data"]["msg"]["parameters"]
    with StreamedForm(form["data"], local) as body:
        requests.post(
            form["url"], data=body, headers={"Content-Type": body.content_type}, timeout=600
        ).raise_for_status()
    _task_reaching(url, headers, task_id, {"114"})


class StreamedForm:
    """A multipart/form-data body of `fields` and the file `path`, read as
    the file is: requests builds a form with `files=` in memory (a 1 GiB
    copy the plain PUT it is compared with does not make), curl -F streams.

    Only read() and len(): an object with tell() that cannot seek would be
    sent by requests as an empty body."""

    def __init__(self, fields: dict[str, str], path: Path) -> None:
        boundary = os.urandom(16).hex()
        self.content_type = f"multipart/form-data; boundary={boundary}"
        head = "".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            for name, value in fields.items()
        )
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"'
            "\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        tail = f"\r\n--{boundary}--\r\n".encode()
        self.length = len(head.encode()) + path.stat().st_size + len(tail)
        self.file = path.open("rb")
        self.parts: list[BinaryIO] = [io.BytesIO(head.encode()), self.file, io.BytesIO(tail)]

    def __len__(self) -> int:  # requests sends it as Content-Length
        return self.length

    def __enter__(self) -> StreamedForm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()

    def read(self, size: int = -1) -> bytes:
        chunk = b""
        while self.parts and (size < 0 or len(chunk) < size):
            more = self.parts[0].read(-1 if size < 0 else size - len(chunk))
            if not more:
                self.parts.pop(0)
            chunk += more
        return chunk


def _external_download(url: str, headers: dict[str, str], user: str) -> None:
    created = requests.post(
        f"{url}/storage/xfer-external/download",
        headers=headers,
        data={"sourcePath": f"/home/{user}/bench-transfer.bin"},
        timeout=60,
    )
    task = _task_reaching(url, headers, created.json()["task_id"], {"117"})
    get_discarded(task["data"]["url"])


def _task_reaching(
    url: str, headers: dict[str, str], task_id: str, wanted: set[str]
) -> dict[str, Any]:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        task: dict[str, Any] = requests.get(
            f"{url}/tasks/{task_id}", headers=headers, timeout=60
        ).json()["task"]
        if task["status"] in wanted:
            return task
        if task["status"] in ("115", "118", "400"):
            raise RuntimeError(f"task {task_id} failed: {task['data']}")
        time.sleep(0.1)
    raise RuntimeError(f"task {task_id} did not reach {wanted} in 600 s")


def conformance_run(environment: Environment) -> dict[str, Any]:
    """The whole conformance suites of each API generation the stack serves,
    one after the other: wall time and outcome of each."""
    runs = {}
    for api in ("v1", "v2"):
        if environment.state.stack_target(api).exists():
            runs[api] = _suites(environment.target_file(api))
    return runs


def _suites(target: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="testbuild-bench-") as folder:
        started = time.monotonic()
        conformance.run(target, Path(folder), quiet=True)
        seconds = time.monotonic() - started
        totals = conformance.read_report(Path(folder))["totals"]
    return {"seconds": round(seconds, 1), "totals": totals}


def _seconds(value: float | None) -> str:
    return "(no slurmrestd)" if value is None else f"{value:.2f} s"


def _without_wrapper(figures: dict[str, Any]) -> str:
    bare = figures.get("ssh_round_trip_without_wrapper_ms")
    if bare is None:
        return "no baseline (container addresses unreachable from here)"
    ratio = figures["ssh_round_trip_ms"] / bare
    return f"the same sshd without the wrapper {bare:.1f} ms (ratio {ratio:.2f})"


def report(figures: dict[str, Any]) -> list[str]:
    lines = [f"  FirecREST stack, {figures['clients']} concurrent clients"]
    for name in ("ls", "status_systems"):
        entry = figures[name]
        lines.append(
            f"    GET {name:<15} p50 {entry['p50_ms']:>7.1f} ms  p95 {entry['p95_ms']:>7.1f} ms"
            f"  {entry['requests_per_second']:>6.1f} req/s  failures {entry['failures']}"
        )
    lines += [
        f"    {_login_baseline(figures)}",
        f"    GET ls, one client      {figures['ls_single_client_ms']:>7.1f} ms (median)",
        f"    job upload -> COMPLETED {figures['job_turnaround_seconds']:>7.2f} s",
        f"    slurmrestd submit -> COMPLETED {_seconds(figures['slurmrestd_turnaround_seconds'])}",
        f"    certificate signing     {figures['certificate_signing_ms']:>7.2f} ms",
        f"    SSH round trip (host)   {figures['ssh_round_trip_ms']:>7.1f} ms;"
        f" {_without_wrapper(figures)}",
        f"    pooled commands (v2)    {figures['pooled_commands']['p50_ms']:>7.1f} ms p50,"
        f" {figures['pooled_commands']['p90_ms']:.1f} ms p90 over one connection"
        f" ({figures['pooled_commands']['commands']} commands)",
        f"    SSH CA sign + login     {figures['sshca_round_trip_ms']:>7.1f} ms (median)",
    ]
    suites = figures.get("conformance", {})
    for api, run in suites.items():
        lines.append(f"  conformance suites, {api}    {run['seconds']:>7.1f} s  {run['totals']}")
    if len(suites) > 1:
        total = sum(run["seconds"] for run in suites.values())
        lines.append(f"  conformance suites, all    {total:>7.1f} s")
    transfer = figures["transfer"]
    if transfer:
        lines += transfer_lines(
            transfer, "through the staging area", "xfer-external upload", "xfer-external download"
        )
    return lines


def _login_baseline(figures: dict[str, Any]) -> str:
    logins = figures["certificate_logins_per_second"]
    share = figures["ls"]["requests_per_second"] / logins if logins else 0.0
    return (
        f"GET ls's baseline: certificate logins (`true`), {figures['clients']} clients"
        f" {logins:.1f}/s; GET ls at {share:.2f} of that"
    )


def transfer_lines(transfer: dict[str, Any], how: str, upload: str, download: str) -> list[str]:
    """A large transfer's rows: each way beside plain S3 and the ratio it could reach."""

    def row(name: str, way: str, plain: str) -> str:
        return (
            f"    {name:<23} {transfer[f'{way}_mb_s']:>7.1f}  plain {plain} "
            f"{transfer[f'plain_{plain.lower()}_mb_s']:>7.1f}  ratio {transfer[f'{way}_ratio']}"
            f" (at plain speeds {transfer[f'{way}_ratio_at_plain_speeds']})"
        )

    return [
        f"  {transfer['megabytes']} MB {how} (MB/s; ratio to plain S3)",
        row(upload, "upload", "PUT"),
        row(download, "download", "GET"),
        f"    {'API memory':<23} {transfer['api_memory_before_mib']:>7.1f} MiB before,"
        f" {transfer['api_memory_peak_mib']:.1f} MiB at the peak",
    ]
