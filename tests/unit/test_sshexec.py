"""common.sshexec.run on a connection the server has cut: the caller gets
Unreachable (which the v2 pool answers with a fresh login), never a bare
paramiko or socket error that would become a 500."""

from __future__ import annotations

from dataclasses import dataclass

import paramiko
import pytest

from firecrest_testbuild.common import sshexec

TARGET = sshexec.SshTarget("login", 22, "ssh-ed25519 AAAA")


@dataclass
class CutTransport:
    active: bool
    error: BaseException

    def is_active(self) -> bool:
        return self.active

    def open_session(self, timeout: float) -> None:
        raise self.error


@dataclass
class Client:
    transport: CutTransport | None

    def get_transport(self) -> CutTransport | None:
        return self.transport


@pytest.mark.parametrize(
    "error",
    [EOFError(), ConnectionResetError(104, "reset"), paramiko.SSHException("Unable to open")],
    ids=["eof", "reset", "ssh"],
)
def test_a_session_that_cannot_open_is_unreachable(error: BaseException):
    client = Client(CutTransport(active=True, error=error))
    with pytest.raises(sshexec.Unreachable, match="login:22"):
        sshexec.run(client, TARGET, "true")  # type: ignore[arg-type]


@pytest.mark.parametrize("transport", [None, CutTransport(False, AssertionError("not called"))])
def test_a_closed_connection_is_unreachable_without_trying(transport: CutTransport | None):
    with pytest.raises(sshexec.Unreachable, match="closed"):
        sshexec.run(Client(transport), TARGET, "true")  # type: ignore[arg-type]


def test_a_silent_command_is_a_timeout_not_unreachable():
    client = Client(CutTransport(active=True, error=TimeoutError()))
    with pytest.raises(sshexec.CommandTimeout):
        sshexec.run(client, TARGET, "sleep 100", timeout=1)  # type: ignore[arg-type]
