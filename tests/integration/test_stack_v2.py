"""The service stack's FirecREST v2 on a real environment: real Keycloak
tokens over HTTP, commands on the real cluster as the user over pooled SSH
connections with SSH CA certificates, and the truth checked on the cluster
(files as the user sees them, jobs in Slurm)."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from firecrest_testbuild.harness.contracts import StackEndpoints
from firecrest_testbuild.harness.environment import Environment
from firecrest_testbuild.harness.ssh import LoginNode
from tests.integration.conftest import eventually, keycloak, login_node

pytestmark = pytest.mark.integration

SYSTEM = "cluster"


@pytest.fixture(scope="module")
def v2_environment(environment: Environment) -> Environment:
    """The session's environment: the default one serves FirecREST v2 too."""
    return environment


class V2:
    """A FirecREST v2 client of the tests: a real token of `user`, JSON answers."""

    def __init__(self, environment: Environment, user: str) -> None:
        self.url = environment.context().endpoints(StackEndpoints).v2_url
        assert self.url is not None
        self.token = keycloak(environment).token(user=environment.config.user(user))
        self.user = user

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=60, **kwargs)

    def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        assert response.status_code == status, response.text
        assert response.headers["F7T-AppVersion"] == "2.5.6"
        return response.json() if response.content else None


@pytest.fixture(scope="module")
def api(v2_environment: Environment) -> V2:
    return V2(v2_environment, "test1")


@pytest.fixture(scope="module")
def login(v2_environment: Environment) -> LoginNode:
    return login_node(v2_environment)


@pytest.fixture
def folder(api: V2) -> str:
    path = f"/home/test1/v2-{uuid.uuid4().hex[:8]}"
    api.ok("POST", f"/filesystem/{SYSTEM}/ops/mkdir", 201, json={"sourcePath": path})
    return path


def on_cluster(login: LoginNode, user: str, command: str) -> str:
    return login.run(user, command).stdout


def test_liveness_needs_no_token(api: V2):
    response = requests.get(f"{api.url}/status/liveness/", timeout=10)
    assert response.status_code == 200
    assert response.headers["F7T-AppVersion"] == "2.5.6"
    assert isinstance(response.json()["lastUpdate"], int)


def test_systems_report_their_probed_health(api: V2, v2_environment: Environment):
    systems = api.ok("GET", "/status/systems")["systems"]
    assert [system["name"] for system in systems] == [SYSTEM]
    health = {entry["serviceType"]: entry for entry in systems[0]["servicesHealth"]}
    assert set(health) == {"ssh", "scheduler", "filesystem", "s3"}
    assert all(entry["healthy"] for entry in systems[0]["servicesHealth"])
    assert systems[0]["scheduler"]["type"] == "slurm"
    assert systems[0]["scheduler"]["version"].startswith(v2_environment.config.cluster.slurm)
    assert {fs["path"] for fs in systems[0]["fileSystems"]} == {"/home", "/scratch"}


def test_an_unknown_system_is_404_in_the_error_model(api: V2):
    response = api.request("GET", "/status/nosuch/nodes")
    assert response.status_code == 404
    body = response.json()
    assert body["message"] == "System not found"
    assert body["errorType"] == "error"
    assert body["user"] == "test1"


def test_a_missing_token_is_401(api: V2):
    response = requests.get(f"{api.url}/status/systems", timeout=10)
    assert response.status_code == 401
    assert "message" in response.json()


def test_nodes_partitions_and_reservations_come_from_slurm(api: V2, v2_environment: Environment):
    nodes = api.ok("GET", f"/status/{SYSTEM}/nodes")["nodes"]
    names = v2_environment.config.cluster.compute_node_names
    assert [node["name"] for node in nodes] == names
    assert all(node["cpus"] >= 1 for node in nodes)
    assert all(set(node["state"]) <= {"IDLE", "ALLOCATED", "MIXED"} for node in nodes)
    partitions = api.ok("GET", f"/status/{SYSTEM}/partitions")["partitions"]
    assert {"part01", "xfer"} <= {partition["name"] for partition in partitions}
    assert api.ok("GET", f"/status/{SYSTEM}/reservations") == {"reservations": []}


