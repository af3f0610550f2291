"""Image builds with a Docker client double: the compiled-artefact cache and
the concurrent builds of `ImageBuilder.ensure_all`."""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from docker.errors import APIError, ImageNotFound

from firecrest_testbuild.harness import images
from firecrest_testbuild.harness.config import Images
from firecrest_testbuild.harness.errors import TestbuildError
from firecrest_testbuild.harness.images import Artefact, ImageBuilder, ImageSpec
from firecrest_testbuild.harness.progress import Progress

BINARY = images.ELF_MAGIC + b"compiled server"
ARTEFACT = Artefact("server", "server/compile", "/out/server", "artefacts/server")


class Engine:
    """A Docker client double: the tags it has, the builds it was asked for
    (by their context's Dockerfile), and what an artefact's build leaves."""

    def __init__(self, tags: set[str] | None = None, payload: bytes = BINARY) -> None:
        self.tags = tags if tags is not None else {"testbuild/debian:trixie"}
        self.payload = payload
        self.builds: list[str] = []
        self.contexts: list[dict[str, bytes]] = []  # each build's files
        self.pulls: list[str] = []
        self.base_id = "sha256:base-1"
        self.failing: set[str] = set()  # Dockerfile texts whose build fails
        self.client = mock.Mock()
        self.client.images.get.side_effect = self._get
        self.client.images.pull.side_effect = self._pull
        self.client.images.list.return_value = []
        self.client.api.build.side_effect = self._build
        self.client.containers.create.return_value.get_archive.side_effect = self._archive

    def _get(self, reference: str) -> mock.Mock:
        if reference not in self.tags and not reference.startswith("sha256:"):
            raise ImageNotFound(reference)
        image = mock.Mock(attrs={"Id": self.base_id})
        image.tag.side_effect = lambda repository, tag: self.tags.add(f"{repository}:{tag}")
        return image

    def _pull(self, reference: str) -> mock.Mock:
        time.sleep(0.05)  # long enough for a second thread to ask for it too
        self.pulls.append(reference)
        image = mock.Mock()
        image.tag.side_effect = self.tags.add
        return image

    def _build(self, fileobj: io.BytesIO, tag: str | None, **_: Any) -> Iterator[dict[str, Any]]:
        with tarfile.open(fileobj=fileobj) as tar:
            files = {m.name: tar.extractfile(m) for m in tar.getmembers() if m.isfile()}
            self.contexts.append({name: f.read() for name, f in files.items() if f is not None})
        text = self.contexts[-1]["Dockerfile"].decode()
        self.builds.append(text)
        if text in self.failing:
            yield {"error": "The command '/bin/sh -c false' returned a non-zero code: 1"}
        while text.startswith("FROM slow"):  # runs until told the others failed
            time.sleep(0.01)
            yield {"stream": "Step 2/2 : RUN sleep 600\n"}
        if tag:
            self.tags.add(tag)
        yield {"stream": "Step 1/1 : FROM x\n"}
        yield {"aux": {"ID": "sha256:built"}}

    def _archive(self, path: str) -> tuple[list[bytes], dict[str, Any]]:
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w") as tar:
            member = tarfile.TarInfo(Path(path).name)
            member.size = len(self.payload)
            tar.addfile(member, io.BytesIO(self.payload))
        return [out.getvalue()], {}


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """images/ with a server image whose binary server/compile/ compiles, and
    the user cache, both in tmp_path."""
    monkeypatch.setattr(images, "IMAGES", tmp_path / "images")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for folder, dockerfile in {
        "server": "FROM base\nCOPY artefacts/server /usr/local/bin/\n",
        "server/compile": "FROM base\nRUN go install server\n",
        "other": "FROM base\nRUN apt-get install other\n",
        "slow": "FROM slow\n",
        "broken": "FROM base\nRUN false\n",
    }.items():
        (tmp_path / "images" / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / "images" / folder / "Dockerfile").write_text(dockerfile)
    return tmp_path


def spec(**changes: Any) -> ImageSpec:
    values: dict[str, Any] = {
        "folder": "server",
        "debian_release": "trixie",
        "build_args": (("VERSION", "v1"),),
        "artefacts": (ARTEFACT,),
    }
    return ImageSpec(**(values | changes))


def builder(
    engine: Engine, use_cache: bool = True, stream: io.StringIO | None = None
) -> ImageBuilder:
    progress = Progress(stream=stream or io.StringIO())
    return ImageBuilder(engine.client, Images(ca_certificates="none"), progress, use_cache)


