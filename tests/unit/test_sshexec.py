"""common.sshexec.run on a connection the server has cut: the caller gets
Unreachable (which the v2 pool answers with a fresh login), never a bare
paramiko or socket error that would become a 500."""

from __future__ import annotations

import threading
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

    lock = threading.Lock()
    transport = None

    def _send_eof(self) -> str:
        return "EOF"

    def settimeout(self, timeout: float) -> None:
        pass

    def exec_command(self, command: str) -> None:
        pass

    def sendall(self, data: bytes) -> None:
        raise OSError("Socket is closed")

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


class EndsAsItsInputEnds(EndedEarly):
    """A channel (and its transport) whose command ends while our EOF is on
    its way: paramiko's transport thread handles the server's close then,
    making its messages under the channel's lock as paramiko does."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.transport = self  # type: ignore[assignment]
        self.eof_sent = False
        self.sent: list[str] = []
        self.closer = threading.Thread(target=self._handle_close)

    def _send_eof(self) -> str | None:
        if self.eof_sent:
            return None
        self.eof_sent = True
        return "EOF"

    def sendall(self, data: bytes) -> None:
        pass

    def _send_user_message(self, message: str) -> None:
        self.closer.start()  # the server's close arrives now
        self.closer.join(0.2)  # it can take the lock only once we let go of it
        self.sent.append(message)

    def _handle_close(self) -> None:
        with self.lock:
            eof = self._send_eof()  # paramiko sends EOF, then CLOSE
        self.sent += [message for message in (eof, "CLOSE") if message]

    def shutdown_write(self) -> None:
        """paramiko's: the EOF made under the lock, sent after it."""
        with self.lock:
            message = self._send_eof()
        if message:
            self._send_user_message(message)


def test_the_eof_goes_out_before_a_close_the_transport_sends_meanwhile():
    """OpenSSH ends the whole connection on an EOF that follows the client's
    close ("ieof packet referred to nonexistent channel")."""
    channel = EndsAsItsInputEnds()
    sshexec.run(Client(OpenTransport(channel)), TARGET, "id -un")  # type: ignore[arg-type]
    channel.closer.join()
    assert channel.sent == ["EOF", "CLOSE"]
