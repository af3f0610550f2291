"""Utilities: every blocking file operation, its success checked through the
API and, where the target grants it, on the system; and the main errors."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile

import pytest

from firecrest_testbuild.scenarios.client import Client
from firecrest_testbuild.scenarios.expect import refused, unknown_machine_refused, x_headers
from firecrest_testbuild.scenarios.truth import Truth
from firecrest_testbuild.scenarios.verdict import must, reference, should, spec

pytestmark = pytest.mark.api(1)

TEXT = b"one\ntwo\nthree\n"


@pytest.fixture
def text_file(client: Client, folder: str) -> str:
    path = f"{folder}/f.txt"
    made = client.post("/utilities/upload", targetPath=folder, files={"file": ("f.txt", TEXT)})
    assert made.status_code == 201, made.text
    return path


@pytest.mark.source(
    spec("GET /utilities/ls", "File-metadata of each entry; showhidden lists hidden files")
)
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


@pytest.mark.source(
    spec("GET /utilities/ls", "numericUid shows numeric IDs; recursive lists subfolders")
)
@pytest.mark.covers("GET /utilities/ls")
def test_ls_numeric_ids_and_recursion(client: Client, folder: str, text_file: str):
    client.post("/utilities/mkdir", targetPath=f"{folder}/sub")
    client.post("/utilities/upload", targetPath=f"{folder}/sub", files={"file": ("in", b"i")})
    numeric = client.get("/utilities/ls", targetPath=folder, numericUid="true").json()["output"]
    assert all(entry["user"].isdigit() for entry in numeric)
    deep = client.get("/utilities/ls", targetPath=folder, recursive="true").json()["output"]
    assert any(entry["name"].endswith("in") and "sub" in entry["name"] for entry in deep)


@pytest.mark.source(spec("GET /utilities/ls", "400 with X-Invalid-Path or X-Permission-Denied"))
@pytest.mark.covers("GET /utilities/ls")
def test_ls_errors(client: Client, folder: str):
    missing = client.get("/utilities/ls", targetPath=f"{folder}/missing")
    assert refused(missing, "X-Invalid-Path").startswith(f"{folder}/missing")
    denied = client.get("/utilities/ls", targetPath="/root")
    refused(denied, "X-Permission-Denied")


@pytest.mark.source(
    spec("POST /utilities/mkdir", "201; p makes parents; 400 with X-Invalid-Path or X-Exists")
)
@pytest.mark.covers("POST /utilities/mkdir")
def test_mkdir(client: Client, folder: str):
    assert client.post("/utilities/mkdir", targetPath=f"{folder}/a/b", p="true").status_code == 201
    listing = client.get("/utilities/ls", targetPath=f"{folder}/a").json()["output"]
    assert [(e["name"], e["type"]) for e in listing] == [("b", "d")]
    refused(client.post("/utilities/mkdir", targetPath=f"{folder}/x/y"), "X-Invalid-Path")
    refused(client.post("/utilities/mkdir", targetPath=f"{folder}/a"), "X-Exists")


@pytest.mark.source(
    spec("PUT /utilities/rename", "200; 400 with X-Not-Found for a missing sourcePath")
)
@pytest.mark.covers("PUT /utilities/rename")
def test_rename(client: Client, folder: str, text_file: str):
    moved = client.put("/utilities/rename", sourcePath=text_file, targetPath=f"{folder}/g.txt")
    assert moved.status_code == 200
    names = [e["name"] for e in client.get("/utilities/ls", targetPath=folder).json()["output"]]
    assert names == ["g.txt"]
    gone = client.put("/utilities/rename", sourcePath=text_file, targetPath=f"{folder}/h")
    refused(gone, "X-Not-Found")


@pytest.mark.source(spec("PUT /utilities/chmod", "200; 400 with X-Invalid-Mode or X-Invalid-Path"))
@pytest.mark.covers("PUT /utilities/chmod")
def test_chmod(client: Client, folder: str, text_file: str, truth: Truth):
    assert client.put("/utilities/chmod", targetPath=text_file, mode="700").status_code == 200
    entry = client.get("/utilities/ls", targetPath=text_file).json()["output"][0]
    assert entry["permissions"] == "rwx------"
    if (system := truth.system("the mode on the system")) is not None:
        assert system.run(client.user, f"stat -c %a {text_file}").text.strip() == "700"
    refused(client.put("/utilities/chmod", targetPath=text_file, mode="abc"), "X-Invalid-Mode")
    # PUT /utilities/chmod, 400 header X-Invalid-Path (API description).
    missing = client.put("/utilities/chmod", targetPath=f"{folder}/missing", mode="700")
    refused(missing, "X-Invalid-Path")


@pytest.mark.source(
    spec(
        "PUT /utilities/chown",
        "200 for owner and group; 400 with X-Permission-Denied or X-Invalid-Owner",
    )
)
@pytest.mark.covers("PUT /utilities/chown")
def test_chown(client: Client, other: Client, text_file: str, truth: Truth):
    to_other = client.put("/utilities/chown", targetPath=text_file, owner=other.user)
    refused(to_other, "X-Permission-Denied")
    if (system := truth.system("the owner unchanged on the system")) is not None:
        assert system.run(client.user, f"stat -c %U {text_file}").text.strip() == client.user
    nobody = client.put("/utilities/chown", targetPath=text_file, owner="no-such-owner-x")
    refused(nobody, "X-Invalid-Owner")
    same = client.put("/utilities/chown", targetPath=text_file, owner=client.user)
    assert same.status_code == 200
    # PUT /utilities/chown takes an owner and a group (API description): the
    # user's own primary group (GET /utilities/whoami?groups=true).
    group = client.get("/utilities/whoami", groups="true").json()["output"]["group"]["name"]
    both = client.put("/utilities/chown", targetPath=text_file, owner=client.user, group=group)
    assert both.status_code == 200, both.text[:200]


@pytest.mark.source(spec("POST /utilities/copy", "201; 400 with X-Not-Found or X-Invalid-Path"))
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
    refused(missing, "X-Not-Found")
    # POST /utilities/copy, 400 header X-Invalid-Path (API description): no such target folder.
    nowhere = client.post("/utilities/copy", sourcePath=text_file, targetPath=f"{folder}/x/y")
    refused(nowhere, "X-Invalid-Path")


@pytest.mark.source(
    spec("GET /utilities/file", "200 with the file's type; 400 with X-Invalid-Path")
)
@pytest.mark.covers("GET /utilities/file")
def test_file(client: Client, folder: str, text_file: str):
    typed = client.get("/utilities/file", targetPath=text_file)
    assert typed.status_code == 200 and "text" in typed.json()["output"].lower()
    refused(client.get("/utilities/file", targetPath=f"{folder}/missing"), "X-Invalid-Path")


@pytest.mark.source(
    spec(
        "GET /utilities/head, GET /utilities/tail",
        "bytes, lines, skip_ending, skip_beginning and grep as described;"
        " not bytes and lines together",
    )
)
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
    refused(client.get("/utilities/tail", targetPath=f"{folder}/missing"), "X-Invalid-Path")
    # The description is silent on a pattern that matches nothing.
    for operation in ("head", "tail"):
        nothing = client.get(f"/utilities/{operation}", targetPath=text_file, grep="no-such-text")
        should(
            nothing.status_code == 404 and "X-Not-Found" in nothing.headers,
            f"{operation} with a pattern that matches nothing:"
            f" {nothing.status_code} {x_headers(nothing)}",
            GREP_MATCHES_NOTHING,
            about=nothing,
        )


GREP_MATCHES_NOTHING = reference(
    "cscs_api_common.py check_command_error",
    "head/tail whose grep matches nothing: 404, X-Not-Found: pattern not found",
)


@pytest.mark.source(
    spec(
        "GET /utilities/stat",
        "File-Stat-metadata; dereference follows links;"
        " 400 with X-Invalid-Path or X-Not-A-Directory",
    )
)
@pytest.mark.covers("GET /utilities/stat")
def test_stat(client: Client, folder: str, text_file: str, truth: Truth):
    stat = client.get("/utilities/stat", targetPath=text_file)
    assert stat.status_code == 200
    output = stat.json()["output"]
    assert output["size"] == len(TEXT) and output["mode"] & 0o170000 == 0o100000
    if (system := truth.system("size, owner and inode as the system has them")) is not None:
        on_system = system.run(client.user, f"stat -c '%s %u %i' {text_file}").text.split()
        assert [output["size"], output["uid"], output["ino"]] == [int(v) for v in on_system]
    refused(client.get("/utilities/stat", targetPath=f"{folder}/missing"), "X-Invalid-Path")
    # `dereference` (API description): a link itself unless asked to follow it.
    client.post("/utilities/symlink", targetPath=text_file, linkPath=f"{folder}/link")
    link = client.get("/utilities/stat", targetPath=f"{folder}/link").json()["output"]
    assert link["mode"] & 0o170000 == 0o120000, link
    followed = client.get("/utilities/stat", targetPath=f"{folder}/link", dereference="true")
    assert followed.json()["output"]["ino"] == output["ino"]
    # GET /utilities/stat, 400 header X-Not-A-Directory (API description).
    through = client.get("/utilities/stat", targetPath=f"{text_file}/inner")
    refused(through, "X-Not-A-Directory")


@pytest.mark.source(spec("POST /utilities/symlink", "201; 400 with X-Exists"))
@pytest.mark.covers("POST /utilities/symlink")
def test_symlink(client: Client, folder: str, text_file: str):
    link = f"{folder}/link"
    assert client.post("/utilities/symlink", targetPath=text_file, linkPath=link).status_code == 201
    entry = client.get("/utilities/ls", targetPath=link).json()["output"][0]
    assert entry["type"] == "l" and entry["link_target"] == text_file
    refused(client.post("/utilities/symlink", targetPath=text_file, linkPath=link), "X-Exists")


@pytest.mark.source(
    spec(
        "POST /utilities/upload, GET /utilities/download",
        "201; the file's bytes back; 400 with X-Invalid-Path",
    )
)
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
    refused(client.get("/utilities/download", sourcePath=f"{folder}/missing"), "X-Invalid-Path")
    # POST /utilities/upload, 400 header X-Invalid-Path (API description): no such folder.
    nowhere = client.post(
        "/utilities/upload", targetPath=f"{folder}/x", files={"file": ("a", b"a")}
    )
    refused(nowhere, "X-Invalid-Path")


@pytest.mark.source(spec("POST /utilities/upload", "files over the declared size are refused"))
@pytest.mark.covers("POST /utilities/upload")
def test_upload_over_the_size_limit_is_refused(client: Client, folder: str):
    limit = int(client.target.limits.upload_max_mb * 1024 * 1024)
    over = client.post(
        "/utilities/upload", targetPath=folder, files={"file": ("big", b"\0" * (limit + 1))}
    )
    assert over.status_code in (400, 413), over.status_code
    names = [e["name"] for e in client.get("/utilities/ls", targetPath=folder).json()["output"]]
    assert "big" not in names


@pytest.mark.source(spec("DELETE /utilities/rm", "204; 400 with X-Invalid-Path"))
@pytest.mark.covers("DELETE /utilities/rm")
def test_rm(client: Client, folder: str, text_file: str, truth: Truth):
    assert client.delete("/utilities/rm", targetPath=text_file).status_code == 204
    assert client.get("/utilities/ls", targetPath=folder).json()["output"] == []
    if (system := truth.system("the file gone on the system")) is not None:
        assert system.run(client.user, f"ls -A {folder}").text.strip() == ""
    refused(client.delete("/utilities/rm", targetPath=text_file), "X-Invalid-Path")


@pytest.mark.source(
    spec("GET /utilities/checksum", "the SHA-256 of the file; 400 with X-A-Directory")
)
@pytest.mark.covers("GET /utilities/checksum")
def test_checksum(client: Client, folder: str, text_file: str):
    summed = client.get("/utilities/checksum", targetPath=text_file)
    assert hashlib.sha256(TEXT).hexdigest() in summed.json()["output"]
    refused(client.get("/utilities/checksum", targetPath=folder), "X-A-Directory")


@pytest.mark.source(spec("GET /utilities/view", "200 with the file's text; 400 with X-A-Directory"))
@pytest.mark.covers("GET /utilities/view")
def test_view(client: Client, folder: str, text_file: str):
    assert client.get("/utilities/view", targetPath=text_file).json()["output"] == TEXT.decode()
    refused(client.get("/utilities/view", targetPath=folder), "X-A-Directory")
    made = client.post("/utilities/upload", targetPath=folder, files={"file": ("bin", NOT_TEXT)})
    assert made.status_code == 201, made.text[:200]
    binary = client.get("/utilities/view", targetPath=f"{folder}/bin")
    should(
        binary.status_code == 400,
        f"view of a file that is not text: {binary.status_code} {binary.text[:100]}",
        reference(
            "utilities.py view",
            "a file that is not UTF-8 text is refused: 400, X-Error 'utf-8' codec can't decode",
        ),
        about=binary,
    )


NOT_TEXT = bytes(range(128, 256)) * 4  # no UTF-8 text begins with a continuation byte


@pytest.mark.source(spec("GET /utilities/whoami", "the user; with groups: Whoami-Ok-With-Groups"))
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


@pytest.mark.source(
    spec("POST /utilities/compress, POST /utilities/extract", "201; 400 with X-Not-Found")
)
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
    refused(gone, "X-Not-Found")
    gone = client.post("/utilities/extract", sourcePath=f"{folder}/no.tar", targetPath=folder)
    refused(gone, "X-Not-Found")


@pytest.mark.source(
    spec(
        "GET /utilities/whoami",
        "X-Machine-Name is a required header: 400 without it; 400 with X-Machine-Does-Not-Exist"
        " for a machine that does not exist",
    )
)
@pytest.mark.covers("GET /utilities/whoami")
def test_the_machine_header_is_checked(client: Client):
    # Only the 400: the description defines X-Machine-Does-Not-Exist for a
    # machine that does not exist, not for a missing header.
    missing = client.request("GET", "/utilities/whoami", machine=False)
    assert missing.status_code == 400, (missing.status_code, missing.text[:200])
    unknown_machine_refused(client, "GET", "/utilities/whoami")


# Characters cscs_api_common.FORBIDDEN_INPUT_CHARS refuses in any input (the
# control characters are represented by TAB, LF, ESC and 0x01).
FORBIDDEN_CHARACTERS = (
    "<",
    ">",
    "|",
    ";",
    '"',
    "'",
    "&",
    "\\",
    "(",
    ")",
    "`",
    "\t",
    "\n",
    "\x1b",
    "\x01",
)
FORBIDDEN_REFUSED = reference(
    "cscs_api_common.py validate_input",
    "a path with any of < > | ; \" ' & \\ ( ) ` or a control character is refused before"
    " anything runs: 400 \"'targetPath' has invalid char\"",
)


@pytest.mark.source(FORBIDDEN_REFUSED)
@pytest.mark.covers("POST /utilities/mkdir")
def test_paths_with_characters_the_reference_refuses(client: Client, folder: str):
    for character in FORBIDDEN_CHARACTERS:
        answer = client.post("/utilities/mkdir", targetPath=f"{folder}/a{character}b")
        should(
            answer.status_code == 400,
            f"mkdir of a name with {character!r}: {answer.status_code}",
            FORBIDDEN_REFUSED,
            about=answer,
        )
    listing = client.get("/utilities/ls", targetPath=folder)
    must(listing.status_code == 200, listing.text[:200], LS_LISTS, about=listing)
    made = [entry["name"] for entry in listing.json()["output"]]
    assert made == [], f"folders made with forbidden characters: {made}"


LS_LISTS = spec("GET /utilities/ls", "200 with the folder's entries")
