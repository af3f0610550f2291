"""SSH to the login node the way FirecREST v1 does: a short-lived CA
certificate whose force-command is the command, sent as the SSH command.

The login node's host key is known from the environment's state, so the
client verifies it instead of trusting whatever answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import paramiko

from harness.sshca import KeyPair, issue_identity

Protocol = Literal["certificate-as-command", "plain-command"]


@dataclass(frozen=True)
class CommandResult:
    exit_status: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class LoginNode:
    host: str
    port: int
    host_key_line: str
    ca: KeyPair

    def run(
        self,
        user: str,
        command: str,
        protocol: Protocol = "certificate-as-command",
        stdin: bytes = b"",
        timeout: float = 120,
    ) -> CommandResult:
        """Run `command` as `user` with a fresh certificate (upstream FirecREST's way)."""
        identity = issue_identity(self.ca, user, force_command=command)
        sent = identity.certificate if protocol == "certificate-as-command" else command
        return self.run_with_key(user, identity.pkey, sent, stdin, timeout)

    def run_with_key(
        self,
        user: str,
        pkey: paramiko.PKey,
        sent: str,
        stdin: bytes = b"",
        timeout: float = 120,
    ) -> CommandResult:
        """Log in with `pkey` (a plain key or one with a certificate) and send `sent`."""
        with self._connect(user, pkey) as client:
            channel_in, stdout, stderr = client.exec_command(sent, timeout=timeout)
            if stdin:
                channel_in.write(stdin)
            channel_in.channel.shutdown_write()
            out = stdout.read().decode(errors="replace")
            err = stderr.read().decode(errors="replace")
            return CommandResult(stdout.channel.recv_exit_status(), out, err)

    def _connect(self, user: str, pkey: paramiko.PKey) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        entry = paramiko.hostkeys.HostKeyEntry.from_line(
            f"[{self.host}]:{self.port} {self.host_key_line}"
        )
        assert entry is not None and entry.key is not None
        client.get_host_keys().add(f"[{self.host}]:{self.port}", entry.key.get_name(), entry.key)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(
            self.host,
            port=self.port,
            username=user,
            pkey=pkey,
            look_for_keys=False,
            allow_agent=False,
            timeout=10,
            banner_timeout=10,
            auth_timeout=10,
        )
        return client
