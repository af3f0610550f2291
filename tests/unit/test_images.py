"""Image inputs: what goes into a build context and what changes its tag."""

from __future__ import annotations

import datetime
import hashlib
import re
from pathlib import Path
from unittest import mock

import pytest

from firecrest_testbuild.harness import images
from firecrest_testbuild.harness.config import Images
from firecrest_testbuild.harness.errors import TestbuildError
from firecrest_testbuild.harness.images import ImageBuilder, ImageSpec, _inputs_hash
from firecrest_testbuild.harness.paths import IMAGES
from firecrest_testbuild.harness.progress import Progress
from tests.repository import ROOT


def builder(settings: Images) -> ImageBuilder:
    return ImageBuilder(mock.Mock(), settings, Progress(quiet=True))


def test_context_has_the_folder_and_the_configured_ca_certificates(tmp_path: Path):
    certificate = tmp_path / "proxy.pem"
    certificate.write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    context = builder(Images(ca_certificates=[certificate]))._context_files(
        ImageSpec("cluster", "bookworm")
    )
    assert "Dockerfile" in context
    assert "files/usr/local/sbin/testbuild-node" in context
    assert context["files/usr/local/sbin/testbuild-node"][1] & 0o111
    assert context["ca-certificates/proxy.crt"] == (b"-----BEGIN CERTIFICATE-----\n", 0o644)


def test_what_the_host_built_or_tests_beside_the_image_files_is_not_an_input():
    """Bytecode the host's Python left, a binary `go build` left in the command
    wrapper's folder, and the wrapper's Go tests (which run on the host)."""
    cache = images.IMAGES / "cluster/files/usr/local/libexec/__pycache__"
    cache.mkdir(exist_ok=True)
    strays = [
        (cache / "stray.cpython-311.pyc", b"host bytecode"),
        (images.IMAGES / "cluster/command-wrapper/command-wrapper", b"\x7fELF\x02\x01\x01"),
    ]
    for stray, data in strays:
        stray.write_bytes(data)
    try:
        context = builder(Images(ca_certificates="none"))._context_files(
            ImageSpec("cluster", "bookworm")
        )
    finally:
        for stray, _ in strays:
            stray.unlink()
    assert not [name for name in context if "__pycache__" in name]
    assert not [name for name in context if name.endswith("_test.go") or "testdata" in name]
    assert "command-wrapper/command-wrapper" not in context
    assert {"command-wrapper/main.go", "command-wrapper/go.mod"} <= set(context)


def test_no_certificates_still_gives_the_folder_the_dockerfile_copies():
    context = builder(Images(ca_certificates="none"))._context_files(
        ImageSpec("cluster", "bookworm")
    )
    assert [name for name in context if name.startswith("ca-certificates/")] == [
        "ca-certificates/.keep"
    ]


def test_missing_certificate_file_is_a_config_error(tmp_path: Path):
    with pytest.raises(TestbuildError, match=r"images\.caCertificates names"):
        builder(Images(ca_certificates=[tmp_path / "nope.crt"]))._context_files(
            ImageSpec("cluster", "bookworm")
        )


def test_inputs_hash_changes_with_content_mode_and_base_only():
    context = {"Dockerfile": (b"FROM x\n", 0o644)}
    same = _inputs_hash(dict(context), "sha256:base")
    assert _inputs_hash(context, "sha256:base") == same
    assert _inputs_hash({"Dockerfile": (b"FROM y\n", 0o644)}, "sha256:base") != same
    assert _inputs_hash({"Dockerfile": (b"FROM x\n", 0o755)}, "sha256:base") != same
    assert _inputs_hash(context, "sha256:other") != same


def test_inputs_hash_changes_with_build_args():
    context = {"Dockerfile": (b"FROM x\n", 0o644)}
    pinned = _inputs_hash(context, "sha256:base", (("MINIO_VERSION", "v1"),))
    assert pinned != _inputs_hash(context, "sha256:base")
    assert pinned != _inputs_hash(context, "sha256:base", (("MINIO_VERSION", "v2"),))
    assert pinned == _inputs_hash(context, "sha256:base", (("MINIO_VERSION", "v1"),))


