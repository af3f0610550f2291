"""SSH to the login node the way FirecREST v1 does: a short-lived CA
certificate whose force-command is the command, sent as the SSH command.

The login node's host key is known from the environment's state, so the
client verifies it instead of trusting whatever answers. The wire protocol
is the leaf package's (common.sshexec), which the stack uses too.
"""

from __future__ import annotations

from dataclasses import dataclass

import paramiko

from firecrest_testbuild.common.certificates import issue_identity
from firecrest_testbuild.common.sshexec import Protocol, SshTarget, execute
from firecrest_testbuild.harness.keys import KeyPair


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
        identity = issue_identity(self.ca.private_key(), user, force_command=command)
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
        target = SshTarget(self.host, self.port, self.host_key_line)
        output = execute(target, user, pkey, sent, stdin, timeout)
        return CommandResult(output.exit_status, output.text, output.stderr)