def test_userinfo_names_the_user_and_their_account(api: V2):
    info = api.ok("GET", f"/status/{SYSTEM}/userinfo")
    assert info["user"] == {"id": "1001", "name": "test1"}
    assert {"name": "testbuild", "default": True} in info["accounts"]


def test_ls_lists_what_the_user_sees(api: V2, folder: str, login: LoginNode):
    on_cluster(login, "test1", f"echo hi > {folder}/a.txt && ln -s a.txt {folder}/link")
    entries = api.ok("GET", f"/filesystem/{SYSTEM}/ops/ls", params={"path": folder})["output"]
    by_name = {entry["name"]: entry for entry in entries}
    assert set(by_name) == {"a.txt", "link"}
    assert by_name["a.txt"]["size"] == "3"
    assert by_name["a.txt"]["user"] == "test1"
    assert by_name["link"]["linkTarget"] == "a.txt"
    assert by_name["a.txt"]["linkTarget"] is None


def test_missing_paths_are_404_and_others_files_403(api: V2):
    missing = api.request("GET", f"/filesystem/{SYSTEM}/ops/ls", params={"path": "/nope"})
    assert missing.status_code == 404, missing.text
    assert "No such file" in missing.json()["message"]
    other = api.request("GET", f"/filesystem/{SYSTEM}/ops/ls", params={"path": "/home/test2"})
    assert other.status_code == 403, other.text


def test_bad_input_is_a_4xx_in_the_error_model(api: V2):
    no_path = api.request("GET", f"/filesystem/{SYSTEM}/ops/ls")
    assert no_path.status_code == 422
    assert no_path.json()["errorType"] == "validation"
    not_json = api.request("POST", f"/filesystem/{SYSTEM}/ops/mkdir", data="{")
    assert not_json.status_code == 422
    wrong_type = api.request(
        "POST", f"/filesystem/{SYSTEM}/ops/mkdir", json={"sourcePath": 3, "parent": "x"}
    )
    assert wrong_type.status_code == 422
    bad_job = api.request("GET", f"/compute/{SYSTEM}/jobs/1;id")
    assert bad_job.status_code == 422


def test_small_files_go_up_and_down_and_are_read(api: V2, folder: str, login: LoginNode):
    content = b"line1\nline2\nline3\n"
    api.ok(
        "POST",
        f"/filesystem/{SYSTEM}/ops/upload",
        204,
        params={"path": folder},
        files={"file": ("data.txt", content)},
    )
    assert on_cluster(login, "test1", f"cat {folder}/data.txt") == content.decode()
    download = api.request(
        "GET", f"/filesystem/{SYSTEM}/ops/download", params={"path": f"{folder}/data.txt"}
    )
    assert download.status_code == 200 and download.content == content
    head = api.ok(
        "GET", f"/filesystem/{SYSTEM}/ops/head", params={"path": f"{folder}/data.txt", "lines": 1}
    )
    assert head["output"]["content"] == "line1\n"
    tail = api.ok(
        "GET", f"/filesystem/{SYSTEM}/ops/tail", params={"path": f"{folder}/data.txt", "bytes": 6}
    )
    assert tail["output"] == {
        "content": "line3\n",
        "contentType": "bytes",
        "startPosition": -6,
        "endPosition": -1,
    }
    view = api.ok(
        "GET",
        f"/filesystem/{SYSTEM}/ops/view",
        params={"path": f"{folder}/data.txt", "offset": 6, "size": 5},
    )
    assert view["output"] == "line2"
    checksum = api.ok(
        "GET", f"/filesystem/{SYSTEM}/ops/checksum", params={"path": f"{folder}/data.txt"}
    )
    expected = on_cluster(login, "test1", f"sha256sum {folder}/data.txt").split()[0]
    assert checksum["output"] == {"algorithm": "SHA-256", "checksum": expected}
    assert (
        api.ok("GET", f"/filesystem/{SYSTEM}/ops/file", params={"path": f"{folder}/data.txt"})[
            "output"
        ]
        == "ASCII text"
    )
    stat = api.ok("GET", f"/filesystem/{SYSTEM}/ops/stat", params={"path": f"{folder}/data.txt"})[
        "output"
    ]
    assert stat["size"] == len(content) and stat["uid"] == 1001


