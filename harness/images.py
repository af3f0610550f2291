"""Images without a registry: the Debian base and each images/<name>/ folder.

The base OS image is pulled when a registry answers and otherwise built once
from Debian's archive with debootstrap and imported. Every other image is
built from its folder plus the extra CA certificates the config names, and
tagged with a hash of all its inputs, so an unchanged image is never rebuilt.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import os
import shutil
import subprocess
import tempfile
import urllib.request
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import APIError, BuildError, ImageNotFound
from docker.models.images import Image

from firecrest_testbuild.harness.archive import Files, pack
from firecrest_testbuild.harness.config import Images
from firecrest_testbuild.harness.errors import TestbuildError
from firecrest_testbuild.harness.paths import IMAGES, PACKAGE
from firecrest_testbuild.harness.progress import Progress

REPOSITORY_PREFIX = "testbuild"
INPUTS_LABEL = "org.testbuild.inputs"
KEEP_RECENT_BUILDS = datetime.timedelta(hours=1)
Context = Files
BASE_ENVIRONMENT = [
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["/bin/bash"]',
]


@dataclass(frozen=True)
class Download:
    """A file fetched on the host (and cached) into the build context."""

    url: str
    context_path: str
    sha1_url: str  # the checksum published beside it (Maven Central has .sha1 files)


@dataclass(frozen=True)
class ContextFile:
    """A file of the host put into a build context, and the error when it is
    not there: whose file it is, what is wrong, and the fix (the config key)."""

    context_path: str
    path: Path
    owner: str
    missing: str
    fix: str


@dataclass(frozen=True)
class ImageSpec:
    """An image built from images/<folder>/ on top of a Debian release, or one
    the engine already has (`existing`, e.g. a hosted implementation's)."""

    folder: str
    debian_release: str
    build_args: tuple[tuple[str, str], ...] = ()
    downloads: tuple[Download, ...] = ()
    # Packages of firecrest_testbuild copied into the context (src/firecrest_testbuild/<name>).
    sources: tuple[str, ...] = ()
    # The image's name when it is not the folder's (another Debian release or
    # other build arguments of the same folder).
    name: str = ""
    files: tuple[ContextFile, ...] = ()  # more files of the context, from the host
    # An image reference the engine has (never built nor removed here), and
    # what to tell the user when it has not.
    existing: str = ""
    existing_missing: str = ""

    @property
    def repository(self) -> str:
        return self.existing or f"{REPOSITORY_PREFIX}/{self.name or self.folder}"

    @property
    def latest(self) -> str:
        """The reference of its newest build (commands that only read an environment)."""
        return self.existing or f"{self.repository}:latest"


def base_tag(release: str) -> str:
    return f"{REPOSITORY_PREFIX}/debian:{release}"


class ImageBuilder:
    """Builds (or finds) the images an environment needs."""

    def __init__(
        self,
        client: docker.DockerClient,
        settings: Images,
        progress: Progress,
        use_cache: bool = True,
    ):
        self.client = client
        self.settings = settings
        self.progress = progress
        self.use_cache = use_cache  # False: rebuild every layer (benchmarks)

    def ensure(self, spec: ImageSpec) -> str:
        """The tag of an up-to-date image for `spec`, building it if needed."""
        if spec.existing:
            return self._existing(spec)
        base = self.ensure_base(spec.debian_release)
        context = self._context_files(spec)
        base_id: str = self.client.images.get(base).attrs["Id"]
        inputs = _inputs_hash(context, base_id, spec.build_args)
        tag = f"{spec.repository}:{inputs[:12]}"
        if self.use_cache and self._exists(tag):
            self.progress.detail(f"{tag}: up to date")
        else:
            self._build(spec, context, base, tag, inputs)
            self._remove_older_builds(spec, keep=tag)
        self.client.images.get(tag).tag(spec.repository, "latest")
        return tag

    def _remove_older_builds(self, spec: ImageSpec, keep: str) -> None:
        """Older input-hash tags of this image, unless a container still uses them
        or they are recent: another checkout on this machine (another branch)
        may just have built one for an environment it is about to start."""
        for image in self.client.images.list(name=spec.repository):
            if INPUTS_LABEL not in (image.labels or {}) or _age(image) < KEEP_RECENT_BUILDS:
                continue
            for old in image.tags:
                if old != keep:
                    # A container (of another environment) still using it keeps it.
                    with contextlib.suppress(APIError):
                        self.client.images.remove(old)

    def _existing(self, spec: ImageSpec) -> str:
        if not self._exists(spec.existing):
            raise TestbuildError(
                "images",
                f"the engine has no image '{spec.existing}' ({spec.existing_missing})",
                fix=f"build or load it first (docker build -t {spec.existing} ..., docker load),"
                " or name one that 'docker images' lists",
            )
        self.progress.detail(f"{spec.existing}: present")
        return spec.existing

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
            path.relative_to(folder).as_posix(): (path.read_bytes(), _normal_mode(path))
            for path in sorted(folder.rglob("*"))
            if _is_input(path)
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
        for download in spec.downloads:
            files[download.context_path] = (self._fetch(download).read_bytes(), 0o644)
        for source in spec.sources:
            files.update(_source_files(source))
        for extra in spec.files:
            if not extra.path.is_file():
                raise TestbuildError(extra.owner, extra.missing, fix=extra.fix)
            files[extra.context_path] = (extra.path.read_bytes(), 0o644)
        return files

    def _fetch(self, download: Download) -> Path:
        """The cached file, downloaded and checked against its SHA-1 on first use."""
        cached = cache_folder() / download.url.rsplit("/", 1)[-1]
        if cached.is_file():
            return cached
        cached.parent.mkdir(parents=True, exist_ok=True)
        self.progress.detail(f"downloading {download.url}")
        partial = cached.with_suffix(cached.suffix + ".part")
        try:
            expected = _read_url(download.sha1_url).decode().split()[0].lower()
            actual = self._download(download.url, partial)
        except OSError as error:
            raise TestbuildError(
                "images",
                f"cannot download {download.url}: {error}",
                fix="check the network; behind a TLS proxy, its CA must be in the host trust store",
            ) from error
        if actual != expected:
            partial.unlink(missing_ok=True)
            raise TestbuildError(
                "images",
                f"{download.url} does not match its published SHA-1 ({expected})",
                fix="run the command again; if it persists the download is being altered",
            )
        partial.rename(cached)
        return cached

    def _download(self, url: str, target: Path) -> str:
        """Stream `url` into `target` with progress; returns its SHA-1."""
        digest = hashlib.sha1()
        with urllib.request.urlopen(url, timeout=60) as response, target.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            done, tenths = 0, 0
            while chunk := response.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if total and done * 10 // total > tenths:
                    tenths = done * 10 // total
                    self.progress.detail(f"  {done >> 20} of {total >> 20} MiB")
        return digest.hexdigest()

    def _build(self, spec: ImageSpec, context: Context, base: str, tag: str, inputs: str) -> None:
        self.progress.detail(f"building {tag}")
        tail: deque[str] = deque(maxlen=40)
        try:
            for chunk in self.client.api.build(
                fileobj=io.BytesIO(pack(context)),
                custom_context=True,
                tag=tag,
                buildargs={"BASE_IMAGE": base, **dict(spec.build_args)},
                labels={INPUTS_LABEL: inputs},
                rm=True,
                forcerm=True,
                nocache=not self.use_cache,
                decode=True,
            ):
                if "error" in chunk:
                    raise BuildError(chunk["error"], build_log=iter([]))
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


def _is_input(path: Path) -> bool:
    """A file of the build context: not bytecode the host's Python left beside
    a script (running the tests writes it), nor a program compiled on the host
    (`go build` in the command wrapper's folder), which would change the
    image's inputs and could ship a host build; nor the wrapper's Go tests,
    which run on the host."""
    return (
        path.is_file()
        and "__pycache__" not in path.parts
        and "testdata" not in path.parts
        and not path.name.endswith("_test.go")
        and not _is_compiled(path)
    )


def _is_compiled(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"\x7fELF"


def _source_files(package: str) -> Context:
    """A Python package of the testbuild (no caches) as context files under
    src/firecrest_testbuild/, the import name the image runs it by."""
    root = PACKAGE / package
    if not root.is_dir():
        raise TestbuildError("images", f"{root} does not exist")
    files: Context = {
        f"src/firecrest_testbuild/{package}/{path.relative_to(root).as_posix()}": (
            path.read_bytes(),
            0o644,
        )
        for path in sorted(root.rglob("*"))
        if _is_input(path)
    }
    files["src/firecrest_testbuild/__init__.py"] = ((PACKAGE / "__init__.py").read_bytes(), 0o644)
    return files


def _age(image: Image) -> datetime.timedelta:
    """How long ago the engine made `image` (its Created time, RFC 3339)."""
    created = datetime.datetime.fromisoformat(str(image.attrs["Created"])[:26].rstrip("Z"))
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - created


def _normal_mode(path: Path) -> int:
    """0755 or 0644: an image's inputs hash the same whatever the umask of the
    checkout or of the pip install that put the files here."""
    return 0o755 if path.stat().st_mode & 0o111 else 0o644


def _inputs_hash(
    context: Context, base_id: str, build_args: tuple[tuple[str, str], ...] = ()
) -> str:
    digest = hashlib.sha256(f"{base_id}\0{sorted(build_args)}".encode())
    for name, (data, mode) in sorted(context.items()):
        digest.update(f"{name}\0{mode:o}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def cache_folder() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "testbuild" / "downloads"


def _read_url(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        body: bytes = response.read()
    return body


def _first_line(error: Exception) -> str:
    text = str(getattr(error, "explanation", None) or error)
    return text.splitlines()[0][:200] if text else type(error).__name__
