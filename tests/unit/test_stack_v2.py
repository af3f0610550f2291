"""The v2 stack's own parts on fakes: its readings of Slurm and ls output,
its request bodies, its configuration, the SSH connection pool, and the
application's answers (error model, status codes, F7T-AppVersion) with a
pool that runs nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from firecrest_testbuild.common.sshexec import Output
from firecrest_testbuild.harness import config as environment_config
from firecrest_testbuild.harness.errors import ConfigError
from firecrest_testbuild.stack import slurm
from firecrest_testbuild.stack.config import ConfigFileError, System
from firecrest_testbuild.stack.listing import file_model, parse_listing, parse_stat
from firecrest_testbuild.stack.v2 import models, pool, slurmrest
from firecrest_testbuild.stack.v2.app import create_app
from firecrest_testbuild.stack.v2.config import load
from tests.unit.identity_provider import ISSUER, jwks_url, token

__all__ = ["jwks_url"]  # a fixture used by name

SACCT = (
    "42|1|cluster|0:0|testbuild|testbuild|hello|c1|part01|4294901759|COMPLETED|None|7|"
    "1700000000|1700000001|1700000008|00:00:00|60|test1|/home/test1\n"
    "42.batch|1|cluster|0:0||testbuild|batch|c1||||None|7|1700000000|1700000001|1700000008|"
    "00:00:00||test1|\n"
    "43|1|cluster|0:15|testbuild|testbuild|x|c1|part01|1|CANCELLED by 1001|None|0|"
    "1700000000|Unknown|1700000009|00:00:00|UNLIMITED|test1|/home/test1\n"
)


def test_sacct_rows_become_job_models_with_their_steps():
    done, cancelled = slurm.parse_jobs(SACCT)
    assert done["jobId"] == "42"
    assert done["status"] == {
        "state": "COMPLETED",
        "stateReason": None,
        "exitCode": 0,
        "interruptSignal": 0,
    }
    assert done["time"] == {"elapsed": 7, "start": 1700000001, "end": 1700000008,
                            "suspended": 0, "limit": 3600}  # fmt: skip
    assert [task["id"] for task in done["tasks"]] == ["42.batch"]
    assert done["workingDirectory"] == "/home/test1"
    assert cancelled["status"]["state"] == "CANCELLED"
    assert cancelled["status"]["interruptSignal"] == 15
    assert cancelled["time"]["start"] is None and cancelled["time"]["limit"] is None


def test_squeue_rows_read_in_the_same_columns():
    row = (
        "44|1|||testbuild|testbuild|sleep|c1|part01|100|RUNNING|None|1:05|1700000000|"
        "1700000001|1700003601||1:00:00|test1|/home/test1"
    )
    (job,) = slurm.parse_jobs(row)
    assert job["status"]["state"] == "RUNNING"
    assert job["time"]["elapsed"] == 65
    assert job["time"]["limit"] == 3600
    assert job["status"]["exitCode"] is None
    (ended,) = slurm.parse_jobs(row.replace("RUNNING", "COMPLETED"))
    assert ended["status"]["exitCode"] == 0  # what COMPLETED means; squeue has no code


def test_nodes_states_are_the_descriptions_words():
    (record,) = slurm.parse_records(
        "NodeName=c1 CPUAlloc=1 CPUTot=2 State=IDLE*+DRAIN Partitions=part01,xfer  BootTime=x"
    )
    node = slurm.node_model(record)
    assert node["state"] == ["IDLE", "DRAIN"]
    assert node["partitions"] == ["part01", "xfer"]
    assert (node["cpus"], node["allocCpus"], node["idleCpus"]) == (2, 1, 1)
    assert slurm.node_model({"NodeName": "c2", "State": "WEIRD"})["state"] == ["UNKNOWN"]


def test_reservation_times_are_epoch_seconds():
    (record,) = slurm.parse_records(
        "ReservationName=r1 StartTime=1700000000 EndTime=1700003600 Nodes=c1 State=INACTIVE"
        " Features=(null)"
    )
    assert slurm.reservation_model(record) == {
        "name": "r1",
        "nodeList": "c1",
        "startTime": 1700000000,
        "endTime": 1700003600,
        "features": None,
        "state": "INACTIVE",
    }


def test_ls_entries_are_v2_files():
    text = (
        'lrwxrwxrwx 1 test1 testbuild 5 2024-01-01T00:00:00 "l" -> "a b"\n'
        '-rw-r--r-- 1 test1 testbuild 3 2024-01-01T00:00:00 "a b"\n'
    )
    link, plain = (file_model(entry) for entry in parse_listing(text, "/x", recursive=False))
    assert link["linkTarget"] == "a b" and link["type"] == "l"
    assert plain == {
        "name": "a b",
        "type": "-",
        "linkTarget": None,
        "user": "test1",
        "group": "testbuild",
        "permissions": "rw-r--r--",
        "lastModified": "2024-01-01T00:00:00",
        "size": "3",
    }


def test_stat_output_is_numbers_and_anything_else_is_refused():
    assert parse_stat("81a4 5 50 1 1001 1001 8 1 2 3")["mode"] == 0o100644
    with pytest.raises(ValueError):
        parse_stat("stat: cannot stat")


@pytest.mark.parametrize(
    "sent",
    [{"sourcePath": "/a"}, {"path": "/a"}, {"source_path": "/a"}],
)
def test_bodies_take_the_path_as_every_client_generation_sends_it(sent: dict[str, str]):
    assert models.Mkdir.model_validate({**sent, "parent": True}).source_path == "/a"


def test_bodies_refuse_nul_and_missing_paths():
    with pytest.raises(ValidationError):
        models.Mkdir.model_validate({"sourcePath": "/a\x00b"})
    with pytest.raises(ValidationError):
        models.Chmod.model_validate({"mode": "700"})
    with pytest.raises(ValidationError):
        models.Compress.model_validate(
            {"sourcePath": "/a", "targetPath": "/b", "compression": "zip"}
        )


BASE_CONFIG = """
systems:
  - name: cluster
    host: 127.0.0.1
    hostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE
    filesystems: [{name: HOME, path: /home}]
