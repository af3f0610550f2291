"""Client compatibility (v2): pyfirecrest's v2 client, sync and async,
through the v2 version of the tutorial's story: the systems, a listing,
small and large uploads, a job submitted and polled, its output, small and
large downloads; the API version read from F7T-AppVersion as the client
reads it. pyfirecrest's own requests are not the suites' client's: none is
recorded (its story is judged as a whole, as a SHOULD)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from firecrest_testbuild.scenarios.client import poll
from firecrest_testbuild.scenarios.v2.api import PYFIRECREST, VERSION_HEADER, ApiV2, is_over
from firecrest_testbuild.scenarios.verdict import client as client_source
from firecrest_testbuild.scenarios.verdict import should

v2 = pytest.importorskip("firecrest.v2", reason="pyfirecrest is not installed")
errors = pytest.importorskip("firecrest.FirecrestException")
# How pyfirecrest says an answer or a transfer is not what it relies on (a
# KeyError: it read a field the answer lacks, e.g. an error's message).
REFUSALS = (
    errors.FirecrestException,
    errors.TransferJobFailedException,
    errors.MultipartUploadException,
    errors.JobTimeoutException,
    KeyError,
)

STORY = client_source(
    PYFIRECREST,
    "walks the tutorial's story on v2: systems, ls, upload small and large, submit, poll,"
    " job output, download small and large",
)
STORY_OPERATIONS = (
    "GET /status/systems",
    "GET /filesystem/{system_name}/ops/ls",
    "POST /filesystem/{system_name}/ops/upload",
    "POST /filesystem/{system_name}/transfer/upload",
    "POST /compute/{system_name}/jobs",
    "GET /compute/{system_name}/jobs/{job_id}",
    "GET /filesystem/{system_name}/ops/download",
    "POST /filesystem/{system_name}/transfer/download",
)
pytestmark = [
    pytest.mark.api(2),
    pytest.mark.requires("scheduler"),
    pytest.mark.requires("s3-transfer"),
]


class _Tokens:
    """pyfirecrest asks its authorization object for a token on every call."""

    def __init__(self, api: ApiV2) -> None:
        self.api = api

    def get_access_token(self) -> str:
        return self.api.tokens.current()


class Story:
    """The files the story moves, made once per walk."""

    def __init__(self, api: ApiV2, folder: str, local: Path) -> None:
        self.system = api.system
        self.folder = folder
        self.local = local
        self.timeout = api.target.limits.task_timeout
        # Small: through ops/upload; large: past pyfirecrest's direct limit (1 MiB), through S3.
        self.small = self._file("input_file", 10_000)
        self.large = self._file("large_file", 2 * 1024 * 1024 + 5)
        self.script = f"#!/bin/bash\nsha256sum {folder}/input_file > {folder}/res.txt\n"

    def _file(self, name: str, size: int) -> Path:
        path = self.local / name
        path.write_bytes(os.urandom(size))
        return path

    def expected_result(self) -> str:
        return hashlib.sha256(self.small.read_bytes()).hexdigest()


def check_version(api: ApiV2, version: Any) -> None:
    """pyfirecrest's server_version is the F7T-AppVersion header ("2" for 2.x.x)."""
    header = api.app_version()
    should(
        version is not None and (version == header or (version == "2" and header == "2.x.x")),
        f"pyfirecrest read the server version {version!r}; {VERSION_HEADER} is {header!r}",
        client_source(PYFIRECREST, f"server_version() is the {VERSION_HEADER} header"),
    )


def walk(fc: Any, story: Story) -> None:
    system, folder = story.system, story.folder
    assert system in {entry["name"] for entry in fc.systems()}
    assert fc.list_files(system, folder) == []
    fc.upload(system, str(story.small), folder, "input_file")
    large = fc.upload(system, str(story.large), folder, "large_file", blocking=False)
    large.upload_file_to_stage()
    large.wait_for_transfer_job(timeout=story.timeout)
    names = {entry["name"] for entry in fc.list_files(system, folder)}
    assert names == {"input_file", "large_file"}, names
    job = fc.submit(system, working_dir=folder, script_str=story.script)
    job_id = str(job["jobId"])
    poll(
        lambda: fc.job_info(system, job_id),
        lambda jobs: bool(jobs) and is_over(jobs[0]),
        timeout=story.timeout,
        what=f"job {job_id} over in pyfirecrest's job_info",
        interval=1,
        max_interval=1,
        transient=(errors.FirecrestException,),
    )
    assert fc.view(system, f"{folder}/res.txt").split()[0] == story.expected_result()
    small_back = story.local / "res.txt"
    fc.download(system, f"{folder}/res.txt", str(small_back))
    assert small_back.read_text().split()[0] == story.expected_result()
    large_back = story.local / "large_back"
    download = fc.download(system, f"{folder}/large_file", str(large_back), blocking=False)
    download.wait_for_transfer_job(timeout=story.timeout)
    download.download_file_from_stage()
    assert large_back.read_bytes() == story.large.read_bytes()


@pytest.mark.covers(*STORY_OPERATIONS)
@pytest.mark.source(STORY)
def test_pyfirecrest_sync_walks_the_story(client: ApiV2, folder: str, tmp_path: Path):
    fc = v2.Firecrest(firecrest_url=client.target.api.url, authorization=_Tokens(client))
    try:
        check_version(client, fc.server_version())
        walk(fc, Story(client, folder, tmp_path))
    except REFUSALS as error:
        should(False, f"pyfirecrest refused an answer: {error}", STORY)


class _SyncView:
    """The async client seen through the same walk: each call run to its end."""

    def __init__(self, fc: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._fc = fc
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._fc, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            result = self._loop.run_until_complete(method(*args, **kwargs))
            return _SyncView(result, self._loop) if _is_transfer(result) else result

        return call


def _is_transfer(result: Any) -> bool:
    return type(result).__name__ in ("AsyncExternalUpload", "AsyncExternalDownload")


@pytest.mark.covers(*STORY_OPERATIONS)
@pytest.mark.source(STORY)
def test_pyfirecrest_async_walks_the_story(client: ApiV2, folder: str, tmp_path: Path):
    loop = asyncio.new_event_loop()
    try:
        fc = v2.AsyncFirecrest(firecrest_url=client.target.api.url, authorization=_Tokens(client))
        view = _SyncView(fc, loop)
        check_version(client, view.server_version())
        walk(view, Story(client, folder, tmp_path))
    except REFUSALS as error:
        should(False, f"pyfirecrest (async) refused an answer: {error}", STORY)
    finally:
        loop.close()
