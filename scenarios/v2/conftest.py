"""The v2 suites' fixtures, under the names the v1 suites use: `client` and
`other` (the target's two identities as v2 clients), `workdir` and
`other_workdir` (this run's folder per identity, made and removed through the
v2 API), `folder` (a fresh folder per test), `cancel_at_end` (jobs cancelled in
the test's teardown, transfer jobs a test saw not end included)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from firecrest_testbuild.scenarios.client import Recorder
from firecrest_testbuild.scenarios.plugin import RUN_ID
from firecrest_testbuild.scenarios.target import Target
from firecrest_testbuild.scenarios.v2.api import ApiV2


@pytest.fixture(scope="session")
def client(target: Target, recorder: Recorder) -> ApiV2:
    return ApiV2(target, target.identities[0], recorder)


@pytest.fixture(scope="session")
def other(target: Target, recorder: Recorder) -> ApiV2:
    return ApiV2(target, target.identities[1], recorder)


def _workdir(api: ApiV2) -> Iterator[str]:
    """A folder of this run's own: made through the API, removed the same way."""
    base = api.target.system.work_dir.format(user=api.user).rstrip("/")
    path = f"{base}/{RUN_ID}"
    made = api.mkdir(path, parent=True)
    if made.status_code != 201:
        pytest.fail(f"cannot make the work folder {path}: {made.status_code} {made.text[:200]}")
    yield path
    api.ops("DELETE", "rm", params={"path": path})  # only what this run made


@pytest.fixture(scope="session")
def workdir(client: ApiV2) -> Iterator[str]:
    yield from _workdir(client)


@pytest.fixture(scope="session")
def other_workdir(other: ApiV2) -> Iterator[str]:
    yield from _workdir(other)


@pytest.fixture
def folder(client: ApiV2, workdir: str, request: pytest.FixtureRequest) -> str:
    """A fresh folder inside the run's work folder, for one test."""
    path = f"{workdir}/{request.node.name[:40]}-{uuid.uuid4().hex[:6]}"
    made = client.mkdir(path)
    assert made.status_code == 201, made.text
    return path


@pytest.fixture(autouse=True)
def cancel_at_end(client: ApiV2) -> Iterator[Callable[[str], None]]:
    """Jobs to cancel in the test's teardown, whatever became of the test:
    cleanup, sent in the teardown phase and never judged."""
    jobs: list[str] = []
    yield jobs.append
    for job_id in [*jobs, *client.unfinished]:
        client.jobs(f"/{job_id}", method="DELETE")
    client.unfinished.clear()