auth: {jwksUrl: "JWKS", issuer: "ISSUER"}
"""


def test_the_config_needs_the_source_of_credentials(tmp_path: Path):
    path = tmp_path / "v2.yaml"
    path.write_text(BASE_CONFIG + "ssh: {credentials: sshca}\n")
    with pytest.raises(ConfigFileError) as raised:
        load(path)
    assert "needs sshcaUrl" in " ".join(raised.value.problems)


def test_the_environment_refuses_static_keys_the_cluster_does_not_hold():
    with pytest.raises(ConfigError) as raised:
        environment_config.parse("stack: {v2: {sshCredentials: static-key}}\n", "t.yaml")
    assert "cluster.sshAuth" in str(raised.value.problems)
    settings = environment_config.parse(
        "cluster: {sshAuth: static-key}\nstack: {v2: {sshCredentials: static-key, port: 0}}\n"
    )
    assert settings.stack.v2.ssh_credentials == "static-key"
    assert environment_config.parse("stack: {v2: {enabled: false}}\n").stack.v2.enabled is False


# The pool, its connections fakes that count logins.


@dataclass
class FakeTransport:
    active: bool = True

    def is_active(self) -> bool:
        return self.active


@dataclass
class FakeClient:
    transport: FakeTransport = field(default_factory=FakeTransport)
    closed: bool = False

    def get_transport(self) -> FakeTransport:
        return self.transport

    def close(self) -> None:
        self.closed = True


SYSTEM = System(name="cluster", host="h", host_key="ssh-ed25519 AAAA")


@pytest.fixture
def logins(monkeypatch: pytest.MonkeyPatch) -> list[FakeClient]:
    made: list[FakeClient] = []

    def connect(target: object, user: str, pkey: object) -> FakeClient:
        made.append(FakeClient())
        return made[-1]

    monkeypatch.setattr(pool.sshexec, "connect", connect)
    monkeypatch.setattr(pool.sshexec, "run", lambda *args: Output(0, b"ok", ""))
    return made


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def new_pool(size: int = 2, clock: Clock | None = None) -> pool.ConnectionPool:
    return pool.ConnectionPool(
        lambda user, token: object(),  # type: ignore[arg-type, return-value]
        connect_timeout=1,
        idle_timeout=60,
        max_connections=size,
        clock=clock or Clock(),
    )


def test_a_user_keeps_one_connection(logins: list[FakeClient]):
    connections = new_pool()
    for _ in range(5):
        assert connections.run("test1", "t", SYSTEM, "true").stdout == b"ok"
    assert len(logins) == 1
    connections.run("test2", "t", SYSTEM, "true")
    assert len(logins) == 2


def test_idle_connections_are_closed_and_dead_ones_replaced(logins: list[FakeClient]):
    clock = Clock()
    connections = new_pool(clock=clock)
    connections.run("test1", "t", SYSTEM, "true")
    clock.now = 61
    connections.prune()
    assert logins[0].closed and connections.size() == 0
    connections.run("test1", "t", SYSTEM, "true")
    logins[1].transport.active = False
    connections.run("test1", "t", SYSTEM, "true")
    assert len(logins) == 3


def test_a_full_pool_closes_the_least_recently_used(logins: list[FakeClient]):
    clock = Clock()
    connections = new_pool(size=2, clock=clock)
    for user in ("a", "b", "c"):
        clock.now += 1
        connections.run(user, "t", SYSTEM, "true")
    assert logins[0].closed and not logins[1].closed
    assert connections.size() == 2


# The application, over a pool that answers from a script.


@dataclass
class ScriptedPool:
    answers: dict[str, Output] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)

    def run(self, user: str, token: str, system: System, command: str, *rest: Any) -> Output:
        self.ran.append(command)
        for needle, output in self.answers.items():
            if needle in command:
                return output
        return Output(0, b"", "")


@pytest.fixture
def app(jwks_url: str, tmp_path: Path) -> Iterator[tuple[Any, ScriptedPool]]:
    path = tmp_path / "v2.yaml"
    path.write_text(
        BASE_CONFIG.replace("JWKS", jwks_url).replace("ISSUER", ISSUER)
        + "ssh: {credentials: sshca, sshcaUrl: 'http://127.0.0.1:1'}\n"
    )
    scripted = ScriptedPool()
    application = create_app(load(path), pool=scripted)  # type: ignore[arg-type]
    yield application.test_client(), scripted


AUTH = {"Authorization": f"Bearer {token()}"}


def test_every_answer_names_the_api_version_and_refusals_follow_the_error_model(app):
    client, _ = app
    unknown = client.get("/filesystem/nosuch/ops/ls?path=/", headers=AUTH)
    assert unknown.status_code == 404
    assert unknown.headers["F7T-AppVersion"] == "2.5.6"
    assert unknown.json == {"errorType": "error", "message": "System not found",
                            "user": "test1", "data": None}  # fmt: skip
    assert client.get("/status/liveness/").status_code == 200
    assert client.get("/status/systems").status_code == 401


def test_system_names_match_regardless_of_case(app):
    client, scripted = app
    scripted.answers["ls "] = Output(0, b"", "")
    assert client.get("/filesystem/CLUSTER/ops/ls?path=/x", headers=AUTH).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/filesystem/cluster/ops/ls", {}),
        ("GET", "/filesystem/cluster/ops/head?path=/x&lines=abc", {}),
        ("POST", "/filesystem/cluster/ops/mkdir", {"data": "not json"}),
        ("PUT", "/filesystem/cluster/ops/chmod", {"json": {"sourcePath": "/x"}}),
        ("POST", "/compute/cluster/jobs", {"json": {"job": {"script": "x"}}}),
        ("GET", "/compute/cluster/jobs/1;id", {}),
        ("POST", "/filesystem/cluster/transfer/upload", {"json": {"path": "/x/y"}}),
        ("POST", "/filesystem/cluster/ops/upload?path=/x", {}),
    ],
)
def test_malformed_requests_are_422_and_run_nothing(app, method: str, path: str, kwargs: dict):
    client, scripted = app
    response = client.open(path, method=method, headers=AUTH, **kwargs)
    assert response.status_code == 422, response.json
    assert response.json["errorType"] == "validation"
    assert scripted.ran == []


def test_command_failures_become_404_403_and_408(app):
    client, scripted = app
    scripted.answers["/missing"] = Output(
        2, b"", "ls: cannot access '/missing': No such file or directory"
    )
    scripted.answers["/secret"] = Output(
        2, b"", "ls: cannot open directory '/secret': Permission denied"
    )
    scripted.answers["/slow"] = Output(124, b"", "")
    for path, status in (("/missing", 404), ("/secret", 403), ("/slow", 408)):
        response = client.get(f"/filesystem/cluster/ops/ls?path={path}", headers=AUTH)
        assert response.status_code == status, response.json
        assert response.json["errorType"] == "error"


def test_paths_reach_the_system_quoted(app):
    client, scripted = app
    client.get("/filesystem/cluster/ops/stat?path=/a b;rm -rf ~", headers=AUTH)
    assert scripted.ran[-1].endswith("-- '/a b;rm -rf ~'")


def test_the_controller_s_word_wins_over_the_database_s_placeholder():
    (accounted,) = slurm.parse_jobs(SACCT.splitlines()[0].replace("|hello|", "|allocation|"))
    queued = dict(accounted, name="hello", status={**accounted["status"], "exitCode": None})
    newer = {**accounted, "jobId": "99", "tasks": []}
    merged = slurm.merge_jobs([accounted], [queued, newer])
    assert [job["jobId"] for job in merged] == ["42", "99"]
    assert merged[0]["name"] == "hello"
    assert merged[0]["status"]["exitCode"] == 0  # squeue has none: sacct's stays
    assert merged[0]["tasks"] == accounted["tasks"]


def test_the_description_it_implements_is_served_without_a_token(app):
    client, _ = app
    description = client.get("/openapi.json").json
    assert description["info"]["version"] == "2.5.6"
    operations = [m for path in description["paths"].values() for m in path]
    assert len(operations) == 35


def test_a_refused_session_keeps_the_live_connection_and_a_dead_one_is_replaced(
    logins: list[FakeClient], monkeypatch: pytest.MonkeyPatch
):
    connections = new_pool()
    connections.run("test1", "t", SYSTEM, "true")

    def refused(client: FakeClient, *args: object) -> Output:
        raise pool.Unreachable("open failed: administratively prohibited")

    monkeypatch.setattr(pool.sshexec, "run", refused)
    with pytest.raises(pool.Unreachable):
        connections.run("test1", "t", SYSTEM, "true")
    assert not logins[0].closed and len(logins) == 1  # still pooled, nothing cut

    def dies_once(client: FakeClient, *args: object) -> Output:
        if client is logins[0]:
            client.transport.active = False
            raise pool.Unreachable("connection lost")
        return Output(0, b"again", "")

    monkeypatch.setattr(pool.sshexec, "run", dies_once)
    assert connections.run("test1", "t", SYSTEM, "true").stdout == b"again"
    assert logins[0].closed and len(logins) == 2


# slurmrestd's records (shapes as Slurm 24.11's API 0.0.41 answers them).

UNSET = {"set": False, "infinite": False, "number": 0}


def test_slurmrestd_numbers_are_read_only_when_set():
    assert slurmrest.number({"set": True, "infinite": False, "number": 5}) == 5
    assert slurmrest.number(UNSET) is None
    assert slurmrest.number({"set": False, "infinite": True, "number": 0}) is None
    assert slurmrest.number(7) == 7 and slurmrest.number(True) is None


def test_database_jobs_become_job_models_with_their_steps():
    record = {
        "job_id": 1,
        "name": "v2-rest",
        "state": {"current": ["COMPLETED"], "reason": "None"},
        "exit_code": {
            "status": ["SUCCESS"],
            "return_code": {"set": True, "infinite": False, "number": 0},
            "signal": {"id": UNSET, "name": ""},
        },
        "time": {
            "elapsed": 3,
            "start": 100,
            "end": 103,
            "suspended": 0,
            "limit": {"set": True, "infinite": False, "number": 5},
        },
        "steps": [
            {
                "step": {"id": "1.batch", "name": "batch"},
                "state": ["COMPLETED"],
                "exit_code": {},
                "time": {"elapsed": 3},
            }
        ],
        "allocation_nodes": 1,
        "user": "test1",
        "working_directory": "/home/test1",
        "partition": "part01",
    }
    job = slurmrest.database_job(record)
    assert job["jobId"] == "1"
    assert job["status"] == {"state": "COMPLETED", "stateReason": None, "exitCode": 0,
                             "interruptSignal": None}  # fmt: skip
    assert job["time"]["limit"] == 300  # minutes to seconds
    assert [task["id"] for task in job["tasks"]] == ["1.batch"]


def test_controller_jobs_and_nodes_read_their_wrapped_numbers():
    job = slurmrest.controller_job(
        {
            "job_id": 2,
            "job_state": ["RUNNING"],
            "time_limit": {"set": False, "infinite": True, "number": 0},
            "start_time": {"set": True, "infinite": False, "number": 100},
            "node_count": {"set": True, "infinite": False, "number": 1},
            "user_name": "test1",
        }
    )
    assert (job["status"]["state"], job["time"]["limit"], job["time"]["start"]) == (
        "RUNNING",
        None,
        100,
    )
    node = slurmrest.node({"name": "c1", "state": ["IDLE"], "cpus": 2, "cpu_load": 429})
    assert node["cpuLoad"] == 4.29 and node["state"] == ["IDLE"]


def test_rest_and_hybrid_need_slurmrestd(tmp_path: Path):
    path = tmp_path / "v2.yaml"
    path.write_text(
        BASE_CONFIG
        + "ssh: {credentials: sshca, sshcaUrl: 'http://x'}\n"
        + "schedulers: {cluster: {connectionMode: rest}}\n"
    )
    with pytest.raises(ConfigFileError) as raised:
        load(path)
    assert "needs apiUrl" in " ".join(raised.value.problems)
    with pytest.raises(ConfigError) as refused:
        environment_config.parse(
            "cluster: {slurm: '22.05'}\nstack: {v2: {connectionMode: hybrid}}\n", "t.yaml"
        )
    assert "needs slurmrestd" in str(refused.value.problems)
    accepted = environment_config.parse("stack: {v2: {connectionMode: rest}}\n")  # 24.11
    assert accepted.stack.v2.connection_mode == "rest"
