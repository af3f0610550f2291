"""Images without a registry: the Debian base and each images/<name>/ folder.

The base OS image is pulled when a registry answers and otherwise built once
from Debian's archive with debootstrap and imported. Every other image is
built from its folder plus the extra CA certificates the config names, and
tagged with a hash of all its inputs, so an unchanged image is never rebuilt.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import APIError, BuildError, ImageNotFound

from harness.archive import Files, pack
from harness.config import Images
from harness.errors import TestbuildError
from harness.paths import IMAGES
from harness.progress import Progress

REPOSITORY_PREFIX = "testbuild"
INPUTS_LABEL = "org.testbuild.inputs"
Context = Files
BASE_ENVIRONMENT = [
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["/bin/bash"]',
]


@dataclass(frozen=True)
class ImageSpec:
    """An image built from images/<folder>/ on top of a Debian release."""

    folder: str
    debian_release: str

    @property
    def repository(self) -> str:
        return f"{REPOSITORY_PREFIX}/{self.folder}"


def base_tag(release: str) -> str:
    return f"{REPOSITORY_PREFIX}/debian:{release}"


class ImageBuilder:
    """Builds (or finds) the images an environment needs."""

    def __init__(self, client: docker.DockerClient, settings: Images, progress: Progress):
        self.client = client
        self.settings = settings
        self.progress = progress

    def ensure(self, spec: ImageSpec) -> str:
        """The tag of an up-to-date image for `spec`, building it if needed."""
        base = self.ensure_base(spec.debian_release)
        context = self._context_files(spec)
        inputs = _inputs_hash(context, base_id=self.client.images.get(base).id)
        tag = f"{spec.repository}:{inputs[:12]}"
        if self._exists(tag):
            self.progress.detail(f"{tag}: up to date")
        else:
            self._build(spec, context, base, tag, inputs)
        self.client.images.get(tag).tag(spec.repository, "latest")
        return tag

    def ensure_base(self, release: str) -> str:
        tag = base_tag(release)
        if self._exists(tag):
            return tag
        if self._pull_official(release, tag):
            return tag
        self._debootstrap(release, tag)
        return tag

    def _exists(self, tag: str) -> bool:
        try:
            self.client.images.get(tag)
        except ImageNotFound:
            return False
        return True

    def _pull_official(self, release: str, tag: str) -> bool:
        official = f"debian:{release}-slim"
        try:
            image = self.client.images.pull(official)
        except APIError as error:
            self.progress.detail(f"cannot pull {official} ({_first_line(error)}): building it")
            return False
        image.tag(tag)
        self.progress.detail(f"pulled {official} as {tag}")
        return True

    def _debootstrap(self, release: str, tag: str) -> None:
        if shutil.which("debootstrap") is None or os.geteuid() != 0:
            raise TestbuildError(
                "images",
                f"no registry serves debian:{release}-slim and the base cannot be built here",
                fix="run as root with debootstrap installed ('make engine' installs it),"
                f" or load an image tagged {tag} into the engine",
            )
        self.progress.detail(f"building {tag} from {self.settings.debian_mirror} (debootstrap)")
        with tempfile.TemporaryDirectory(prefix="testbuild-rootfs-") as workdir:
            root = Path(workdir) / "rootfs"
            self._run_debootstrap(release, root)
            for leftover in (
                *root.glob("var/cache/apt/archives/*.deb"),
                *root.glob("var/lib/apt/lists/*_*"),
            ):
                leftover.unlink()
            with subprocess.Popen(
                ["tar", "--numeric-owner", "-C", str(root), "-c", "."], stdout=subprocess.PIPE
            ) as tar:
                self.client.api.import_image_from_stream(
                    tar.stdout, repository=tag.split(":")[0], tag=release, changes=BASE_ENVIRONMENT
                )
        self.progress.detail(f"imported {tag}")

    def _run_debootstrap(self, release: str, root: Path) -> None:
        command = [
            "debootstrap",
            "--variant=minbase",
            release,
            str(root),
            self.settings.debian_mirror,
        ]
        tail: deque[str] = deque(maxlen=20)
        phase = ""
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as process:
            assert process.stdout is not None
            for line in process.stdout:
                tail.append(line.rstrip())
                words = line.split()
                if len(words) > 1 and words[0] == "I:" and words[1] != phase:
                    phase = words[1]
                    self.progress.detail(f"debootstrap: {line.strip()[3:]}")
        if process.returncode != 0:
            raise TestbuildError(
                "images",
                f"debootstrap {release} failed with status {process.returncode}",
                details=list(tail),
                fix="check that the Debian mirror in images.debianMirror answers",
            )

    def _context_files(self, spec: ImageSpec) -> Context:
        folder = IMAGES / spec.folder
        if not (folder / "Dockerfile").is_file():
            raise TestbuildError("images", f"{folder}/Dockerfile does not exist")
        files: Context = {
            path.relative_to(folder).as_posix(): (path.read_bytes(), path.stat().st_mode & 0o777)
            for path in sorted(folder.rglob("*"))
            if path.is_file()
        }
        for certificate in self.settings.ca_certificate_files():
            if not certificate.is_file():
                raise TestbuildError(
                    "config",
                    f"images.caCertificates names {certificate}, which is not a file",
                    fix="list existing certificate files, or use 'auto' or 'none'",
                )
            files[f"ca-certificates/{certificate.stem}.crt"] = (certificate.read_bytes(), 0o644)
        files.setdefault("ca-certificates/.keep", (b"", 0o644))
        return files

    def _build(self, spec: ImageSpec, context: Context, base: str, tag: str, inputs: str) -> None:
        self.progress.detail(f"building {tag}")
        tail: deque[str] = deque(maxlen=40)
        try:
            for chunk in self.client.api.build(
                fileobj=io.BytesIO(pack(context)),
                custom_context=True,
                tag=tag,
                buildargs={"BASE_IMAGE": base},
                labels={INPUTS_LABEL: inputs},
                rm=True,
                forcerm=True,
                decode=True,
            ):
                if "error" in chunk:
                    raise BuildError(chunk["error"], build_log=[])
                for line in chunk.get("stream", "").splitlines():
                    tail.append(line)
                    if line.startswith("Step "):
                        self.progress.detail(line[:110])
        except (BuildError, APIError) as error:
            raise TestbuildError(
                "images",
                f"building images/{spec.folder} failed: {_first_line(error)}",
                details=["last build output:", *tail],
                fix="read the build output above; behind a TLS proxy check images.caCertificates",
            ) from error


def _inputs_hash(context: Context, base_id: str) -> str:
    digest = hashlib.sha256(base_id.encode())
    for name, (data, mode) in sorted(context.items()):
        digest.update(f"{name}\0{mode:o}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def _first_line(error: Exception) -> str:
    text = str(getattr(error, "explanation", None) or error)
    return text.splitlines()[0][:200] if text else type(error).__name__
