"""run_in: a command's output is read from the file it was written to, not
from the exec's attached stream, which a loaded Docker 20.10 now and then
ends before the output is copied."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from docker.errors import NotFound
from docker.models.containers import ExecResult

from firecrest_testbuild.harness.archive import pack
from firecrest_testbuild.harness.runtime import Executed, run_in


class LossyContainer:
    """A container on the host's file system whose attached streams lose
    every output, as the engine's did under load."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.removed: list[str] = []

    def exec_run(self, command: Sequence[str], detach: bool = False) -> ExecResult:
        if command[0] == "rm":
            self.removed.extend(command[2:])
            return ExecResult(None, b"")
        shell, output, program = list(command[:3]), command[3], list(command[4:])
        # The wrapper itself runs, with the output file moved under root.
        local = str(self.root / output.lstrip("/"))
        ran = subprocess.run([*shell, local, *program], capture_output=True)
        return ExecResult(ran.returncode, b"")

    def get_archive(self, path: str) -> tuple[Iterator[bytes], dict[str, Any]]:
        local = self.root / path.lstrip("/")
        if not local.exists():
            raise NotFound(f"Could not find the file {path} in container")
        return iter([pack({local.name: (local.read_bytes(), 0o644)})]), {}


def run(tmp_path: Path, command: list[str]) -> tuple[Executed, LossyContainer]:
    (tmp_path / "tmp").mkdir()
    container = LossyContainer(tmp_path)
    return run_in(container, command), container  # type: ignore[arg-type]


def test_the_output_of_both_streams_is_read_from_the_file(tmp_path: Path):
    executed, container = run(tmp_path, ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert executed == Executed(3, "out\nerr\n")
    [removed] = container.removed
    assert removed.startswith("/tmp/testbuild-exec-")


def test_a_command_that_cannot_start_reports_its_exit_code(tmp_path: Path):
    executed, _ = run(tmp_path, ["/no/such/program"])
    assert executed.exit_code == 127
    assert "/no/such/program" in executed.output
