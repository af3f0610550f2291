"""In-memory tar archives, for build contexts and files copied into containers."""

from __future__ import annotations

import io
import tarfile

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


def single_file(archive: bytes) -> bytes:
    """The content of the one regular file in a tar archive (what the engine's
    archive API answers for a file's path)."""
    with tarfile.open(fileobj=io.BytesIO(archive)) as opened:
        member = next((m for m in opened.getmembers() if m.isfile()), None)
        extracted = opened.extractfile(member) if member is not None else None
        if extracted is None:
            raise ValueError("the archive holds no regular file")
        return extracted.read()