def compiles(engine: Engine) -> int:
    return engine.builds.count("FROM base\nRUN go install server\n")


def cached_entries(root: Path) -> list[Path]:
    return sorted((root / "cache/testbuild/artefacts").glob("server-*/server"))


def test_the_artefact_is_compiled_once_and_its_bytes_go_into_the_image(folders: Path):
    engine = Engine()
    said = io.StringIO()
    tag = builder(engine, stream=said).ensure(spec())
    assert compiles(engine) == 1
    # Each stage says how long it took.
    assert re.search(r"testbuild/server: server compiled in \d+s, cached in ", said.getvalue())
    assert re.search(rf"{tag}: built in \d+\.\ds", said.getvalue())
    [entry] = cached_entries(folders)
    assert entry.read_bytes() == BINARY
    context = builder(engine)._context_files(spec())
    assert "artefacts/server" not in context  # it comes from the cache, not the folder

    engine.tags.discard(tag)  # as after `make clean`
    engine.base_id = "sha256:base-2"  # the base debootstrapped again
    output = io.StringIO()
    rebuilt = builder(engine, stream=output).ensure(spec())
    assert rebuilt != tag  # the final image is rebuilt on the new base ...
    assert compiles(engine) == 1  # ... from the cached binary
    assert f"testbuild/server: cached server used: {entry}" in output.getvalue()


DOWNLOAD = images.Download(
    "https://repo.example/dist.zip", "downloads/dist.zip", "https://repo.example/dist.zip.sha1"
)


def cached_download(root: Path, data: bytes, digest: bool = True) -> Path:
    """A download in the user cache, as a run that fetched it leaves it."""
    cached = root / "cache/testbuild/downloads/dist.zip"
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(data)
    if digest:
        cached.with_name("dist.zip.sha1").write_text(hashlib.sha1(data).hexdigest() + "\n")
    return cached


def test_a_download_stands_in_by_its_digest_until_a_build_needs_its_bytes(folders: Path):
    engine = Engine()
    cached = cached_download(folders, b"distribution")
    with_download = spec(folder="other", artefacts=(), downloads=(DOWNLOAD,))
    tag = builder(engine).ensure(with_download)
    assert engine.contexts[-1]["downloads/dist.zip"] == b"distribution"
    cached.write_bytes(b"altered since")  # not read while the image exists
    assert builder(engine).ensure(with_download) == tag
    assert len(engine.builds) == 1
    engine.tags.discard(tag)  # as after `make clean`: the build reads it, and refuses it
    with pytest.raises(TestbuildError, match=r"dist\.zip has changed since it was downloaded"):
        builder(engine).ensure(with_download)


def test_a_download_cached_before_its_digest_was_kept_gets_it_from_the_file(folders: Path):
    cached = cached_download(folders, b"distribution", digest=False)
    with_download = spec(folder="other", artefacts=(), downloads=(DOWNLOAD,))
    builder(Engine()).ensure(with_download)
    stored = cached.with_name("dist.zip.sha1").read_text().strip()
    assert stored == hashlib.sha1(b"distribution").hexdigest()


def test_the_image_tag_follows_the_artefact_bytes(folders: Path):
    first = builder(Engine()).ensure(spec())
    for entry in cached_entries(folders):
        entry.parent.joinpath("server").unlink()  # the cache dropped
    other = Engine(payload=BINARY + b" built by another toolchain")
    assert builder(other).ensure(spec()) != first


@pytest.mark.parametrize(
    "change",
    [
        {"build_args": (("VERSION", "v2"),)},
        {"debian_release": "forky"},
        {"dockerfile": "FROM base\nRUN go install -trimpath server\n"},
    ],
)
def test_the_artefact_key_changes_with_its_recipe(folders: Path, change: dict[str, Any]):
    engine = Engine({"testbuild/debian:trixie", "testbuild/debian:forky"})
    builder(engine).ensure(spec())
    if dockerfile := change.pop("dockerfile", None):
        (folders / "images/server/compile/Dockerfile").write_text(dockerfile)
    builder(engine).ensure(spec(**change))
    assert len(cached_entries(folders)) == 2


