"""The integration tests' FirecREST client: the conformance suites' own client
(real tokens, one polling helper) pointed at an environment of the tests."""

from __future__ import annotations

import time
from typing import Any

import requests

from firecrest_testbuild.harness.environment import Environment
from firecrest_testbuild.scenarios.client import FINAL_STATUSES, Client, Recorder
from firecrest_testbuild.scenarios.target import Identity, load


class Api(Client):
    @classmethod
    def for_user(cls, environment: Environment, user: str) -> Api:
        """As `user` of the environment (which must be up: it wrote its target file)."""
        target = load(environment.target_file())
        identity = Identity(name=user, password=environment.config.user(user).password)
        return cls(target, identity, Recorder())

    @property
    def url(self) -> str:
        return self.base

    @property
    def token(self) -> str:
        return self.tokens.current()

    @property
    def machine(self) -> str:
        return self.target.system.name

    def finished_task(self, response: requests.Response, timeout: float = 60) -> dict[str, Any]:
        """The task a creation response names, once it reached a final status."""
        return self.wait_task(self.created_task(response), FINAL_STATUSES, timeout)

    def task_data(self, response: requests.Response, timeout: float = 60) -> Any:
        """The data of a task that must finish successfully."""
        task = self.finished_task(response, timeout)
        assert task["status"] == "200", task
        return task["data"]

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
