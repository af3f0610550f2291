"""Every utilities endpoint: a success checked on the cluster, and its main errors."""

from __future__ import annotations

import hashlib
import io
import tarfile
import uuid

import pytest

from firecrest_testbuild.harness.environment import Environment
from firecrest_testbuild.harness.ssh import LoginNode
from tests.integration.api import Api

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(environment: Environment) -> Api:
    return Api.for_user(environment, "test1")


@pytest.fixture
def work(login: LoginNode):
    """A fresh folder of test1's, with a text file `f.txt` in it."""
    path = f"/home/test1/utilities-{uuid.uuid4().hex[:8]}"
    made = login.run("test1", f"mkdir {path} && echo -e 'one\\ntwo\\nthree' > {path}/f.txt")
    assert made.exit_status == 0, made.stderr
    yield path
    login.run("test1", f"rm -rf {path}")


def on_cluster(login: LoginNode, command: str) -> str:
    result = login.run("test1", command)
    assert result.exit_status == 0, result.stderr
    return result.stdout


def error_header(response, header: str) -> str:
    assert response.status_code == 400, (response.status_code, response.text)
    assert header in response.headers, dict(response.headers)
    return response.headers[header]


def test_ls_hidden_numeric_and_recursive(api: Api, login: LoginNode, work: str):
    on_cluster(login, f"mkdir {work}/sub && touch {work}/.hidden {work}/sub/inner 'x y'")
    plain = api.get("/utilities/ls", targetPath=work).json()["output"]
    assert sorted(entry["name"] for entry in plain) == ["f.txt", "sub"]
    entry = next(e for e in plain if e["name"] == "f.txt")
    assert entry["type"] == "-" and entry["size"] == "14" and entry["user"] == "test1"
    assert entry["permissions"] == "rw-r--r--"
    hidden = api.get("/utilities/ls", targetPath=work, showhidden="true").json()["output"]
    assert ".hidden" in {e["name"] for e in hidden}
    numeric = api.get("/utilities/ls", targetPath=work, numericUid="true").json()["output"]
    assert {e["user"] for e in numeric} == {"1001"}
    recursive = api.get("/utilities/ls", targetPath=work, recursive="true").json()["output"]
    assert "sub/inner" in {e["name"] for e in recursive}
    bad = api.get("/utilities/ls", targetPath=work, recursive="maybe")
    assert bad.status_code == 400 and "recursive" in bad.json()["error"]


def test_mkdir_with_and_without_parents(api: Api, login: LoginNode, work: str):
    assert api.post("/utilities/mkdir", targetPath=f"{work}/a/b", p="true").status_code == 201
    assert on_cluster(login, f"stat -c %F {work}/a/b").strip() == "directory"
    orphan = api.post("/utilities/mkdir", targetPath=f"{work}/x/y")
    assert error_header(orphan, "X-Invalid-Path") == f"{work}/x/y is an invalid path"
    again = api.post("/utilities/mkdir", targetPath=f"{work}/a")
    assert error_header(again, "X-Exists") == f"{work}/a already exists"
    elsewhere = api.post("/utilities/mkdir", targetPath="/home/test2/intruder")
    error_header(elsewhere, "X-Permission-Denied")


def test_rename_and_its_missing_source(api: Api, login: LoginNode, work: str):
    moved = api.put("/utilities/rename", sourcePath=f"{work}/f.txt", targetPath=f"{work}/g.txt")
    assert moved.status_code == 200
    assert on_cluster(login, f"ls {work}").split() == ["g.txt"]
    missing = api.put("/utilities/rename", sourcePath=f"{work}/nope", targetPath=f"{work}/h")
    assert error_header(missing, "X-Not-Found") == f"{work}/nope not found"


def test_chmod_and_an_invalid_mode(api: Api, login: LoginNode, work: str):
    changed = api.put("/utilities/chmod", targetPath=f"{work}/f.txt", mode="700")
    assert changed.status_code == 200 and "0700" in changed.json()["output"]
    assert on_cluster(login, f"stat -c %a {work}/f.txt").strip() == "700"
    error_header(
        api.put("/utilities/chmod", targetPath=f"{work}/f.txt", mode="9z"), "X-Invalid-Mode"
    )
    gone = api.put("/utilities/chmod", targetPath=f"{work}/nope", mode="700")
    error_header(gone, "X-Invalid-Path")


def test_chown_to_oneself_others_and_nobody(api: Api, login: LoginNode, work: str):
    group = on_cluster(login, "id -gn").strip()
    same = api.put("/utilities/chown", targetPath=f"{work}/f.txt", owner="test1", group=group)
    assert same.status_code == 200
    given = api.put("/utilities/chown", targetPath=f"{work}/f.txt", owner="test2")
    error_header(given, "X-Permission-Denied")
    assert on_cluster(login, f"stat -c %U {work}/f.txt").strip() == "test1"
    nobody = api.put("/utilities/chown", targetPath=f"{work}/f.txt", owner="no-such-user")
    error_header(nobody, "X-Invalid-Owner")
    error_header(api.put("/utilities/chown", targetPath=f"{work}/f.txt"), "X-Invalid-Owner")