def test_changes_land_on_the_cluster(api: V2, folder: str, login: LoginNode):
    on_cluster(login, "test1", f"echo x > {folder}/f")
    changed = api.ok(
        "PUT", f"/filesystem/{SYSTEM}/ops/chmod", json={"sourcePath": f"{folder}/f", "mode": "600"}
    )
    assert changed["output"]["permissions"] == "rw-------"
    link = api.ok(
        "POST",
        f"/filesystem/{SYSTEM}/ops/symlink",
        201,
        json={"sourcePath": f"{folder}/f", "linkPath": f"{folder}/l"},
    )
    assert link["output"]["linkTarget"] == f"{folder}/f"
    made = api.ok(
        "POST",
        f"/filesystem/{SYSTEM}/ops/mkdir",
        201,
        json={"sourcePath": f"{folder}/a/b", "parent": True},
    )
    assert made["output"]["type"] == "d"
    api.ok(
        "POST",
        f"/filesystem/{SYSTEM}/ops/compress",
        204,
        json={"sourcePath": f"{folder}/a", "targetPath": f"{folder}/a.tar.gz"},
    )
    api.ok("POST", f"/filesystem/{SYSTEM}/ops/mkdir", 201, json={"sourcePath": f"{folder}/out"})
    api.ok(
        "POST",
        f"/filesystem/{SYSTEM}/ops/extract",
        204,
        json={"sourcePath": f"{folder}/a.tar.gz", "targetPath": f"{folder}/out"},
    )
    assert on_cluster(login, "test1", f"test -d {folder}/out/a/b && echo yes") == "yes\n"
    api.ok("DELETE", f"/filesystem/{SYSTEM}/ops/rm", 204, params={"path": folder})
    assert on_cluster(login, "test1", f"test -e {folder} || echo gone") == "gone\n"


def wait_for_state(api: V2, job_id: str, states: set[str], timeout: float = 90) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        response = api.request("GET", f"/compute/{SYSTEM}/jobs/{job_id}")
        if response.status_code != 200:
            return None
        job: dict[str, Any] = response.json()["jobs"][0]
        return job if job["status"]["state"] in states else None

    result = eventually(finished, timeout=timeout, interval=1)
    assert isinstance(result, dict)
    return result


def test_a_job_runs_to_completion_and_is_described(api: V2, folder: str, login: LoginNode):
    script = "#!/bin/bash\n#SBATCH --time=00:05:00\necho hello $GREETING\n"
    submitted = api.ok(
        "POST",
        f"/compute/{SYSTEM}/jobs",
        201,
        json={
            "job": {
                "script": script,
                "workingDirectory": folder,
                "name": "v2-test",
                "standardOutput": f"{folder}/out.txt",
                "env": {"GREETING": "v2 world"},
            }
        },
    )
    job_id = submitted["jobId"]
    metadata = api.ok("GET", f"/compute/{SYSTEM}/jobs/{job_id}/metadata")["jobs"][0]
    assert metadata["jobId"] == job_id
    job = wait_for_state(api, job_id, {"COMPLETED", "FAILED"})
    assert job["status"]["state"] == "COMPLETED"
    assert job["status"]["exitCode"] == 0
    assert job["name"] == "v2-test"
    assert job["workingDirectory"] == folder
    assert on_cluster(login, "test1", f"cat {folder}/out.txt") == "hello v2 world\n"
    listed = api.ok("GET", f"/compute/{SYSTEM}/jobs")["jobs"]
    assert job_id in {entry["jobId"] for entry in listed}


def test_a_job_is_cancelled(api: V2, folder: str, login: LoginNode):
    submitted = api.ok(
        "POST",
        f"/compute/{SYSTEM}/jobs",
        201,
        json={"job": {"script": "#!/bin/bash\nsleep 300\n", "workingDirectory": folder}},
    )
    job_id = submitted["jobId"]
    api.ok("DELETE", f"/compute/{SYSTEM}/jobs/{job_id}", 204)
    assert wait_for_state(api, job_id, {"CANCELLED"})["status"]["state"] == "CANCELLED"
    unknown = api.request("DELETE", f"/compute/{SYSTEM}/jobs/999999")
    assert unknown.status_code == 404, unknown.text


