"""common.sshexec.run on a connection the server has cut: the caller gets
Unreachable (which the v2 pool answers with a fresh login), never a bare
paramiko or socket error that would become a 500."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    transport: Any

    def get_transport(self) -> Any:
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


class EndedEarly:
    """A channel whose command exited without reading its input (sshd then
    closes the channel: paramiko's sendall raises 'Socket is closed')."""

    def settimeout(self, timeout: float) -> None:
        pass

    def exec_command(self, command: str) -> None:
        pass

    def sendall(self, data: bytes) -> None:
        raise OSError("Socket is closed")

    def shutdown_write(self) -> None:
        pass

    def recv(self, size: int) -> bytes:
        return b""

    def recv_stderr(self, size: int) -> bytes:
        return b""

    def recv_exit_status(self) -> int:
        return 1


@dataclass
class OpenTransport:
    channel: EndedEarly

    def is_active(self) -> bool:
        return True

    def open_session(self, timeout: float) -> EndedEarly:
        return self.channel


def test_a_command_that_ends_before_reading_its_input_gives_its_exit_status():
    client = Client(OpenTransport(EndedEarly()))
    output = sshexec.run(client, TARGET, "cat > /nowhere/x", stdin=b"data")  # type: ignore[arg-type]
    assert output.exit_status == 1
