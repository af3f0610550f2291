"""Image inputs: what goes into a build context and what changes its tag."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest

from harness.config import Images
from harness.errors import TestbuildError
from harness.images import ImageBuilder, ImageSpec, _inputs_hash
from harness.progress import Progress


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
