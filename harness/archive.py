"""In-memory tar archives, for build contexts and files copied into and out of
containers."""

from __future__ import annotations

import io
import tarfile

from docker.models.containers import Container

# Relative path -> (content, file mode).
Files = dict[str, tuple[bytes, int]]


def pack(files: Files) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, (data, mode) in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def file_in(container: Container, path: str) -> bytes:
    """The content of the file at `path` in `container` (running or not),
    copied out through the engine's archive API. FileNotFoundError when
    the archive holds no regular file; docker's NotFound when there is
    nothing at `path`."""
    stream, _ = container.get_archive(path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as opened:
        first = opened.next()  # for a folder, the folder itself
        extracted = opened.extractfile(first) if first is not None and first.isfile() else None
        if extracted is None:
            raise FileNotFoundError(f"{path} is not a regular file")
        return extracted.read()
