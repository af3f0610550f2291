"""Utilities: what the conformance suites (scenarios/test_utilities.py, run
against the stack by test_conformance.py) cannot check: the stack's size
limit and command time limit as configured, and its own answers where the
API description is silent. Checked on the cluster behind the API."""

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

TEXT = b"one\ntwo\nthree\n"


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


def test_the_configured_size_limit_of_upload_download_and_view(
    api: Api, environment: Environment, login: LoginNode, work: str
):
    limit = int(environment.config.stack.max_file_size_mb * 1024 * 1024)
    exact = b"\x00\xff" * (limit // 2)  # exactly the limit, binary
    done = api.post("/utilities/upload", targetPath=work, files={"file": ("bin", exact)})
    assert done.status_code == 201
    digest = on_cluster(login, f"sha256sum {work}/bin").split()[0]
    assert digest == hashlib.sha256(exact).hexdigest()
    over = api.post("/utilities/upload", targetPath=work, files={"file": ("over", exact + b"!")})
    error_header(over, "X-Size-Limit")
    assert "over" not in on_cluster(login, f"ls {work}").split()
    on_cluster(login, f"head -c {limit + 1} /dev/zero > {work}/big")
    error_header(api.get("/utilities/download", sourcePath=f"{work}/big"), "X-Size-Limit")
    error_header(api.get("/utilities/view", targetPath=f"{work}/big"), "X-Size-Limit")


def test_a_command_that_outlives_the_time_limit_times_out(
    api: Api, environment: Environment, work: str
):
    # Reading a FIFO nobody writes to blocks until `timeout` ends it.
    controller = environment.runtime.container("controller")
    made = controller.exec_run(["bash", "-c", f"mkfifo {work}/fifo && chown test1 {work}/fifo"])
    assert made.exit_code == 0, made.output
    blocked = api.get("/utilities/head", targetPath=f"{work}/fifo")
    assert error_header(blocked, "X-Timeout") == "Command has finished with timeout signal"


def test_the_stacks_own_answers_where_the_api_description_is_silent(api: Api, work: str):
    path = f"{work}/f.txt"
    # Parameters are checked before anything runs, and the error names them.
    bad = api.get("/utilities/ls", targetPath=work, recursive="maybe")
    assert bad.status_code == 400 and "recursive" in bad.json()["error"]
    no_file = api.post("/utilities/upload", targetPath=work)
    assert no_file.status_code == 400 and "file" in no_file.json()["error"]
    error_header(api.put("/utilities/chown", targetPath=path), "X-Invalid-Owner")
    # Outputs as FirecREST v1 gives them: chmod's verbose line, `file -b`,
    # the bare SHA-256, archive members relative to the source's folder.
    changed = api.put("/utilities/chmod", targetPath=path, mode="700")
    assert changed.status_code == 200 and "0700" in changed.json()["output"]
    assert api.get("/utilities/file", targetPath=path).json()["output"] == "ASCII text"
    summed = api.get("/utilities/checksum", targetPath=path).json()["output"]
    assert summed == hashlib.sha256(TEXT).hexdigest()
    archive = f"{work}/f.tar.gz"
    assert api.post("/utilities/compress", sourcePath=path, targetPath=archive).status_code == 201
    packed = api.get("/utilities/download", sourcePath=archive).content
    with tarfile.open(fileobj=io.BytesIO(packed)) as tar:
        assert tar.getnames() == ["f.txt"]
    # The header texts follow the description's "<oldpath> not found".
    missing = api.put("/utilities/rename", sourcePath=f"{work}/nope", targetPath=f"{work}/h")
    assert error_header(missing, "X-Not-Found") == f"{work}/nope not found"


# What FirecREST v1 refuses in a path (its FORBIDDEN_INPUT_CHARS).
FORBIDDEN = ["<", ">", "|", ";", '"', "'", "&", "\\", "(", ")", "`", "\t", "\n", "\x01"]


def test_paths_with_characters_the_reference_refuses_make_nothing(
    api: Api, login: LoginNode, work: str
):
    source = f"{work}/f.txt"
    for char in FORBIDDEN:
        name = f"{work}/x{char}y"
        for method, path, form in (
            ("POST", "/utilities/mkdir", {"targetPath": name}),
            ("POST", "/utilities/copy", {"sourcePath": source, "targetPath": name}),
            ("PUT", "/utilities/rename", {"sourcePath": source, "targetPath": name}),
            ("POST", "/utilities/symlink", {"targetPath": source, "linkPath": name}),
            ("POST", "/utilities/compress", {"sourcePath": source, "targetPath": name}),
        ):
            refused = api.request(method, path, data=form)
            assert refused.status_code == 400, (char, path, refused.text)
            assert refused.json()["error"].endswith("' has invalid char"), (char, path)
        # Not '"' and newline, which the client sends as %22 and %0A.
        if char not in '"\n':
            upload = api.post(
                "/utilities/upload", targetPath=work, files={"file": (f"u{char}.txt", b"x")}
            )
            assert upload.status_code == 400, (char, upload.text)
    # The truth on the cluster: the folder holds what it held.
    assert on_cluster(login, f"ls -A {work}").split("\n") == ["f.txt", ""]
    # `$` is not refused (FirecREST v1's own test makes "/tmp/f7t-$UID"):
    # the name is made as given, never expanded.
    made = api.post("/utilities/mkdir", targetPath=f"{work}/d$HOME")
    assert made.status_code == 201, made.text
    assert on_cluster(login, f"ls -A {work}").split() == ["d$HOME", "f.txt"]


def test_view_refuses_a_file_that_is_not_text(api: Api, login: LoginNode, work: str):
    on_cluster(login, f"echo -ne '\\x89PNG\\r\\n\\x1a\\n' > {work}/image.png")
    for path in (f"{work}/image.png", "/usr/bin/wc"):  # FirecREST v1's test: /bin/wc
        refused = api.get("/utilities/view", targetPath=path)
        assert error_header(refused, "X-Error").startswith(f"{path} is not a text file")
    on_cluster(login, f"echo -e 'caf\\xc3\\xa9' > {work}/cafe.txt")
    text = api.get("/utilities/view", targetPath=f"{work}/cafe.txt")
    assert (text.status_code, text.json()["output"]) == (200, "café\n")


def test_head_and_tail_with_a_grep_that_matches_nothing(api: Api, work: str):
    path = f"{work}/f.txt"
    for program in ("head", "tail"):
        # Fixed strings only (the API description): "t.o" is not a pattern for "two".
        missed = api.get(f"/utilities/{program}", targetPath=path, grep="t.o")
        assert missed.status_code == 404, missed.text
        assert missed.headers["X-Not-Found"] == "pattern not found"
        assert missed.json() == {
            "description": f"Error on {program} operation with grep",
            "error": "pattern not found",
        }
        found = api.get(f"/utilities/{program}", targetPath=path, grep="tw")
        assert (found.status_code, found.json()["output"]) == (200, "two\n")
    gone = api.get("/utilities/head", targetPath=f"{work}/missing", grep="x")
    error_header(gone, "X-Invalid-Path")