def logins(environment: Environment, user: str) -> int:
    """How often the v2 stack has logged in to the cluster as `user` (its log says each)."""
    logs = environment.runtime.container("stack-v2").logs().decode(errors="replace")
    return logs.count(f"logged in to {SYSTEM} as {user}")


def home_listing(api: V2) -> Any:
    """test1's home, dot files included."""
    listing = {"path": "/home/test1", "showHidden": "true"}
    return api.ok("GET", f"/filesystem/{SYSTEM}/ops/ls", params=listing)


def test_one_pooled_connection_serves_many_requests(api: V2, v2_environment: Environment):
    home_listing(api)
    before = logins(v2_environment, "test1")
    for _ in range(20):
        home_listing(api)
    assert logins(v2_environment, "test1") == before >= 1  # the pooled connection served all


def test_a_pooled_connection_the_login_node_cuts_is_replaced_unseen(
    api: V2, v2_environment: Environment
):
    home_listing(api)
    before = logins(v2_environment, "test1")
    # sshd's process serving test1's connection (sshd: test1@notty) ends: the
    # connection dies under the pool, as when sshd restarts or a node reboots.
    killed = v2_environment.runtime.execute("controller", ["pkill", "-u", "test1", "sshd"])
    assert killed.exit_code == 0, killed.output
    listing = home_listing(api)  # the client sees no error
    assert ".bashrc" in [entry["name"] for entry in listing["output"]]
    assert logins(v2_environment, "test1") == before + 1


def test_a_restarted_v2_service_serves_again(api: V2, v2_environment: Environment):
    container = v2_environment.runtime.container("stack-v2")
    container.restart(timeout=10)

    def live() -> bool:
        try:
            return requests.get(f"{api.url}/status/liveness/", timeout=5).status_code == 200
        except requests.ConnectionError:
            return False

    eventually(live, timeout=60)
    assert ".bashrc" in [entry["name"] for entry in home_listing(api)["output"]]