def test_copy_and_its_missing_source(api: Api, login: LoginNode, work: str):
    copied = api.post("/utilities/copy", sourcePath=f"{work}/f.txt", targetPath=f"{work}/c.txt")
    assert copied.status_code == 201
    assert on_cluster(login, f"cat {work}/c.txt") == "one\ntwo\nthree\n"
    missing = api.post("/utilities/copy", sourcePath=f"{work}/nope", targetPath=f"{work}/d")
    error_header(missing, "X-Not-Found")
    no_folder = api.post("/utilities/copy", sourcePath=f"{work}/f.txt", targetPath=f"{work}/x/y")
    error_header(no_folder, "X-Invalid-Path")


def test_file_type(api: Api, work: str):
    typed = api.get("/utilities/file", targetPath=f"{work}/f.txt")
    assert typed.status_code == 200 and typed.json()["output"] == "ASCII text"
    error_header(api.get("/utilities/file", targetPath=f"{work}/nope"), "X-Invalid-Path")


def test_head_and_tail_by_lines_bytes_and_grep(api: Api, work: str):
    path = f"{work}/f.txt"
    assert api.get("/utilities/head", targetPath=path, lines="1").json()["output"] == "one\n"
    assert api.get("/utilities/head", targetPath=path, bytes="2").json()["output"] == "on"
    skip = api.get("/utilities/head", targetPath=path, lines="1", skip_ending="true")
    assert skip.json()["output"] == "one\ntwo\n"
    assert api.get("/utilities/tail", targetPath=path, lines="1").json()["output"] == "three\n"
    rest = api.get("/utilities/tail", targetPath=path, lines="2", skip_beginning="true")
    assert rest.json()["output"] == "two\nthree\n"
    grep = api.get("/utilities/head", targetPath=path, grep="t")
    assert grep.json()["output"] == "two\nthree\n"
    both = api.get("/utilities/head", targetPath=path, lines="1", bytes="1")
    assert both.status_code == 400
    error_header(api.get("/utilities/tail", targetPath=f"{work}/nope"), "X-Invalid-Path")


def test_stat_follows_links_when_asked(api: Api, login: LoginNode, work: str):
    on_cluster(login, f"ln -s f.txt {work}/link")
    stat = api.get("/utilities/stat", targetPath=f"{work}/f.txt").json()["output"]
    truth = on_cluster(login, f"stat -c '%s %u %i' {work}/f.txt").split()
    assert [stat["size"], stat["uid"], stat["ino"]] == [int(v) for v in truth]
    assert stat["mode"] & 0o170000 == 0o100000  # a regular file
    link = api.get("/utilities/stat", targetPath=f"{work}/link").json()["output"]
    assert link["mode"] & 0o170000 == 0o120000  # the link itself
    followed = api.get("/utilities/stat", targetPath=f"{work}/link", dereference="true")
    assert followed.json()["output"]["ino"] == stat["ino"]
    error_header(api.get("/utilities/stat", targetPath=f"{work}/nope"), "X-Invalid-Path")


def test_symlink_and_an_existing_link_path(api: Api, login: LoginNode, work: str):
    made = api.post("/utilities/symlink", targetPath=f"{work}/f.txt", linkPath=f"{work}/l")
    assert made.status_code == 201
    assert on_cluster(login, f"stat -c %N {work}/l").strip() == f"'{work}/l' -> '{work}/f.txt'"
    again = api.post("/utilities/symlink", targetPath=f"{work}/f.txt", linkPath=f"{work}/l")
    error_header(again, "X-Exists")


def test_download_small_and_too_big(api: Api, login: LoginNode, work: str):
    got = api.get("/utilities/download", sourcePath=f"{work}/f.txt")
    assert got.status_code == 200 and got.content == b"one\ntwo\nthree\n"
    on_cluster(login, f"head -c 5242881 /dev/zero > {work}/big")
    too_big = api.get("/utilities/download", sourcePath=f"{work}/big")
    error_header(too_big, "X-Size-Limit")
    error_header(api.get("/utilities/download", sourcePath=f"{work}/nope"), "X-Invalid-Path")


