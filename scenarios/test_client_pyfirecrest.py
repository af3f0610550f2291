"""Client compatibility: pyfirecrest's v1 client (the most used FirecREST
Python client) walks the tutorial against the target."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from firecrest_testbuild.scenarios.client import Client, poll
from firecrest_testbuild.scenarios.test_status import VERSION_PARSED, is_version, reported_version
from firecrest_testbuild.scenarios.verdict import client as client_source
from firecrest_testbuild.scenarios.verdict import must, should, spec

firecrest = pytest.importorskip("firecrest.v1", reason="pyfirecrest is not installed")
errors = pytest.importorskip("firecrest.FirecrestException")

PYFIRECREST = client_source(
    "pyfirecrest 3.x (v1 Firecrest)",
    "walks the tutorial: systems, list, upload, submit, poll, download, external transfers",
)

pytestmark = [
    pytest.mark.api(1),
    pytest.mark.requires("scheduler"),
    pytest.mark.requires("s3-transfer"),
]


class _Tokens:
    """pyfirecrest asks its authorization object for a token on every call."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def get_access_token(self) -> str:
        return self.client.tokens.current()


@pytest.mark.covers(
    "GET /status/systems",
    "GET /utilities/ls",
    "POST /utilities/upload",
    "POST /compute/jobs/upload",
    "GET /compute/acct",
    "GET /utilities/download",
    "POST /storage/xfer-external/upload",
    "POST /storage/xfer-external/download",
)
@pytest.mark.source(PYFIRECREST)
def test_pyfirecrest_walks_the_tutorial(client: Client, pyfirecrest, folder: str, tmp_path: Path):
    # pyfirecrest's own requests are not the suites' client's: none is recorded.
    try:
        walk(client, pyfirecrest, folder, tmp_path)
    except errors.FirecrestException as error:
        should(False, f"pyfirecrest refused an answer: {error}", PYFIRECREST)


@pytest.fixture
def pyfirecrest(client: Client):
    """pyfirecrest's client for the target, its API version checked first."""
    fc = firecrest.Firecrest(firecrest_url=client.target.api.url, authorization=_Tokens(client))
    usable_version(client, fc)
    return fc


def usable_version(client: Client, fc) -> None:
    """pyfirecrest parses FIRECREST_VERSION on its first call and raises on
    anything that is no version: that is a finding, with its cause (not a
    crash); the walk goes on with the version the target file declares."""
    answer = client.request("GET", "/status/parameters", machine=False)
    must(
        answer.status_code == 200, answer.text[:200], spec("GET /status/parameters", "200"), answer
    )
    version = reported_version(answer.json().get("out", {}))
    if version is not None and not is_version(version):
        should(
            False,
            f"FIRECREST_VERSION {version!r} is not a version: pyfirecrest's first call raises"
            f" InvalidVersion (walking on as {client.target.api.version})",
            VERSION_PARSED,
            about=answer,
        )
        fc.set_api_version(client.target.api.version)


def walk(client: Client, fc, folder: str, tmp_path: Path) -> None:
    machine = client.target.system.name
    assert machine in {system["system"] for system in fc.all_systems()}
    assert fc.list_files(machine, folder) == []

    small = tmp_path / "input_file"
    small.write_bytes(os.urandom(10_000))
    fc.simple_upload(machine, str(small), folder)
    assert [entry["name"] for entry in fc.list_files(machine, folder)] == ["input_file"]

    script = tmp_path / "script.sh"
    script.write_text(
        f"#!/bin/bash\n#SBATCH --job-name=pyfirecrest\n#SBATCH --output={folder}/res.txt\n"
        f"#SBATCH --time=5:00\nsha1sum {folder}/input_file\n"
    )
    job = fc.submit(machine, job_script=str(script))
    jobid = str(job["jobid"])
    poll(
        lambda: fc.poll(machine, [jobid]),
        lambda rows: any(row["state"] == "COMPLETED" for row in rows),
        timeout=90,
        what=f"job {jobid} COMPLETED in pyfirecrest's poll",
        interval=1,
        max_interval=1,
    )
    result = tmp_path / "res.txt"
    fc.simple_download(machine, f"{folder}/res.txt", str(result))
    assert result.read_text().split()[0] == hashlib.sha1(small.read_bytes()).hexdigest()

    bigger = tmp_path / "bigger"
    bigger.write_bytes(os.urandom(2 * 1024 * 1024))
    upload = fc.external_upload(machine, str(bigger), folder)
    upload.finish_upload()
    poll(
        lambda: upload,
        lambda transfer: not transfer.in_progress,
        timeout=90,
        what="pyfirecrest's external upload finishing",
        interval=0.5,
        max_interval=0.5,
        show=lambda transfer: f"status {transfer.status}",
    )
    assert upload.status == "114"

    download = fc.external_download(machine, f"{folder}/bigger")
    back = tmp_path / "back"
    download.finish_download(str(back))
    assert back.read_bytes() == bigger.read_bytes()
