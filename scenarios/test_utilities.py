"""Utilities: every blocking file operation, its success checked through the
API and, where the target grants it, on the system; and the main errors."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile

import pytest

from firecrest_testbuild.scenarios.client import Client
from firecrest_testbuild.scenarios.truth import Truth

TEXT = b"one\ntwo\nthree\n"


@pytest.fixture
def text_file(client: Client, folder: str) -> str:
    path = f"{folder}/f.txt"
    made = client.post("/utilities/upload", targetPath=folder, files={"file": ("f.txt", TEXT)})
    assert made.status_code == 201, made.text
    return path


def error(response, header: str) -> str:
    assert response.status_code == 400, (response.status_code, response.text[:200])
    assert header in response.headers, f"{header} missing; headers: {dict(response.headers)}"
    return response.headers[header]


@pytest.mark.covers("GET /utilities/ls")
def test_ls_lists_hidden_files_only_when_asked(client: Client, folder: str, text_file: str):
    client.post("/utilities/upload", targetPath=folder, files={"file": (".hidden", b"h")})
    plain = client.get("/utilities/ls", targetPath=folder)
    assert plain.status_code == 200
    names = {entry["name"] for entry in plain.json()["output"]}
    assert names == {"f.txt"}
    entry = plain.json()["output"][0]
    assert entry["type"] == "-" and entry["size"] == str(len(TEXT))
    assert entry["user"] == client.user and len(entry["permissions"]) == 9
    hidden = client.get("/utilities/ls", targetPath=folder, showhidden="true")
    assert {e["name"] for e in hidden.json()["output"]} == {"f.txt", ".hidden"}


@pytest.mark.covers("GET /utilities/ls")
def test_ls_numeric_ids_and_recursion(client: Client, folder: str, text_file: str):
    client.post("/utilities/mkdir", targetPath=f"{folder}/sub")
    client.post("/utilities/upload", targetPath=f"{folder}/sub", files={"file": ("in", b"i")})
    numeric = client.get("/utilities/ls", targetPath=folder, numericUid="true").json()["output"]
    assert all(entry["user"].isdigit() for entry in numeric)
    deep = client.get("/utilities/ls", targetPath=folder, recursive="true").json()["output"]
    assert any(entry["name"].endswith("in") and "sub" in entry["name"] for entry in deep)


@pytest.mark.covers("GET /utilities/ls")
def test_ls_errors(client: Client, folder: str):
    missing = client.get("/utilities/ls", targetPath=f"{folder}/missing")
    assert error(missing, "X-Invalid-Path").startswith(f"{folder}/missing")
    denied = client.get("/utilities/ls", targetPath="/root")
    error(denied, "X-Permission-Denied")


@pytest.mark.covers("POST /utilities/mkdir")
def test_mkdir(client: Client, folder: str):
    assert client.post("/utilities/mkdir", targetPath=f"{folder}/a/b", p="true").status_code == 201
    listing = client.get("/utilities/ls", targetPath=f"{folder}/a").json()["output"]
    assert [(e["name"], e["type"]) for e in listing] == [("b", "d")]
    error(client.post("/utilities/mkdir", targetPath=f"{folder}/x/y"), "X-Invalid-Path")
    error(client.post("/utilities/mkdir", targetPath=f"{folder}/a"), "X-Exists")


@pytest.mark.covers("PUT /utilities/rename")
def test_rename(client: Client, folder: str, text_file: str):
    moved = client.put("/utilities/rename", sourcePath=text_file, targetPath=f"{folder}/g.txt")
    assert moved.status_code == 200
    names = [e["name"] for e in client.get("/utilities/ls", targetPath=folder).json()["output"]]
    assert names == ["g.txt"]
    gone = client.put("/utilities/rename", sourcePath=text_file, targetPath=f"{folder}/h")
    error(gone, "X-Not-Found")


@pytest.mark.covers("PUT /utilities/chmod")
def test_chmod(client: Client, folder: str, text_file: str, truth: Truth):
    assert client.put("/utilities/chmod", targetPath=text_file, mode="700").status_code == 200
    entry = client.get("/utilities/ls", targetPath=text_file).json()["output"][0]
    assert entry["permissions"] == "rwx------"
    if (system := truth.system("the mode on the system")) is not None:
        assert system.run(client.user, f"stat -c %a {text_file}").text.strip() == "700"
    error(client.put("/utilities/chmod", targetPath=text_file, mode="abc"), "X-Invalid-Mode")
    # PUT /utilities/chmod, 400 header X-Invalid-Path (API description).
    missing = client.put("/utilities/chmod", targetPath=f"{folder}/missing", mode="700")
    error(missing, "X-Invalid-Path")


@pytest.mark.covers("PUT /utilities/chown")
def test_chown(client: Client, other: Client, text_file: str, truth: Truth):
    to_other = client.put("/utilities/chown", targetPath=text_file, owner=other.user)
    error(to_other, "X-Permission-Denied")
    if (system := truth.system("the owner unchanged on the system")) is not None:
        assert system.run(client.user, f"stat -c %U {text_file}").text.strip() == client.user
    nobody = client.put("/utilities/chown", targetPath=text_file, owner="no-such-owner-x")
    error(nobody, "X-Invalid-Owner")
    same = client.put("/utilities/chown", targetPath=text_file, owner=client.user)
    assert same.status_code == 200
    # PUT /utilities/chown takes an owner and a group (API description): the
    # user's own primary group (GET /utilities/whoami?groups=true).
    group = client.get("/utilities/whoami", groups="true").json()["output"]["group"]["name"]
    both = client.put("/utilities/chown", targetPath=text_file, owner=client.user, group=group)
    assert both.status_code == 200, both.text[:200]


@pytest.mark.covers("POST /utilities/copy")
def test_copy(client: Client, folder: str, text_file: str):
    assert (
        client.post(
            "/utilities/copy", sourcePath=text_file, targetPath=f"{folder}/c.txt"
        ).status_code
        == 201
    )
    copied = client.get("/utilities/view", targetPath=f"{folder}/c.txt")
    assert copied.json()["output"] == TEXT.decode()
    missing = client.post("/utilities/copy", sourcePath=f"{folder}/no", targetPath=f"{folder}/d")
    error(missing, "X-Not-Found")
    # POST /utilities/copy, 400 header X-Invalid-Path (API description): no such target folder.
    nowhere = client.post("/utilities/copy", sourcePath=text_file, targetPath=f"{folder}/x/y")
    error(nowhere, "X-Invalid-Path")


@pytest.mark.covers("GET /utilities/file")
def test_file(client: Client, folder: str, text_file: str):
    typed = client.get("/utilities/file", targetPath=text_file)
    assert typed.status_code == 200 and "text" in typed.json()["output"].lower()
    error(client.get("/utilities/file", targetPath=f"{folder}/missing"), "X-Invalid-Path")


@pytest.mark.covers("GET /utilities/head", "GET /utilities/tail")
def test_head_and_tail(client: Client, folder: str, text_file: str):
    def output(path: str, **params: str) -> str:
        answer = client.get(path, targetPath=text_file, **params)
        assert answer.status_code == 200, (params, answer.text[:200])
        return answer.json()["output"]

    assert output("/utilities/head", lines="1") == "one\n"
    assert output("/utilities/head", bytes="3") == "one"
    assert output("/utilities/tail", lines="1") == "three\n"
    assert output("/utilities/tail", bytes="6") == "three\n"
    # The parameters of GET /utilities/head and /utilities/tail (API description):
    # skip_ending drops the last N lines, skip_beginning starts at line N, grep
    # keeps the matching lines; bytes and lines cannot be given together.
    assert output("/utilities/head", lines="1", skip_ending="true") == "one\ntwo\n"
    assert output("/utilities/tail", lines="2", skip_beginning="true") == "two\nthree\n"
    assert output("/utilities/head", grep="t") == "two\nthree\n"
    both = client.get("/utilities/head", targetPath=text_file, lines="1", bytes="1")
    assert both.status_code == 400, both.status_code
    error(client.get("/utilities/tail", targetPath=f"{folder}/missing"), "X-Invalid-Path")


@pytest.mark.covers("GET /utilities/stat")
def test_stat(client: Client, folder: str, text_file: str, truth: Truth):
    stat = client.get("/utilities/stat", targetPath=text_file)
    assert stat.status_code == 200
    output = stat.json()["output"]
    assert output["size"] == len(TEXT) and output["mode"] & 0o170000 == 0o100000
    if (system := truth.system("size, owner and inode as the system has them")) is not None:
        on_system = system.run(client.user, f"stat -c '%s %u %i' {text_file}").text.split()
        assert [output["size"], output["uid"], output["ino"]] == [int(v) for v in on_system]
    error(client.get("/utilities/stat", targetPath=f"{folder}/missing"), "X-Invalid-Path")
    # `dereference` (API description): a link itself unless asked to follow it.
    client.post("/utilities/symlink", targetPath=text_file, linkPath=f"{folder}/link")
    link = client.get("/utilities/stat", targetPath=f"{folder}/link").json()["output"]
    assert link["mode"] & 0o170000 == 0o120000, link
    followed = client.get("/utilities/stat", targetPath=f"{folder}/link", dereference="true")
    assert followed.json()["output"]["ino"] == output["ino"]
    # GET /utilities/stat, 400 header X-Not-A-Directory (API description).
    through = client.get("/utilities/stat", targetPath=f"{text_file}/inner")
    error(through, "X-Not-A-Directory")


@pytest.mark.covers("POST /utilities/symlink")
def test_symlink(client: Client, folder: str, text_file: str):
    link = f"{folder}/link"
    assert client.post("/utilities/symlink", targetPath=text_file, linkPath=link).status_code == 201
    entry = client.get("/utilities/ls", targetPath=link).json()["output"][0]
    assert entry["type"] == "l" and entry["link_target"] == text_file
    error(client.post("/utilities/symlink", targetPath=text_file, linkPath=link), "X-Exists")


@pytest.mark.covers("POST /utilities/upload", "GET /utilities/download")
def test_upload_and_download(client: Client, folder: str, truth: Truth):
    content = os.urandom(100_000)
    made = client.post("/utilities/upload", targetPath=folder, files={"file": ("bin", content)})
    assert made.status_code == 201
    if (system := truth.system("the uploaded bytes on the system")) is not None:
        on_system = system.run(client.user, f"sha1sum {folder}/bin").text.split()[0]
        assert on_system == hashlib.sha1(content).hexdigest()
    fetched = client.get("/utilities/download", sourcePath=f"{folder}/bin")
    assert fetched.status_code == 200 and fetched.content == content
    error(client.get("/utilities/download", sourcePath=f"{folder}/missing"), "X-Invalid-Path")
    # POST /utilities/upload, 400 header X-Invalid-Path (API description): no such folder.
    nowhere = client.post(
        "/utilities/upload", targetPath=f"{folder}/x", files={"file": ("a", b"a")}
    )
    error(nowhere, "X-Invalid-Path")


@pytest.mark.covers("POST /utilities/upload")
def test_upload_over_the_size_limit_is_refused(client: Client, folder: str):
    limit = int(client.target.limits.upload_max_mb * 1024 * 1024)
    over = client.post(
        "/utilities/upload", targetPath=folder, files={"file": ("big", b"\0" * (limit + 1))}
    )
    assert over.status_code in (400, 413), over.status_code
    names = [e["name"] for e in client.get("/utilities/ls", targetPath=folder).json()["output"]]
    assert "big" not in names


@pytest.mark.covers("DELETE /utilities/rm")
def test_rm(client: Client, folder: str, text_file: str, truth: Truth):
    assert client.delete("/utilities/rm", targetPath=text_file).status_code == 204
    assert client.get("/utilities/ls", targetPath=folder).json()["output"] == []
    if (system := truth.system("the file gone on the system")) is not None:
        assert system.run(client.user, f"ls -A {folder}").text.strip() == ""
    error(client.delete("/utilities/rm", targetPath=text_file), "X-Invalid-Path")


@pytest.mark.covers("GET /utilities/checksum")
def test_checksum(client: Client, folder: str, text_file: str):
    summed = client.get("/utilities/checksum", targetPath=text_file)
    assert hashlib.sha256(TEXT).hexdigest() in summed.json()["output"]
    error(client.get("/utilities/checksum", targetPath=folder), "X-A-Directory")


@pytest.mark.covers("GET /utilities/view")
def test_view(client: Client, folder: str, text_file: str):
    assert client.get("/utilities/view", targetPath=text_file).json()["output"] == TEXT.decode()
    error(client.get("/utilities/view", targetPath=folder), "X-A-Directory")


@pytest.mark.covers("GET /utilities/whoami")
def test_whoami(client: Client, truth: Truth):
    assert client.get("/utilities/whoami").json()["output"] == client.user
    groups = client.get("/utilities/whoami", groups="true").json()["output"]
    assert groups["user"]["name"] == client.user and groups["groups"]
    # Whoami-Ok-With-Groups (API description): the user's name and ID, the
    # primary group, and every group (primary and secondary) as names and IDs.
    assert groups["user"]["id"].isdigit() and groups["group"]["id"].isdigit(), groups
    assert groups["group"] in groups["groups"], groups
    if (system := truth.system("the user's and group's IDs on the system")) is not None:
        ids = system.run(client.user, "id -u; id -g").text.split()
        assert [groups["user"]["id"], groups["group"]["id"]] == ids


@pytest.mark.covers("POST /utilities/compress", "POST /utilities/extract")
def test_compress_and_extract(client: Client, folder: str, text_file: str):
    archive = f"{folder}/f.tar.gz"
    assert (
        client.post("/utilities/compress", sourcePath=text_file, targetPath=archive).status_code
        == 201
    )
    packed = client.get("/utilities/download", sourcePath=archive).content
    with tarfile.open(fileobj=io.BytesIO(packed)) as tar:
        assert [name.rsplit("/", 1)[-1] for name in tar.getnames()] == ["f.txt"]
    client.post("/utilities/mkdir", targetPath=f"{folder}/out")
    assert (
        client.post(
            "/utilities/extract", sourcePath=archive, targetPath=f"{folder}/out"
        ).status_code
        == 201
    )
    listed = client.get("/utilities/ls", targetPath=f"{folder}/out", recursive="true")
    unpacked = [e["name"] for e in listed.json()["output"] if e["name"].endswith("f.txt")]
    assert unpacked, listed.json()["output"]
    again = client.get("/utilities/view", targetPath=f"{folder}/out/{unpacked[0]}")
    assert again.json()["output"] == TEXT.decode()
    # 400 header X-Not-Found for a missing sourcePath (API description, both operations).
    gone = client.post("/utilities/compress", sourcePath=f"{folder}/no", targetPath=archive)
    error(gone, "X-Not-Found")
    gone = client.post("/utilities/extract", sourcePath=f"{folder}/no.tar", targetPath=folder)
    error(gone, "X-Not-Found")


def test_the_machine_header_is_checked(client: Client):
    missing = client.request("GET", "/utilities/whoami", machine=False)
    error(missing, "X-Machine-Does-Not-Exist")
    unknown = client.request(
        "GET", "/utilities/whoami", machine=False, headers={"X-Machine-Name": "no-such-machine"}
    )
    error(unknown, "X-Machine-Does-Not-Exist")
