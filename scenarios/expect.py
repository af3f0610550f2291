"""Expectations several suites share: a refusal with one of the documented
headers, a refusal that may come at once or from the task the request made,
and requests naming a machine the target does not have."""

from __future__ import annotations

from typing import Any

import requests

from firecrest_testbuild.scenarios.client import Client
from firecrest_testbuild.scenarios.verdict import Source, must, reference, should

UNKNOWN_MACHINE = "no-such-machine-x"
MACHINE_DOES_NOT_EXIST = "X-Machine-Does-Not-Exist"


def x_headers(response: requests.Response) -> dict[str, str]:
    """The answer's X- headers: the ones the description gives meaning to."""
    return {k: v for k, v in response.headers.items() if k.lower().startswith("x-")}


def refused(response: requests.Response, *headers: str) -> str:
    """A 400 carrying one of `headers` (the description's 400 headers of the
    operation); returns that header's text."""
    assert response.status_code == 400, (response.status_code, response.text[:200])
    present = [header for header in headers if header in response.headers]
    assert present, f"none of {headers}; X- headers: {x_headers(response)}"
    return response.headers[present[0]]


def refused_at_once_or_by_task(
    client: Client, response: requests.Response, source: Source
) -> dict[str, Any] | None:
    """A request the target must not carry out, where the description allows
    both ways: a 400 at once, or a task (Task-Creation-Success) that ends in
    status 400. Returns the task, or None when refused at once."""
    if response.status_code == 400:
        return None
    task = client.wait_task(client.created_task(response))
    must(
        task["status"] == "400",
        f"{response.request.method} {response.request.path_url}: accepted, and its task"
        f" ended {task['status']}: {str(task.get('data'))[:200]}",
        source,
        about=response,
    )
    return task


def with_unknown_machine(
    client: Client, method: str, path: str, **kwargs: Any
) -> requests.Response:
    headers = {"X-Machine-Name": UNKNOWN_MACHINE}
    return client.request(method, path, machine=False, headers=headers, **kwargs)


def unknown_machine_refused(client: Client, method: str, path: str, **kwargs: Any) -> None:
    """The operation lists 400 with X-Machine-Does-Not-Exist (API description):
    that header, so spelt; the reference's compute and storage services send
    X-Machine-Does-Not-Exists, which is not the header the description names."""
    answer = with_unknown_machine(client, method, path, **kwargs)
    assert answer.status_code == 400, (method, path, answer.status_code, answer.text[:200])
    assert MACHINE_DOES_NOT_EXIST in answer.headers, (method, path, x_headers(answer))


# Storage's operations name no header for an unknown machine; the reference
# answers as its compute service does, with a misspelt one.
STORAGE_MACHINE_HEADERS = (MACHINE_DOES_NOT_EXIST, "X-Machine-Does-Not-Exists")
STORAGE_UNKNOWN_MACHINE = reference(
    "storage.py (internal_operation, download_request, upload_request)",
    "400 with X-Machine-Does-Not-Exists: 'Machine does not exists' for an unknown machine",
)


def storage_unknown_machine_refused(client: Client, path: str, **form: str) -> None:
    answer = with_unknown_machine(client, "POST", path, data=form)
    assert answer.status_code == 400, (path, answer.status_code, answer.text[:200])
    should(
        any(header in answer.headers for header in STORAGE_MACHINE_HEADERS),
        f"POST {path} for an unknown machine names it in no header of"
        f" {STORAGE_MACHINE_HEADERS}: {x_headers(answer)}",
        STORAGE_UNKNOWN_MACHINE,
        about=answer,
    )