def test_upload_limits_and_targets(api: Api, login: LoginNode, work: str):
    exact = b"\x00\xff" * (5 * 1024 * 1024 // 2)  # exactly the limit, binary
    done = api.post("/utilities/upload", targetPath=work, files={"file": ("bin", exact)})
    assert done.status_code == 201
    digest = on_cluster(login, f"sha256sum {work}/bin").split()[0]
    assert digest == hashlib.sha256(exact).hexdigest()
    over = api.post("/utilities/upload", targetPath=work, files={"file": ("over", exact + b"!")})
    error_header(over, "X-Size-Limit")
    assert "over" not in on_cluster(login, f"ls {work}").split()
    nowhere = api.post("/utilities/upload", targetPath=f"{work}/x", files={"file": ("a", b"a")})
    error_header(nowhere, "X-Invalid-Path")
    other = api.post("/utilities/upload", targetPath="/home/test2", files={"file": ("a", b"a")})
    error_header(other, "X-Permission-Denied")
    no_file = api.post("/utilities/upload", targetPath=work)
    assert no_file.status_code == 400 and "file" in no_file.json()["error"]


def test_rm_and_a_missing_path(api: Api, login: LoginNode, work: str):
    removed = api.delete("/utilities/rm", targetPath=f"{work}/f.txt")
    assert removed.status_code == 204 and removed.content == b""
    assert on_cluster(login, f"ls -A {work}").split() == []
    error_header(api.delete("/utilities/rm", targetPath=f"{work}/f.txt"), "X-Invalid-Path")


def test_checksum_and_a_directory(api: Api, work: str):
    summed = api.get("/utilities/checksum", targetPath=f"{work}/f.txt")
    assert summed.json()["output"] == hashlib.sha256(b"one\ntwo\nthree\n").hexdigest()
    error_header(api.get("/utilities/checksum", targetPath=work), "X-A-Directory")


def test_view_text_directory_and_size_limit(api: Api, login: LoginNode, work: str):
    assert api.get("/utilities/view", targetPath=f"{work}/f.txt").json()["output"] == (
        "one\ntwo\nthree\n"
    )
    error_header(api.get("/utilities/view", targetPath=work), "X-A-Directory")
    on_cluster(login, f"head -c 5242881 /dev/zero > {work}/big")
    error_header(api.get("/utilities/view", targetPath=f"{work}/big"), "X-Size-Limit")


def test_whoami_with_and_without_groups(api: Api, login: LoginNode):
    assert api.get("/utilities/whoami").json()["output"] == "test1"
    groups = api.get("/utilities/whoami", groups="true").json()["output"]
    assert groups["user"] == {"id": "1001", "name": "test1"}
    assert groups["group"]["id"] == on_cluster(login, "id -g").strip()
    assert groups["group"] in groups["groups"]


def test_compress_and_extract_round_trip(api: Api, login: LoginNode, work: str):
    archive = f"{work}/f.tar.gz"
    made = api.post("/utilities/compress", sourcePath=f"{work}/f.txt", targetPath=archive)
    assert made.status_code == 201
    tar_bytes = api.get("/utilities/download", sourcePath=archive).content
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        assert tar.getnames() == ["f.txt"]
    on_cluster(login, f"mkdir {work}/out")
    unpacked = api.post("/utilities/extract", sourcePath=archive, targetPath=f"{work}/out")
    assert unpacked.status_code == 201
    assert on_cluster(login, f"cat {work}/out/f.txt") == "one\ntwo\nthree\n"
    missing = api.post("/utilities/compress", sourcePath=f"{work}/nope", targetPath=archive)
    error_header(missing, "X-Not-Found")
    gone = api.post("/utilities/extract", sourcePath=f"{work}/nope.tar", targetPath=work)
    error_header(gone, "X-Not-Found")


def test_a_path_through_a_file_is_not_a_directory(api: Api, work: str):
    through = api.get("/utilities/stat", targetPath=f"{work}/f.txt/inner")
    assert error_header(through, "X-Not-A-Directory") == f"{work}/f.txt/inner is not a directory"


def test_a_command_that_outlives_the_time_limit_times_out(
    api: Api, environment: Environment, work: str
):
    # Reading a FIFO nobody writes to blocks until `timeout` ends it.
    controller = environment.runtime.container("controller")
    made = controller.exec_run(["bash", "-c", f"mkfifo {work}/fifo && chown test1 {work}/fifo"])
    assert made.exit_code == 0, made.output
    blocked = api.get("/utilities/head", targetPath=f"{work}/fifo")
    assert error_header(blocked, "X-Timeout") == "Command has finished with timeout signal"


def test_machine_header_missing_or_unknown(api: Api):
    missing = api.request("GET", "/utilities/whoami", machine=False)
    error_header(missing, "X-Machine-Does-Not-Exist")
    unknown = api.request(
        "GET", "/utilities/whoami", machine=False, headers={"X-Machine-Name": "nosuchmachine"}
    )
    assert error_header(unknown, "X-Machine-Does-Not-Exist") == (
        "Machine nosuchmachine does not exist"
    )
