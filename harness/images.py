"""Images without a registry: the Debian base and each images/<name>/ folder.

The base OS image is pulled when a registry answers and otherwise built once
from Debian's archive with debootstrap and imported. Every other image is
built from its folder plus the extra CA certificates the config names, and
tagged with a hash of all its inputs, so an unchanged image is never rebuilt.
What is slow to make and depends on few inputs (downloads, a compiled binary:
`Artefact`) is kept in the user cache, which `make clean` leaves, so that a
rebuild after it takes seconds where the first build took minutes. Independent
images are built concurrently (`ImageBuilder.ensure_all`).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import APIError, BuildError, ImageNotFound
from docker.models.images import Image

from firecrest_testbuild.harness.archive import Files, file_in, pack
from firecrest_testbuild.harness.config import Images
from firecrest_testbuild.harness.errors import TestbuildError
from firecrest_testbuild.harness.paths import IMAGES, PACKAGE
from firecrest_testbuild.harness.progress import Progress

REPOSITORY_PREFIX = "testbuild"
INPUTS_LABEL = "org.testbuild.inputs"
KEEP_RECENT_BUILDS = datetime.timedelta(hours=1)
# Builds at once: enough to overlap a CPU-bound compile with the builds that
# wait on apt, debootstrap or downloads, without more than 2 cores can use.
BUILD_WORKERS = 3
ELF_MAGIC = b"\x7fELF"
STOPPED = "stopped: another image failed to build"
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
class Artefact:
    """An executable compiled by its own build folder (images/<folder>/, on
    the image's Debian release) and kept in the user cache, keyed by that
    folder's files, the build arguments and the release (not the base image's
    id, which every debootstrap changes). The image's build context gets it
    at `context_path`, so its bytes are an input of the image's tag."""

    name: str
    folder: str
    path: str  # where the build leaves it in its image
    context_path: str


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
    artefacts: tuple[Artefact, ...] = ()

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
        # False: rebuild every layer and compile every artefact again (benchmarks).
        self.use_cache = use_cache
        # One Debian base or artefact is made once even when several images
        # being built at the same time need it.
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._failed = threading.Event()  # one build failed: the others stop
        self._print_lock = threading.Lock()

    def ensure_all(self, groups: Sequence[Sequence[ImageSpec]]) -> dict[str, str]:
        """The tags of up-to-date images for every spec: the specs of a group
        concurrently, the groups one after the other (hosted implementations
        last, as one may run an image another builds). The first failure
        stops the other builds and is raised naming its image."""
        tags: dict[str, str] = {}
        for group in groups:
            tags.update(self._ensure_group(group))
        return tags

    def _ensure_group(self, group: Sequence[ImageSpec]) -> dict[str, str]:
        pending: queue.SimpleQueue[ImageSpec] = queue.SimpleQueue()
        for spec in group:
            pending.put(spec)
        tags: dict[str, str] = {}
        errors: list[BaseException] = []
        finished: queue.SimpleQueue[None] = queue.SimpleQueue()

        def work() -> None:
            try:
                while not self._failed.is_set():
                    try:
                        spec = pending.get_nowait()
                    except queue.Empty:
                        return
                    tags[spec.repository] = self._named_ensure(spec)
            except BaseException as error:  # handed to the caller's thread
                errors.append(error)
                self._failed.set()
            finally:
                finished.put(None)

        # Daemon threads: a failed or interrupted (Ctrl-C) run returns without
        # waiting for the builds still running (a compile prints nothing for
        # minutes); they stop at their next output, or with the process, whose
        # closed connections make the engine cancel them.
        workers = min(BUILD_WORKERS, len(group))
        for number in range(workers):
            threading.Thread(target=work, name=f"image-{number}", daemon=True).start()
        for _ in range(workers):
            finished.get()
            if errors:
                raise errors[0]
        return tags

    def _named_ensure(self, spec: ImageSpec) -> str:
        """ensure(spec), its error naming the image (builds run side by side)."""
        try:
            return self.ensure(spec)
        except TestbuildError as error:
            if not error.message.startswith(spec.repository):
                error.message = f"{spec.repository}: {error.message}"
            raise

    def ensure(self, spec: ImageSpec) -> str:
        """The tag of an up-to-date image for `spec`, building it if needed."""
        if spec.existing:
            return self._existing(spec)
        base = self.ensure_base(spec.debian_release)
        context = self._context_files(spec)
        base_id: str = self.client.images.get(base).attrs["Id"]
        # An image whose artefacts and downloads the cache holds is found from
        # their stored digests: reading and hashing a 100 MB binary or
        # Keycloak's 170 MB zip is work for a build only.
        downloads = {d.context_path: self._download_digest(d) for d in spec.downloads}
        stored = self._stored_digests(spec) if self.use_cache else None
        if stored is not None:
            tag, inputs = _tagged(spec, context, base_id, stored | downloads)
            if self._exists(tag):
                return self._up_to_date(spec, tag)
        artefacts = {a.context_path: self._artefact(spec, a) for a in spec.artefacts}
        if artefacts or stored is None:
            digests = {path: digest for path, (_, digest) in artefacts.items()}
            tag, inputs = _tagged(spec, context, base_id, digests | downloads)
            if self.use_cache and self._exists(tag):
                return self._up_to_date(spec, tag)
        context |= {path: (data, 0o755) for path, (data, _) in artefacts.items()}
        context |= {d.context_path: (self._download_bytes(d), 0o644) for d in spec.downloads}
        started = time.monotonic()
        self._build(spec, context, base, tag, inputs)
        self._say(f"{tag}: built in {time.monotonic() - started:.1f}s")
        self._remove_older_builds(spec, keep=tag)
        self.client.images.get(tag).tag(spec.repository, "latest")
        return tag

    def _up_to_date(self, spec: ImageSpec, tag: str) -> str:
        self._say(f"{tag}: up to date")
        self.client.images.get(tag).tag(spec.repository, "latest")
        return tag

    def _artefact_entry(self, spec: ImageSpec, artefact: Artefact) -> tuple[Path, Context]:
        """Where the cache keeps `artefact` for its build's inputs, and that build's context."""
        build_context = self._context_files(_artefact_spec(spec, artefact))
        key = artefact_key(build_context, spec)
        entry = artefact_folder() / f"{artefact.name}-{key[:16]}"
        return entry / Path(artefact.path).name, build_context

    def _stored_digests(self, spec: ImageSpec) -> dict[str, str] | None:
        """The SHA-256 the cache stored with each of the image's artefacts, by
        context path; None when one has no complete entry."""
        digests = {}
        for artefact in spec.artefacts:
            cached, _ = self._artefact_entry(spec, artefact)
            digest = _stored_digest(cached)
            if digest is None:
                return None
            digests[artefact.context_path] = digest
        return digests

    def _artefact(self, spec: ImageSpec, artefact: Artefact) -> tuple[bytes, str]:
        """The bytes of `artefact` and their SHA-256, from the user cache;
        compiled first when the cache has none for its inputs (or, without the
        cache, every time)."""
        cached, build_context = self._artefact_entry(spec, artefact)
        entry = cached.parent
        with self._lock(f"artefact {entry.name}"):
            if self.use_cache and (found := _cached_artefact(cached)):
                self._say(f"{spec.repository}: cached {artefact.name} used: {cached}")
                return found
            if self.use_cache and entry.exists():
                self._say(f"{spec.repository}: {entry} is incomplete or corrupt: compiling again")
            started = time.monotonic()
            build = _artefact_spec(spec, artefact)
            data = self._compile(spec, artefact, build, build_context)
            digest = _store_artefact(entry, cached.name, data)
            self._say(
                f"{spec.repository}: {artefact.name} compiled in"
                f" {time.monotonic() - started:.0f}s, cached in {cached}"
            )
            return data, digest

    def _compile(
        self, spec: ImageSpec, artefact: Artefact, build: ImageSpec, context: Context
    ) -> bytes:
        """Builds the artefact's folder and copies the file out of its image,
        which is removed then (its toolchain and module cache are large)."""
        self._say(f"{spec.repository}: compiling {artefact.name} (images/{artefact.folder})")
        image = self._build(build, context, self.ensure_base(spec.debian_release), None, "")
        container = self.client.containers.create(image)
        try:
            data = file_in(container, artefact.path)
        except FileNotFoundError:
            raise TestbuildError("images", f"the build left no file at {artefact.path}") from None
        finally:
            container.remove(force=True)
            with contextlib.suppress(APIError):
                self.client.images.remove(image)
        if not data.startswith(ELF_MAGIC):
            raise TestbuildError(
                "images",
                f"images/{artefact.folder} left {artefact.path}, which is not an executable",
                fix=f"check the last step of images/{artefact.folder}/Dockerfile",
            )
        return data

    @contextlib.contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        with self._locks_guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            yield

    def _say(self, text: str) -> None:
        # Lines of concurrent builds stay whole, each naming its image.
        with self._print_lock:
            self.progress.detail(text)

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
        self._say(f"{spec.existing}: present")
        return spec.existing

    def ensure_base(self, release: str) -> str:
        tag = base_tag(release)
        with self._lock(tag):
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
            self._say(f"cannot pull {official} ({_first_line(error)}): building it")
            return False
        image.tag(tag)
        self._say(f"pulled {official} as {tag}")
        return True

    def _debootstrap(self, release: str, tag: str) -> None:
        """Imports the release's root file system, made with debootstrap the
        first time and kept in the user cache (keyed by release and mirror)."""
        rootfs = rootfs_tarball(release, self.settings.debian_mirror)
        if self.use_cache and rootfs.is_file():
            made = datetime.datetime.fromtimestamp(rootfs.stat().st_mtime, datetime.UTC)
            self._say(
                f"{tag}: cached root file system used: {rootfs} (made {made:%Y-%m-%d};"
                " delete it to debootstrap again)"
            )
        else:
            self._make_rootfs(release, tag, rootfs)
        with rootfs.open("rb") as tarball:
            # In chunks, as the engine expects (a file object would be sent
            # whole, not in the chunked encoding the request announces).
            self.client.api.import_image_from_stream(
                iter(lambda: tarball.read(1 << 20), b""),
                repository=tag.split(":")[0],
                tag=release,
                changes=BASE_ENVIRONMENT,
            )
        self._say(f"imported {tag}")

    def _make_rootfs(self, release: str, tag: str, rootfs: Path) -> None:
        if shutil.which("debootstrap") is None or os.geteuid() != 0:
            raise TestbuildError(
                "images",
                f"no registry serves debian:{release}-slim and the base cannot be built here",
                fix="run as root with debootstrap installed ('make engine' installs it),"
                f" or load an image tagged {tag} into the engine",
            )
        self._say(f"building {tag} from {self.settings.debian_mirror} (debootstrap)")
        rootfs.parent.mkdir(parents=True, exist_ok=True)
        # Written beside its place and renamed: an interrupted run leaves no tarball.
        partial = rootfs.with_name(f".{rootfs.name}.{os.getpid()}.part")
        with tempfile.TemporaryDirectory(prefix="testbuild-rootfs-") as workdir:
            root = Path(workdir) / "rootfs"
            self._run_debootstrap(release, root)
            for leftover in (
                *root.glob("var/cache/apt/archives/*.deb"),
                *root.glob("var/lib/apt/lists/*_*"),
            ):
                leftover.unlink()
            try:
                subprocess.run(
                    ["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."],
                    check=True,
                    capture_output=True,
                )
            except subprocess.CalledProcessError as error:
                partial.unlink(missing_ok=True)
                raise TestbuildError(
                    "images",
                    f"cannot write {partial}: {error.stderr.decode(errors='replace').strip()}",
                    fix=f"make room in {rootfs.parent}",
                ) from error
        partial.rename(rootfs)

    def _run_debootstrap(self, release: str, root: Path) -> None:
        command = [
            "debootstrap",
            "--variant=minbase",
            release,
            str(root),
            self.settings.debian_mirror,
        ]
        tail: deque[str] = deque(maxlen=20)
        steps = DebootstrapSteps()
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as process:
            assert process.stdout is not None
            for line in process.stdout:
                tail.append(line.rstrip())
                if steps.first_of_a_step(line):
                    self._say(f"{base_tag(release)}: debootstrap: {line.strip()[3:]}")
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
            name: (data, _normal_mode(folder / name)) for name, data in _input_files(folder)
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
        self._say(f"downloading {download.url}")
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
        _digest_file(cached).write_text(actual + "\n")
        return cached

    def _download_digest(self, download: Download) -> str:
        """The SHA-1 of the cached download, checked against the published one
        when it was downloaded and stored beside it then (a cache from before
        the digest was stored gets it now, from the file it trusted already)."""
        cached = self._fetch(download)
        stored = _digest_file(cached)
        if not stored.is_file():
            stored.write_text(_sha1(cached.read_bytes()) + "\n")
        return stored.read_text().strip()

    def _download_bytes(self, download: Download) -> bytes:
        """The cached download's bytes for a build, which must still be what
        was downloaded."""
        cached = self._fetch(download)
        data = cached.read_bytes()
        if _sha1(data) != self._download_digest(download):
            raise TestbuildError(
                "images",
                f"{cached} has changed since it was downloaded from {download.url}",
                fix=f"delete {cached} and {_digest_file(cached)}: the next run downloads it again",
            )
        return data

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
                    self._say(f"  {done >> 20} of {total >> 20} MiB")
        return digest.hexdigest()

    def _build(
        self, spec: ImageSpec, context: Context, base: str, tag: str | None, inputs: str
    ) -> str:
        """Builds `context` (tagged `tag` and labelled with its inputs, or
        neither: an artefact's build); returns the image's id."""
        name = tag or f"images/{spec.folder}"
        self._say(f"building {name}")
        tail: deque[str] = deque(maxlen=40)
        image = ""
        try:
            for chunk in self.client.api.build(
                fileobj=io.BytesIO(pack(context)),
                custom_context=True,
                tag=tag,
                buildargs={"BASE_IMAGE": base, **dict(spec.build_args)},
                labels={INPUTS_LABEL: inputs} if tag else None,
                rm=True,
                forcerm=True,
                nocache=not self.use_cache,
                decode=True,
            ):
                if self._failed.is_set():
                    # Closing the stream makes the engine cancel this build.
                    raise BuildError(STOPPED, build_log=iter([]))
                if "error" in chunk:
                    raise BuildError(chunk["error"], build_log=iter([]))
                image = chunk.get("aux", {}).get("ID", image)
                for line in chunk.get("stream", "").splitlines():
                    tail.append(line)
                    if line.startswith("Step "):
                        self._say(f"{name}: {line[:100]}")
        except (BuildError, APIError) as error:
            raise TestbuildError(
                "images",
                f"building images/{spec.folder} failed: {_first_line(error)}",
                details=["last build output:", *tail],
                fix="read the build output above; behind a TLS proxy check images.caCertificates",
            ) from error
        return image


