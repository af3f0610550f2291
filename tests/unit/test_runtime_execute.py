"""run_in: a command's output and exit code, also when the exec's attached
stream loses the output, as a loaded Docker 20.10 now and then does; and
file_in, which copies a file out of a container."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from docker.errors import NotFound
from docker.models.containers import ExecResult

from firecrest_testbuild.harness.archive import file_in, pack
from firecrest_testbuild.harness.runtime import EXEC_OUTPUT, Executed, run_in


class HostContainer:
    """A "container" whose /tmp is a folder of the test; `lossy`: its attached
    stream loses every output."""

    def __init__(self, root: Path, lossy: bool) -> None:
        self.root = root
        self.lossy = lossy
        self.archives_read = 0

    def local(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def exec_run(self, command: Sequence[str]) -> ExecResult:
        shell, script, output, program = command[:2], command[2], command[3], command[4:]
        script = script.replace("/tmp", str(self.local("/tmp")))
        ran = subprocess.run(
            [*shell, script, str(self.local(output)), *program], capture_output=True
        )
        streamed = b"" if self.lossy else ran.stdout.replace(str(self.root).encode(), b"")
        return ExecResult(ran.returncode, streamed)

    def get_archive(self, path: str) -> tuple[Iterator[bytes], dict[str, Any]]:
        self.archives_read += 1
        local = self.local(path)
        if not local.exists():
            raise NotFound(f"Could not find the file {path} in container")
        return iter([pack({local.name: (local.read_bytes(), 0o644)})]), {}


def container(tmp_path: Path, lossy: bool) -> HostContainer:
    (tmp_path / "tmp").mkdir()
    return HostContainer(tmp_path, lossy)


@pytest.mark.parametrize("lossy", [False, True])
def test_the_output_of_both_streams_and_the_exit_code(tmp_path: Path, lossy: bool):
    inside = container(tmp_path, lossy)
    command = ["sh", "-c", "echo out; echo err >&2; printf 'no newline'; exit 3"]
    executed = run_in(inside, command)  # type: ignore[arg-type]
    assert executed == Executed(3, "out\nerr\nno newline")
    # The archive is read only when the stream lost the output.
    assert inside.archives_read == int(lossy)


def test_a_command_that_cannot_start_says_why(tmp_path: Path):
    executed = run_in(container(tmp_path, lossy=False), ["/no/such/program"])  # type: ignore[arg-type]
    assert executed.exit_code == 127
    assert "/no/such/program" in executed.output


def test_output_files_of_earlier_calls_are_removed_after_a_few_minutes(tmp_path: Path):
    inside = container(tmp_path, lossy=False)
    old = inside.local(f"{EXEC_OUTPUT}old")
    old.write_text("long read")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    run_in(inside, ["true"])  # type: ignore[arg-type]
    left = sorted(path.name for path in inside.local("/tmp").iterdir())
    assert len(left) == 1 and left[0] != old.name


class ArchiveOnly:
    """A container whose archive API answers `archive` for any path."""

    def __init__(self, archive: bytes) -> None:
        self.archive = archive

    def get_archive(self, path: str) -> tuple[Iterator[bytes], dict[str, Any]]:
        return iter([self.archive]), {}


def test_file_in_copies_a_file_and_refuses_a_folder():
    assert file_in(ArchiveOnly(pack({"minio": (b"\x7fELF", 0o755)})), "/out/minio") == b"\x7fELF"  # type: ignore[arg-type]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as folder:
        info = tarfile.TarInfo("out")
        info.type = tarfile.DIRTYPE
        folder.addfile(info)
        inside = tarfile.TarInfo("out/minio")
        inside.size = 4
        folder.addfile(inside, io.BytesIO(b"\x7fELF"))
    with pytest.raises(FileNotFoundError, match="/out is not a regular file"):
        file_in(ArchiveOnly(buffer.getvalue()), "/out")  # type: ignore[arg-type]
