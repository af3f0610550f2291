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
