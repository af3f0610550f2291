"""A small FirecREST v1 client for the integration tests: real tokens, one
polling helper with a deadline that reports the task's last state."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import requests

from harness.components.firecrest import FirecrestComponent
from harness.components.keycloak import KeycloakComponent
from harness.environment import Environment

FINAL_STATUSES = {"200", "400", "114", "115", "117", "118"}


@dataclass
class Api:
    url: str
    token: str
    machine: str

    @classmethod
    def for_user(cls, environment: Environment, user: str) -> Api:
        context = environment.context()
        return cls(
            url=FirecrestComponent().url(context),
            token=KeycloakComponent().token(context, user=user),
            machine=context.config.cluster.name,
        )

    def headers(self, machine: bool = True) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"}
        if machine:
            headers["X-Machine-Name"] = self.machine
        return headers

    def request(
        self,
        method: str,
        path: str,
        machine: bool = True,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ):
        sent = {**self.headers(machine), **(headers or {})}
        return requests.request(method, f"{self.url}{path}", headers=sent, timeout=60, **kwargs)

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.request("GET", path, params=params)

    def post(self, path: str, files: dict | None = None, **form: Any) -> requests.Response:
        return self.request("POST", path, data=form, files=files)

    def put(self, path: str, **form: Any) -> requests.Response:
        return self.request("PUT", path, data=form)

    def delete(self, path: str, **form: Any) -> requests.Response:
        return self.request("DELETE", path, data=form)

    def wait_until_up(self, timeout: float = 30) -> None:
        """Block until the API answers its health check (after a restart)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if requests.get(f"{self.url}/_health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.url} not answering after {timeout}s")
            time.sleep(0.2)

    def task(self, task_id: str) -> dict[str, Any]:
        response = self.request("GET", f"/tasks/{task_id}", machine=False)
        assert response.status_code == 200, response.text
        return response.json()["task"]

    def finished_task(self, response: requests.Response, timeout: float = 60) -> dict[str, Any]:
        """The task a creation response names, once it reached a final status."""
        assert response.status_code in (200, 201), response.text
        body = response.json()
        assert body["success"] == "Task created"
        assert body["task_url"].endswith(f"/tasks/{body['task_id']}")
        deadline = time.monotonic() + timeout
        while True:
            task = self.task(body["task_id"])
            if task["status"] in FINAL_STATUSES:
                return task
            if time.monotonic() > deadline:
                raise AssertionError(f"task not finished after {timeout}s; last state: {task}")
            time.sleep(0.2)

    def task_data(self, response: requests.Response, timeout: float = 60) -> Any:
        """The data of a task that must finish successfully."""
        task = self.finished_task(response, timeout)
        assert task["status"] == "200", task
        return task["data"]
