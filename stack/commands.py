"""Commands on a system as a user, and what their failures mean to a client.

Every command gets a fresh certificate from the certificator (its
force-command is the command, prefixed with a trace id and a time limit) and
travels over SSH as the certificate text. Failures are turned into the
errors and headers FirecREST v1 answers with.
"""

from __future__ import annotations

import datetime
import logging
import shlex
import time
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from firecrest_testbuild.common.certificates import issue_identity
from firecrest_testbuild.common.sshexec import (
    CommandTimeout,
    LoginRefused,
    Output,
    SshTarget,
    Unreachable,
    execute,
)
from firecrest_testbuild.stack import errors
from firecrest_testbuild.stack.config import StackConfig, System
from firecrest_testbuild.stack.errors import ApiError

TIMED_OUT = 124  # `timeout`'s exit status
REFUSED_BY_WRAPPER = 118

log = logging.getLogger("stack.commands")


@dataclass(frozen=True)
class Shell:
    """Runs commands on systems for users (the certificator + SSH)."""

    ca: ed25519.Ed25519PrivateKey
    certificate_lifetime: datetime.timedelta
    connect_timeout: float

    def run(
        self,
        user: str,
        system: System,
        command: str,
        time_limit: int,
        stdin: bytes = b"",
        trace: str | None = None,
    ) -> Output:
        """Run `command` (already quoted) with `timeout time_limit`; raise on SSH failures."""
        trace = trace or uuid.uuid4().hex[:16]
        line = f"ID={trace} timeout {time_limit} {command}"
        identity = issue_identity(self.ca, user, line, self.certificate_lifetime)
        target = SshTarget(system.host, system.port, system.host_key, self.connect_timeout)
        started = time.monotonic()
        try:
            output = execute(
                target, user, identity.pkey, identity.certificate, stdin, time_limit + 10
            )
        except Unreachable as error:
            raise ApiError(
                400,
                f"Machine {system.name} is not available: {error}",
                errors.MACHINE_NOT_AVAILABLE,
            ) from error
        except LoginRefused as error:
            raise ApiError(400, errors.PERMISSION_DENIED_TEXT, errors.PERMISSION_DENIED) from error
        except CommandTimeout as error:
            raise ApiError(
                400, "Command has finished with timeout signal", errors.TIMEOUT
            ) from error
        log.info(
            "ran on %s as %s: %s",
            system.name,
            user,
            command,
            extra={
                "task_id": trace,
                "exit_status": output.exit_status,
                "ms": round((time.monotonic() - started) * 1000, 1),
            },
        )
        if output.exit_status == REFUSED_BY_WRAPPER:
            raise ApiError(
                400,
                f"Command execution is not allowed in machine {system.name}: "
                f"{output.stderr.strip()}",
                errors.ERROR,
            )
        if output.exit_status == TIMED_OUT:
            raise ApiError(400, "Command has finished with timeout signal", errors.TIMEOUT)
        return output


@dataclass(frozen=True)
class Runner:
    """The commands of one task, run as its user on its system (traced by the task id)."""

    shell: Shell
    config: StackConfig
    user: str
    system: System
    task_id: str

    def run(
        self, command: str, stdin: bytes = b"", time_limit: int | None = None
    ) -> tuple[bool, str, str]:
        """(succeeded, stdout, stderr) of `command`."""
        output = self.shell.run(
            self.user,
            self.system,
            command,
            time_limit or self.config.limits.compute_timeout,
            stdin,
            trace=self.task_id,
        )
        return output.exit_status == 0, output.text, output.stderr.strip()


def failure(output: Output, path: str, default_header: str = errors.ERROR) -> ApiError:
    """The client error a failed file command stands for (`path`: the path it was given)."""
    message = output.stderr.strip() or output.text.strip() or f"exit status {output.exit_status}"
    lowered = message.lower()
    for needle, header, text in (
        ("permission denied", errors.PERMISSION_DENIED, errors.PERMISSION_DENIED_TEXT),
        ("operation not permitted", errors.PERMISSION_DENIED, errors.PERMISSION_DENIED_TEXT),
        ("not a directory", errors.NOT_A_DIRECTORY, f"{path} is not a directory"),
        ("is a directory", errors.A_DIRECTORY, f"{path} is a directory"),
        ("file exists", errors.EXISTS, f"{path} already exists"),
        ("directory not empty", errors.EXISTS, f"{path} already exists and is not empty"),
        ("no such file or directory", errors.INVALID_PATH, f"{path} is an invalid path"),
    ):
        if needle in lowered:
            return ApiError(400, text, header, detail=message)
    return ApiError(400, message, default_header, detail=message)


# The user's ids and names, one per line: uid, user, gid, group, gids, group names.
IDENTITY_COMMAND = "id -u && id -un && id -g && id -gn && id -G && id -Gn"


def parse_identity(text: str) -> dict[str, Any]:
    """IDENTITY_COMMAND's output as user, group and groups, each `{"id", "name"}`."""
    uid, user, gid, group, gids, names = text.splitlines()[:6]
    return {
        "user": {"id": uid, "name": user},
        "group": {"id": gid, "name": group},
        "groups": [{"id": i, "name": n} for i, n in zip(gids.split(), names.split(), strict=True)],
    }


def quote(*words: str) -> str:
    return " ".join(shlex.quote(word) for word in words)


@dataclass(frozen=True)
class PathState:
    """What a user can do with a path on a system."""

    kind: str | None  # "directory", "regular file", ...; None: missing or out of reach
    readable: bool
    writable: bool
    denied: bool  # the path could not even be looked at


def probe(shell: Shell, user: str, system: System, path: str, time_limit: int) -> PathState:
    """One command: the path's type, and whether the user may read and write it."""
    quoted = quote(path)
    output = shell.run(
        user,
        system,
        f"stat -c %F -- {quoted}; test -r {quoted} && echo readable;"
        f" test -w {quoted} && echo writable; true",
        time_limit,
    )
    lines = output.text.splitlines()
    kind = lines[0] if lines and lines[0] not in ("readable", "writable") else None
    return PathState(
        kind=kind,
        readable="readable" in lines,
        writable="writable" in lines,
        denied="permission denied" in output.stderr.lower(),
    )