class DebootstrapSteps:
    """Which lines of debootstrap's output to show: the first of each step
    ("Retrieving", "Extracting", ...), not one per package (it names each
    package twice while downloading: Retrieving, then Validating)."""

    def __init__(self) -> None:
        self.step = ""

    def first_of_a_step(self, line: str) -> bool:
        words = line.split()
        if len(words) < 2 or words[0] != "I:":
            return False
        step = "Retrieving" if words[1] == "Validating" else words[1]
        first, self.step = step != self.step, step
        return first


def _input_files(root: Path) -> Iterator[tuple[str, bytes]]:
    """The files below `root` that go into a build context, by their path
    from it, each read once: not bytecode the host's Python left beside a
    script (running the tests writes it), nor a program compiled on the host
    (`go build` in the command wrapper's folder), which would change the
    image's inputs and could ship a host build; nor the wrapper's Go tests,
    which run on the host."""
    for path in sorted(root.rglob("*")):
        if (
            not path.is_file()
            or {"__pycache__", "testdata"} & set(path.parts)
            or path.name.endswith("_test.go")
        ):
            continue
        data = path.read_bytes()
        if not data.startswith(ELF_MAGIC):
            yield path.relative_to(root).as_posix(), data


def _source_files(package: str) -> Context:
    """A Python package of the testbuild (no caches) as context files under
    src/firecrest_testbuild/, the import name the image runs it by."""
    root = PACKAGE / package
    if not root.is_dir():
        raise TestbuildError("images", f"{root} does not exist")
    files: Context = {
        f"src/firecrest_testbuild/{package}/{name}": (data, 0o644)
        for name, data in _input_files(root)
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


def cache_root() -> Path:
    """The user cache `make clean` keeps (delete it to start from nothing)."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "testbuild"


def cache_folder() -> Path:
    return cache_root() / "downloads"


def artefact_folder() -> Path:
    return cache_root() / "artefacts"


def rootfs_tarball(release: str, mirror: str) -> Path:
    return cache_root() / "rootfs" / f"{release}-{_sha256(mirror.encode())[:12]}.tar"


def _artefact_spec(spec: ImageSpec, artefact: Artefact) -> ImageSpec:
    """What builds `artefact`: its folder, on the image's release and arguments."""
    return ImageSpec(artefact.folder, spec.debian_release, build_args=spec.build_args)


def artefact_key(build_context: Context, spec: ImageSpec) -> str:
    """The cache key of an artefact: its build folder's files, the build
    arguments and the Debian release. Not the proxy CA certificates of the
    context (they change how it is fetched, not what is compiled), nor the
    base image's id (every debootstrap of the same release gives a new one)."""
    files = {
        name: entry
        for name, entry in build_context.items()
        if not name.startswith("ca-certificates/")
    }
    return _inputs_hash(files, f"debian:{spec.debian_release}", spec.build_args)


def _tagged(
    spec: ImageSpec, context: Context, base_id: str, stand_ins: dict[str, str]
) -> tuple[str, str]:
    """The image's tag and inputs hash: its context, each artefact and download
    standing in by its digest (hashing the file again would lengthen every
    check)."""
    hashed = context | {path: (digest.encode(), 0o755) for path, digest in stand_ins.items()}
    inputs = _inputs_hash(hashed, base_id, spec.build_args)
    return f"{spec.repository}:{inputs[:12]}", inputs


def _digest_file(download: Path) -> Path:
    return download.with_name(download.name + ".sha1")


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def _stored_digest(path: Path) -> str | None:
    """The SHA-256 written beside a cached artefact when it was stored; None
    when the entry is not complete."""
    checksum = path.with_name(path.name + ".sha256")
    if not (path.is_file() and checksum.is_file()):
        return None
    return checksum.read_text().strip()


def _cached_artefact(path: Path) -> tuple[bytes, str] | None:
    """The bytes and SHA-256 of a complete entry: an executable whose bytes
    match the SHA-256 written beside it when it was stored (an interrupted
    or altered entry does not)."""
    digest = _stored_digest(path)
    if digest is None:
        return None
    data = path.read_bytes()
    return (data, digest) if data.startswith(ELF_MAGIC) and _sha256(data) == digest else None


def _store_artefact(entry: Path, name: str, data: bytes) -> str:
    """Writes the entry in a temporary folder beside it and renames it into
    place, so that an interrupted run never leaves a complete-looking entry."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    (partial / name).write_bytes(data)
    (partial / name).chmod(0o755)
    digest = _sha256(data)
    (partial / f"{name}.sha256").write_text(digest + "\n")
    shutil.rmtree(entry, ignore_errors=True)
    partial.rename(entry)
    return digest


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_url(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        body: bytes = response.read()
    return body


def _first_line(error: Exception) -> str:
    text = str(getattr(error, "explanation", None) or error)
    return text.splitlines()[0][:200] if text else type(error).__name__
