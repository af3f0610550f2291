"""The testbuild as a pytest fixture, for client projects' own tests.

Registered as the pytest11 entry point `firecrest-testbuild-environment`, so
installing the package is all a client project needs:

    def test_my_client(testbuild_target):
        client = MyClient(testbuild_target.api.url, ...)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from firecrest_testbuild.harness import config as config_module
from firecrest_testbuild.harness.environment import Environment
from firecrest_testbuild.scenarios.target import Target, load


@pytest.fixture(scope="session")
def testbuild_target() -> Iterator[Target]:
    """A running local testbuild as a Target.

    Uses $TESTBUILD_CONFIG or ./testbuild.yaml like the `testbuild` command.
    An environment already up is reused and left up; one this fixture brought
    up is taken down at the end of the session.
    """
    environment = Environment(config_module.load(config_module.default_path(None)))
    was_up = bool(environment.runtime.containers())
    environment.up()
    yield load(environment.target_file())
    if not was_up:
        environment.down()