def test_downloads_are_fetched_once_into_the_cache_and_checked(tmp_path, monkeypatch):
    payload = b"distribution bytes"
    served = {
        "https://repo.example/dist.zip": payload,
        "https://repo.example/dist.zip.sha1": hashlib.sha1(payload).hexdigest().encode(),
    }
    fetched: list[str] = []

    class Response:
        def __init__(self, url: str) -> None:
            self.body, self.headers = served[url], {"Content-Length": str(len(served[url]))}
            fetched.append(url)

        def read(self, size: int = -1) -> bytes:
            chunk, self.body = (
                (self.body, b"") if size < 0 else (self.body[:size], self.body[size:])
            )
            return chunk

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(images.urllib.request, "urlopen", lambda url, timeout: Response(url))
    download = images.Download(
        "https://repo.example/dist.zip", "downloads/dist.zip", "https://repo.example/dist.zip.sha1"
    )
    first = builder(Images())._fetch(download)
    second = builder(Images())._fetch(download)
    assert first == second == tmp_path / "testbuild" / "downloads" / "dist.zip"
    assert first.read_bytes() == payload
    assert fetched == ["https://repo.example/dist.zip.sha1", "https://repo.example/dist.zip"]
    # The checked digest is kept: an image is found by it without reading the file.
    assert first.with_name("dist.zip.sha1").read_text() == hashlib.sha1(payload).hexdigest() + "\n"

    served["https://repo.example/other.zip"] = b"tampered"
    served["https://repo.example/other.zip.sha1"] = b"0" * 40
    with pytest.raises(TestbuildError, match="does not match its published SHA-1"):
        builder(Images())._fetch(
            images.Download(
                "https://repo.example/other.zip", "x", "https://repo.example/other.zip.sha1"
            )
        )
    assert not (tmp_path / "testbuild" / "downloads" / "other.zip").exists()


def built(tags: list[str], hours_ago: float) -> mock.Mock:
    made = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=hours_ago)
    image = mock.Mock(tags=tags, labels={images.INPUTS_LABEL: "x"})
    image.attrs = {"Created": made.strftime("%Y-%m-%dT%H:%M:%S.%f123Z")}
    return image


def test_older_builds_go_but_a_recent_one_of_another_checkout_stays():
    old = built(["testbuild/stack:aaaa", "testbuild/stack:latest"], hours_ago=3)
    recent = built(["testbuild/stack:bbbb"], hours_ago=0.1)
    current = built(["testbuild/stack:cccc"], hours_ago=0)
    maker = builder(Images(ca_certificates="none"))
    maker.client.images.list.return_value = [old, recent, current]
    maker._remove_older_builds(ImageSpec("stack", "trixie"), keep="testbuild/stack:cccc")
    removed = [call.args[0] for call in maker.client.images.remove.call_args_list]
    assert removed == ["testbuild/stack:aaaa", "testbuild/stack:latest"]


def test_every_stage_a_build_leaves_behind_is_labelled_for_make_clean():
    """A multi-stage build leaves the image of each stage that is neither the
    last nor the base of a later one untagged on the engine; `make clean`
    removes what carries org.testbuild.stage."""
    for dockerfile in sorted(IMAGES.glob("**/Dockerfile")):
        stages = re.split(r"^FROM ", dockerfile.read_text(), flags=re.MULTILINE)[1:]
        bases = {stage.split()[0] for stage in stages}
        for stage in stages[:-1]:
            name = stage.splitlines()[0].split(" AS ")[-1].strip()
            labelled = re.search(r"^LABEL org\.testbuild\.stage=\S+$", stage, re.MULTILINE)
            assert name in bases or labelled, f"{dockerfile}: stage {name} has no stage label"
    assert "--filter label=org.testbuild.stage" in (ROOT / "Makefile").read_text()


def test_debootstrap_says_each_step_once_not_each_package():
    output = [
        "I: Retrieving InRelease",
        "I: Checking Release signature",
        "I: Retrieving Packages",
        "I: Validating Packages",
        "I: Retrieving apt 3.0.4",
        "I: Validating apt 3.0.4",
        "I: Retrieving bash 5.2.37",
        "I: Validating bash 5.2.37",
        "W: a warning",
        "I: Extracting apt...",
        "I: Extracting bash...",
        "I: Configuring required packages...",
        "I: Base system installed successfully.",
    ]
    steps = images.DebootstrapSteps()
    assert [line for line in output if steps.first_of_a_step(line)] == [
        "I: Retrieving InRelease",
        "I: Checking Release signature",
        "I: Retrieving Packages",
        "I: Extracting apt...",
        "I: Configuring required packages...",
        "I: Base system installed successfully.",
    ]