def test_the_artefact_key_ignores_ca_certificates_and_the_final_dockerfile(folders: Path):
    engine = Engine()
    builder(engine).ensure(spec())
    certificate = folders / "proxy.crt"
    certificate.write_text("-----BEGIN CERTIFICATE-----\n")
    (folders / "images/server/Dockerfile").write_text("FROM base\nCOPY artefacts/server /bin/\n")
    ImageBuilder(engine.client, Images(ca_certificates=[certificate]), Progress(quiet=True)).ensure(
        spec()
    )
    assert compiles(engine) == 1
    assert len(cached_entries(folders)) == 1


@pytest.mark.parametrize(
    "damage",
    [
        lambda entry: entry.write_bytes(BINARY[:3]),  # cut short
        lambda entry: entry.with_name("server.sha256").unlink(),  # never finished
        lambda entry: entry.write_bytes(b"#!/bin/sh\n"),  # not what was stored
    ],
)
def test_a_damaged_cache_entry_is_compiled_again_not_used(folders: Path, damage: Any):
    engine = Engine()
    tag = builder(engine).ensure(spec())
    [entry] = cached_entries(folders)
    damage(entry)
    engine.tags.discard(tag)
    output = io.StringIO()
    assert builder(engine, stream=output).ensure(spec()) == tag
    assert compiles(engine) == 2
    assert "is incomplete or corrupt: compiling again" in output.getvalue()
    assert entry.read_bytes() == BINARY


def test_a_build_that_leaves_no_executable_is_an_error_and_caches_nothing(folders: Path):
    engine = Engine(payload=b"<html>proxy error</html>")
    with pytest.raises(TestbuildError, match="/out/server, which is not an executable"):
        builder(engine).ensure(spec())
    assert not list((folders / "cache/testbuild/artefacts").glob("*"))


def test_without_the_cache_the_artefact_is_compiled_again(folders: Path):
    engine = Engine()
    builder(engine).ensure(spec())
    builder(engine, use_cache=False).ensure(spec())
    assert compiles(engine) == 2


def test_images_sharing_a_base_built_at_once_make_the_base_once(folders: Path):
    engine = Engine(tags=set())
    tags = builder(engine).ensure_all([[spec(), ImageSpec("other", "trixie")]])
    assert engine.pulls == ["debian:trixie-slim"]
    assert set(tags) == {"testbuild/server", "testbuild/other"}
    assert all(tag in engine.tags for tag in tags.values())


def test_the_groups_are_built_in_order(folders: Path):
    engine = Engine()
    builder(engine).ensure_all([[ImageSpec("other", "trixie")], [spec(artefacts=())]])
    assert engine.builds == [
        "FROM base\nRUN apt-get install other\n",
        "FROM base\nCOPY artefacts/server /usr/local/bin/\n",
    ]


def test_a_failing_build_is_reported_by_name_and_stops_the_others(folders: Path):
    engine = Engine()
    engine.failing.add("FROM base\nRUN false\n")
    done = threading.Event()

    def build_all() -> None:
        with pytest.raises(TestbuildError) as failure:
            builder(engine).ensure_all(
                [[ImageSpec("slow", "trixie"), ImageSpec("broken", "trixie")], [spec()]]
            )
        assert failure.value.message.startswith("testbuild/broken: building images/broken failed")
        done.set()

    worker = threading.Thread(target=build_all, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert done.is_set()  # the slow build stopped rather than ran on
    assert not [
        tag for tag in engine.tags if tag.startswith(("testbuild/slow", "testbuild/server"))
    ]


def test_a_cached_root_file_system_is_imported_without_debootstrap(
    folders: Path, monkeypatch: pytest.MonkeyPatch
):
    engine = Engine(tags=set())
    engine.client.images.pull.side_effect = APIError("no registry")
    mirror = Images().debian_mirror
    rootfs = images.rootfs_tarball("trixie", mirror)
    rootfs.parent.mkdir(parents=True)
    rootfs.write_bytes(b"root file system tarball")
    rootfs.with_name(f".{rootfs.name}.123.part").write_bytes(b"interrupted")
    monkeypatch.setattr(images.subprocess, "Popen", mock.Mock(side_effect=AssertionError))
    imported: list[bytes] = []
    engine.client.api.import_image_from_stream.side_effect = lambda chunks, **_: imported.append(
        b"".join(chunks)
    )
    output = io.StringIO()
    assert builder(engine, stream=output).ensure_base("trixie") == "testbuild/debian:trixie"
    assert imported == [b"root file system tarball"]
    assert f"cached root file system used: {rootfs}" in output.getvalue()
    assert images.rootfs_tarball("trixie", "http://another.mirror/debian") != rootfs
