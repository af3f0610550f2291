"""Filesystem transfers (v2): each answers a scheduler job the client
follows to its end. Large files travel exactly as clients move them
(pyfirecrest 3.x's v2 client): an upload asks for the transfer, PUTs each
presigned part, collects the ETags, POSTs the CompleteMultipartUpload
document, then follows the job and reads its log; a download follows the job,
then GETs the presigned URL. Ground truth: the bytes on the system and in the
staging store match what was sent."""

from __future__ import annotations

import hashlib
import math
import os
import urllib.parse
from xml.etree import ElementTree

import pytest
import requests
from minio.error import S3Error

from firecrest_testbuild.scenarios.truth import Truth
from firecrest_testbuild.scenarios.v2.api import ApiV2, refused
from firecrest_testbuild.scenarios.verdict import must, reference, should, spec

pytestmark = pytest.mark.api(2)

TRANSFER = "/filesystem/{system_name}/transfer"
MB = 1024 * 1024
S3_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
PARTS = reference(
    "filesystem/transfer/router.py (upload)",
    "one presigned part URL per maxPartSize of fileSize: ceil(fileSize / maxPartSize)",
)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def checksum(api: ApiV2, path: str) -> str | None:
    answer = api.ops("GET", "checksum", params={"path": path})
    return answer.json()["output"]["checksum"] if answer.status_code == 200 else None


def stored_object(truth: Truth, url: str, what: str) -> bytes | None:
    """The object a presigned (path-style) URL names, read with the target's
    S3 credentials; None when S3 access is not granted, or when the object is
    gone (the description is silent on how long a staged object stays: its
    absence is noted as a check not made)."""
    store = truth.store(what)
    if store is None:
        return None
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path).lstrip("/")
    bucket, _, key = path.partition("/")
    try:
        answer = store.get_object(bucket, key)
    except S3Error as error:
        if error.code != "NoSuchKey":
            raise
        truth.note(what, f"s3://{bucket}/{key} is no longer in the store")
        return None
    try:
        return bytes(answer.read())
    finally:
        answer.close()
        answer.release_conn()


def complete_document(etags: list[str]) -> str:
    """The S3 CompleteMultipartUpload document, parts in order."""
    root = ElementTree.Element("CompleteMultipartUpload", {"xmlns": S3_NAMESPACE})
    for number, etag in enumerate(etags, start=1):
        part = ElementTree.SubElement(root, "Part")
        ElementTree.SubElement(part, "ETag").text = etag
        ElementTree.SubElement(part, "PartNumber").text = str(number)
    return ElementTree.tostring(root, encoding="unicode")


def put_parts(urls: list[str], data: bytes, part_size: int, about: object) -> list[str]:
    """PUT each part to its presigned URL; the ETags S3 answered, in order."""
    etags = []
    for index, url in enumerate(urls):
        chunk = data[index * part_size : (index + 1) * part_size]
        answer = requests.put(url, data=chunk, timeout=120)
        must(
            answer.ok and "ETag" in answer.headers,
            f"part {index + 1}: PUT to its presigned URL answered {answer.status_code}"
            f" {answer.text[:200]}",
            spec(f"POST {TRANSFER}/upload", "partsUploadUrls: presigned URLs the parts are PUT to"),
            about=about,
        )
        etags.append(answer.headers["ETag"])
    return etags


@pytest.mark.requires("s3-transfer")
@pytest.mark.source(
    spec(
        f"POST {TRANSFER}/upload",
        "{sourcePath, transferDirectives {transferMethod s3, fileSize}}: 201 with a"
        " transferJob and transferDirectives (partsUploadUrls, completeUploadUrl,"
        " maxPartSize); once the parts are sent and completed, the job puts the file at"
        " sourcePath",
    )
)
@pytest.mark.covers(f"POST {TRANSFER}/upload")
def test_large_upload_goes_through_s3(client: ApiV2, folder: str, truth: Truth):
    data = os.urandom(3 * MB + 123)
    target = f"{folder}/big.bin"
    body = {
        "sourcePath": target,
        "transferDirectives": {"transferMethod": "s3", "fileSize": len(data)},
    }
    answer = client.transfer("POST", "upload", body)
    client.transfer_job(answer)
    directives = answer.json().get("transferDirectives") or {}
    urls, complete = directives.get("partsUploadUrls"), directives.get("completeUploadUrl")
    part_size = directives.get("maxPartSize")
    assert directives.get("transferMethod") == "s3", directives
    assert isinstance(urls, list) and urls and isinstance(complete, str), directives
    assert isinstance(part_size, int) and part_size > 0, directives
    should(
        len(urls) == math.ceil(len(data) / part_size),
        f"{len(urls)} part URLs for {len(data)} bytes in parts of {part_size}",
        PARTS,
        about=answer,
    )
    etags = put_parts(urls, data, part_size, about=answer)
    done = requests.post(complete, data=complete_document(etags), timeout=120)
    must(
        done.ok and "<Error>" not in done.text,
        f"POST CompleteMultipartUpload: {done.status_code} {done.text[:300]}",
        spec(f"POST {TRANSFER}/upload", "completeUploadUrl: the presigned completion URL"),
        about=answer,
    )
    # The assembled object, read before the job may collect it.
    staged = stored_object(truth, urls[0], "the staged object in S3")
    if staged is not None:
        assert sha256(staged) == sha256(data), "the object in S3 differs from what was sent"
    client.follow(answer)
    assert checksum(client, target) == sha256(data), "the file on the system differs"
    if (system := truth.system("the uploaded bytes on the system")) is not None:
        assert system.run(client.user, f"sha256sum {target}").text.split()[0] == sha256(data)


