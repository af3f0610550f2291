"""The integration tests' FirecREST client: the conformance suites' own client
(real tokens, tasks followed with `wait_task` / `task_result`, waits through
the suites' one polling helper) pointed at an environment of the tests."""

from __future__ import annotations

import requests

from firecrest_testbuild.harness.environment import Environment
from firecrest_testbuild.scenarios.client import Client, Recorder, poll
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

    def wait_until_up(self, timeout: float = 30) -> None:
        """Block until the API answers its health check (after a restart)."""
        poll(
            lambda: requests.get(f"{self.url}/_health", timeout=2).status_code,
            lambda status: status == 200,
            timeout=timeout,
            what=f"{self.url}/_health answering 200",
            interval=0.2,
            max_interval=0.2,
            transient=(requests.RequestException,),
        )