def transfer_log(api: V2, answer: dict[str, Any]) -> str:
    """Wait for the transfer job to end; its output log, as clients read it (ops/view)."""
    job = answer["transferJob"]
    assert job["system"] == SYSTEM
    wait_for_state(api, job["jobId"], {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"})
    log = api.ok("GET", f"/filesystem/{SYSTEM}/ops/view", params={"path": job["logs"]["outputLog"]})
    return str(log["output"])


def test_a_large_upload_goes_through_s3_multipart(api: V2, folder: str, login: LoginNode):
    content = bytes(range(256)) * 4096  # 1 MiB, not text
    answer = api.ok(
        "POST",
        f"/filesystem/{SYSTEM}/transfer/upload",
        201,
        json={
            "path": f"{folder}/big.bin",
            "transfer_directives": {"transfer_method": "s3", "file_size": len(content)},
        },
    )
    directives = answer["transferDirectives"]
    assert len(directives["partsUploadUrls"]) == 1
    put = requests.put(directives["partsUploadUrls"][0], data=content, timeout=60)
    assert put.status_code == 200, put.text
    document = (
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
        f"<ETag>{put.headers['ETag']}</ETag></Part></CompleteMultipartUpload>"
    )
    completed = requests.post(directives["completeUploadUrl"], data=document, timeout=60)
    assert completed.status_code == 200, completed.text
    assert "File was successfully" in transfer_log(api, answer)
    expected = on_cluster(login, "test1", f"sha256sum {folder}/big.bin").split()[0]
    assert hashlib.sha256(content).hexdigest() == expected


def test_a_large_download_goes_through_s3(api: V2, folder: str, login: LoginNode):
    on_cluster(login, "test1", f"head -c 3000000 /dev/urandom > {folder}/out.bin")
    answer = api.ok(
        "POST",
        f"/filesystem/{SYSTEM}/transfer/download",
        201,
        json={"sourcePath": f"{folder}/out.bin", "transferDirectives": {"transferMethod": "s3"}},
    )
    assert "Multipart file upload successfully completed" in transfer_log(api, answer)
    fetched = requests.get(answer["transferDirectives"]["downloadUrl"], timeout=60)
    assert fetched.status_code == 200
    expected = on_cluster(login, "test1", f"sha256sum {folder}/out.bin").split()[0]
    assert hashlib.sha256(fetched.content).hexdigest() == expected


def test_copy_and_remove_run_as_transfer_jobs(api: V2, folder: str, login: LoginNode):
    on_cluster(login, "test1", f"mkdir {folder}/src && echo hi > {folder}/src/f")
    copied = api.ok(
        "POST",
        f"/filesystem/{SYSTEM}/transfer/cp",
        201,
        json={"sourcePath": f"{folder}/src", "targetPath": f"{folder}/dst"},
    )
    assert "Files were successfully copied" in transfer_log(api, copied)
    assert on_cluster(login, "test1", f"cat {folder}/dst/f") == "hi\n"
    removed = api.ok(
        "DELETE", f"/filesystem/{SYSTEM}/transfer/rm", params={"path": f"{folder}/src"}
    )
    assert "Files were successfully removed" in transfer_log(api, removed)
    assert on_cluster(login, "test1", f"test -e {folder}/src || echo gone") == "gone\n"
    jobs = api.ok("GET", f"/compute/{SYSTEM}/jobs/{removed['transferJob']['jobId']}")["jobs"]
    assert jobs[0]["partition"] == "xfer"


class TokenOf:
    """pyfirecrest's authorization: anything with get_access_token()."""

    def __init__(self, environment: Environment, user: str) -> None:
        self.environment = environment
        self.user = user

    def get_access_token(self) -> str:
        return keycloak(self.environment).token(user=self.environment.config.user(self.user))


def test_pyfirecrest_walks_the_tutorial_story(
    v2_environment: Environment, api: V2, folder: str, tmp_path: Path, login: LoginNode
):
    """pyfirecrest 3's v2 client: systems, ls, a small and a large upload,
    a job submitted and waited for, its output read, a small and a large download."""
    from firecrest import v2 as firecrest_v2

    assert api.url is not None
    client = firecrest_v2.Firecrest(api.url, TokenOf(v2_environment, "test1"))
    assert [system["name"] for system in client.systems()] == [SYSTEM]
    assert client.list_files(SYSTEM, "/home/test1") is not None
    small = tmp_path / "small.txt"
    small.write_text("hello from pyfirecrest\n")
    client.upload(SYSTEM, small, folder, "small.txt", blocking=True)
    large = tmp_path / "large.bin"
    large.write_bytes(bytes(range(256)) * 8192)  # 2 MiB: over the direct-upload limit
    client.upload(SYSTEM, large, folder, "large.bin", blocking=True)
    assert {entry["name"] for entry in client.list_files(SYSTEM, folder)} >= {
        "small.txt",
        "large.bin",
    }
    job = client.submit(
        SYSTEM, folder, script_str="#!/bin/bash\ncat small.txt\nwc -c < large.bin\n"
    )
    finished = client.wait_for_job(SYSTEM, job["jobId"], timeout=120)
    assert finished[0]["status"]["state"] == "COMPLETED"
    output_log = f"{folder}/slurm-{job['jobId']}.out"
    assert client.view(SYSTEM, output_log) == "hello from pyfirecrest\n2097152\n"
    client.download(SYSTEM, f"{folder}/small.txt", tmp_path / "back.txt", blocking=True)
    assert (tmp_path / "back.txt").read_text() == "hello from pyfirecrest\n"
    client.download(SYSTEM, f"{folder}/large.bin", tmp_path / "back.bin", blocking=True)
    assert (tmp_path / "back.bin").read_bytes() == large.read_bytes()


def test_fuzzed_requests_never_get_a_server_error(v2_environment: Environment):
    """Requests generated from the v2 description, valid and not (testuser's, so
    the other tests' files are untouched): every answer is documented."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )

    fuzzer = V2(v2_environment, "testuser")
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    # The description as the stack serves it (upstream's 2.5.6).
    schema = schemathesis.openapi.from_url(f"{fuzzer.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 35
    failures = {}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def run(case: Any) -> None:
            if case.path_parameters and "system_name" in case.path_parameters:
                case.path_parameters["system_name"] = SYSTEM  # mostly reach the cluster
            headers = {"Authorization": f"Bearer {fuzzer.token}"}
            case.call_and_validate(base_url=fuzzer.url, headers=headers, checks=checks, timeout=60)

        try:
            run()
        except Exception as error:  # a failed check, with schemathesis's reproduction
            failures[operation.label] = str(error)[:2000]
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