@pytest.mark.requires("s3-transfer")
@pytest.mark.source(
    spec(
        f"POST {TRANSFER}/download",
        "{sourcePath, transferDirectives {transferMethod s3}}: 201 with a transferJob and"
        " transferDirectives.downloadUrl; once the job ends the URL gives the file's bytes",
    )
)
@pytest.mark.covers(f"POST {TRANSFER}/download")
def test_large_download_goes_through_s3(client: ApiV2, folder: str, truth: Truth):
    data = os.urandom(2 * MB + 7)
    assert client.upload_small(folder, "out.bin", data).status_code == 204
    body = {"sourcePath": f"{folder}/out.bin", "transferDirectives": {"transferMethod": "s3"}}
    answer = client.transfer("POST", "download", body)
    client.follow(answer)
    url = (answer.json().get("transferDirectives") or {}).get("downloadUrl")
    assert isinstance(url, str), answer.text[:300]
    fetched = requests.get(url, timeout=120)
    assert fetched.status_code == 200, (fetched.status_code, fetched.text[:200])
    assert sha256(fetched.content) == sha256(data), f"{len(fetched.content)} bytes of {len(data)}"
    staged = stored_object(truth, url, "the staged object in S3")
    if staged is not None:
        assert sha256(staged) == sha256(data), "the object in S3 differs from the file"


@pytest.mark.requires("s3-transfer")
@pytest.mark.source(
    spec(
        f"POST {TRANSFER}/upload",
        "transferDirectives.transferMethod is one of the methods the description names",
    )
)
@pytest.mark.covers(f"POST {TRANSFER}/upload")
def test_an_unknown_transfer_method_is_refused(client: ApiV2, folder: str):
    body = {
        "sourcePath": f"{folder}/x",
        "transferDirectives": {"transferMethod": "carrier-pigeon", "fileSize": 10},
    }
    refused(client.transfer("POST", "upload", body))


@pytest.mark.requires("transfer-jobs")
@pytest.mark.source(
    spec(f"POST {TRANSFER}/cp", "{sourcePath, targetPath}: 201 with a transferJob that copies")
)
@pytest.mark.covers(f"POST {TRANSFER}/cp")
def test_cp_is_a_job(client: ApiV2, folder: str):
    data = os.urandom(10_000)
    client.upload_small(folder, "a", data)
    answer = client.transfer(
        "POST", "cp", {"sourcePath": f"{folder}/a", "targetPath": f"{folder}/b"}
    )
    client.follow(answer)
    assert checksum(client, f"{folder}/b") == sha256(data)
    assert client.names(folder) == {"a", "b"}


@pytest.mark.requires("transfer-jobs")
@pytest.mark.source(
    spec(f"POST {TRANSFER}/mv", "{sourcePath, targetPath}: 201 with a transferJob that moves")
)
@pytest.mark.covers(f"POST {TRANSFER}/mv")
def test_mv_is_a_job(client: ApiV2, folder: str):
    data = os.urandom(10_000)
    client.upload_small(folder, "a", data)
    answer = client.transfer(
        "POST", "mv", {"sourcePath": f"{folder}/a", "targetPath": f"{folder}/c"}
    )
    client.follow(answer)
    assert client.names(folder) == {"c"}
    assert checksum(client, f"{folder}/c") == sha256(data)


@pytest.mark.requires("transfer-jobs")
@pytest.mark.source(
    spec(f"DELETE {TRANSFER}/rm", "query path: 200 with a transferJob that removes the path")
)
@pytest.mark.covers(f"DELETE {TRANSFER}/rm")
def test_rm_is_a_job(client: ApiV2, folder: str, truth: Truth):
    client.mkdir(f"{folder}/tree/deep", parent=True)
    client.upload_small(f"{folder}/tree/deep", "x", b"x")
    answer = client.transfer("DELETE", "rm", params={"path": f"{folder}/tree"})
    client.follow(answer, created=200)
    assert client.names(folder) == set()
    if (system := truth.system("the tree gone on the system")) is not None:
        assert system.run(client.user, f"test -e {folder}/tree").exit_status != 0


@pytest.mark.requires("transfer-jobs")
@pytest.mark.source(
    spec(
        f"POST {TRANSFER}/compress, POST {TRANSFER}/extract",
        "compress {sourcePath, targetPath} and extract {sourcePath, targetPath}: 201 each"
        " with a transferJob that makes the archive, then unpacks it",
    )
)
@pytest.mark.covers(f"POST {TRANSFER}/compress", f"POST {TRANSFER}/extract")
def test_compress_and_extract_are_jobs(client: ApiV2, folder: str):
    client.mkdir(f"{folder}/src")
    client.upload_small(f"{folder}/src", "f.txt", b"payload")
    archive = f"{folder}/src.tar.gz"
    packed = client.transfer(
        "POST", "compress", {"sourcePath": f"{folder}/src", "targetPath": archive}
    )
    client.follow(packed)
    assert "src.tar.gz" in client.names(folder)
    client.mkdir(f"{folder}/out")
    unpacked = client.transfer(
        "POST", "extract", {"sourcePath": archive, "targetPath": f"{folder}/out"}
    )
    client.follow(unpacked)
    found = client.names(f"{folder}/out", recursive="true")
    assert any(name.endswith("f.txt") for name in found), found
