"""Where the API description is silent, the stack answers as FirecREST v1.16
(the reference) does: the whole application on fakes (a fake system
answering each command, a fake Redis), one test or more per behaviour, each
naming what the reference answers (stack/README.md lists them)."""

from __future__ import annotations

import io
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from flask.testing import FlaskClient

from firecrest_testbuild.common.sshexec import Output
from firecrest_testbuild.stack import slurm
from firecrest_testbuild.stack.app import create_app
from firecrest_testbuild.stack.context import StackContext
from tests.unit.test_stack_fakes import FakeRedis, FakeShell, config, eventually
from tests.unit.test_stack_storage import ca_key  # noqa: F401  (a fixture)

HEADERS = {"Authorization": "Bearer token", "X-Machine-Name": "cluster"}
SERVICES = ["compute", "status", "storage", "tasks", "utilities"]

# What FirecREST v1 refuses (cscs_api_common.FORBIDDEN_INPUT_CHARS).
FORBIDDEN = ["<", ">", "|", ";", '"', "'", "&", "\\", "(", ")", "`", "\t", "\n", "\x01", "\x1f"]
# What it lets through (the `$` of its own test "/tmp/f7t-$UID" among them).
ALLOWED = ["$", "*", "?", "[", "]", "{", "}", "!", "#", "~", " ", "é"]

# Slurm 22.05's `scontrol -a -o show nodes`: two spaces after Partitions.
NODES = (
    "NodeName=c1 Arch=x86_64 CoresPerSocket=1 CPUAlloc=0 CPUTot=2 AvailableFeatures=(null) "
    "ActiveFeatures=(null) Gres=(null) NodeAddr=c1 NodeHostName=c1 Version=22.05.8 "
    "OS=Linux 6.1.0 #1 SMP RealMemory=1000 AllocMem=0 FreeMem=N/A Sockets=2 Boards=1 "
    "State=IDLE ThreadsPerCore=1 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A "
    "Partitions=part01,part02,xfer  BootTime=2026-11-29T10:00:00 "
    "SlurmdStartTime=2026-11-29T10:00:01 LastBusyTime=2026-11-29T10:00:02 "
    "CfgTRES=cpu=2,mem=1000M,billing=2 AllocTRES= CapWatts=n/a CurrentWatts=0 "
    "AveWatts=0 ExtSensorsJoules=n/s ExtSensorsWatts=0 ExtSensorsTemp=n/s \n"
)
PARTITIONS = "".join(
    f"PartitionName={name} AllowGroups=ALL Default={default} State=UP TotalCPUs=4 "
    "TotalNodes=2 SelectTypeParameters=NONE \n"
    for name, default in (("part01", "YES"), ("part02", "NO"), ("xfer", "NO"))
)
RESERVATIONS = (
    "ReservationName=maint StartTime=2026-12-01T10:00:00 EndTime=2026-12-01T11:00:00 "
    "Duration=01:00:00 Nodes=c1 NodeCnt=1 CoreCnt=2 Features=f7t PartitionName=(null) "
    "Flags=MAINT State=INACTIVE \n"
)


def probe(command: str) -> Output:
    """`stat` and `test -r` of a path on the fake system, as commands.probe runs them."""
    path = re.match(r"stat -c %F -- '?([^';]*)", command).group(1)  # type: ignore[union-attr]
    if "missing" in path:
        return Output(0, b"", "stat: cannot statx: No such file or directory\n")
    if "hidden" in path:
        return Output(0, b"", "stat: cannot statx: Permission denied\n")
    if "locked" in path:
        return Output(0, b"regular file\n", "")
    if path.endswith("dir"):
        return Output(0, b"directory\nreadable\nwritable\n", "")
    return Output(0, b"regular file\nreadable\nwritable\n", "")


def grep(command: str) -> Output:
    """head or tail piped through grep: exit 1 and no output when nothing matches."""
    if "nomatch" in command:
        return Output(1, b"", "")
    return Output(0, b"two\n", "")


@pytest.fixture
def stack(ca_key: Path) -> Iterator[SimpleNamespace]:  # noqa: F811
    stack_config = config(ssh={"caPrivateKey": str(ca_key)}, services=SERVICES)
    app = create_app(stack_config, FakeRedis())  # type: ignore[arg-type]
    context: StackContext = app.extensions["stack"]
    shell = FakeShell(
        {
            "stat -c %F": probe,
            "head -c 5242881 -- /home/test1/image.png": Output(0, b"\x89PNG\r\n\x1a\n\x00", ""),
            "head -c 5242881 -- /home/test1/cafe.txt": Output(0, "café\n".encode(), ""),
            "head -n": grep,
            "tail -n": grep,
            "mkdir": Output(0, b"/home/test1\n", ""),
            "sbatch": Output(0, b"42\n", ""),
            "scancel": Output(0, b"", "scancel: Terminating job 1\n"),
            "scontrol -a -o show nodes": Output(0, NODES.encode(), ""),
            "scontrol -a -o show partitions": Output(0, PARTITIONS.encode(), ""),
            "scontrol -a -o show reservations": Output(0, RESERVATIONS.encode(), ""),
        }
    )
    context.verifier = SimpleNamespace(user_of=lambda header: "test1")  # type: ignore[assignment]
    context.shell = shell  # type: ignore[assignment]
    yield SimpleNamespace(client=app.test_client(), context=context, shell=shell)
    assert context.transfers is not None
    context.transfers.stop.set()


def call(client: FlaskClient, method: str, path: str, **values: Any) -> Any:
    """A request with the form (POST, PUT, DELETE) or query (GET) `values`."""
    where = "query_string" if method == "GET" else "data"
    return client.open(path, method=method, headers=HEADERS, **{where: values})


def task_of(stack: SimpleNamespace, answer: Any) -> dict[str, Any]:
    """The task an answer created, once its work is done."""
    assert answer.status_code in (200, 201), answer.get_json()
    task_id = answer.get_json()["task_id"]
    store = stack.context.store
    eventually(lambda: store.get("test1", task_id)["status"] in ("200", "400"))
    return store.get("test1", task_id)


def x_headers(answer: Any) -> dict[str, str]:
    return {name: value for name, value in answer.headers.items() if name.startswith("X-")}


# Forbidden characters: 400 "'<param>' has invalid char", no header, nothing run.

SCREENED = [
    ("POST", "/utilities/mkdir", "targetPath", {}),
    ("GET", "/utilities/ls", "targetPath", {}),
    ("PUT", "/utilities/rename", "targetPath", {"sourcePath": "/home/test1/a"}),
    ("PUT", "/utilities/rename", "sourcePath", {"targetPath": "/home/test1/b"}),
    ("POST", "/utilities/copy", "targetPath", {"sourcePath": "/home/test1/a"}),
    ("POST", "/utilities/symlink", "linkPath", {"targetPath": "/home/test1/a"}),
    ("PUT", "/utilities/chmod", "mode", {"targetPath": "/home/test1/a"}),
    ("GET", "/utilities/view", "targetPath", {}),
    ("GET", "/utilities/download", "sourcePath", {}),
    ("POST", "/compute/jobs/path", "targetPath", {}),
    ("POST", "/storage/xfer-internal/cp", "targetPath", {"sourcePath": "/home/test1/a"}),
    ("POST", "/storage/xfer-internal/rm", "targetPath", {}),
    ("POST", "/storage/xfer-external/download", "sourcePath", {}),
    ("POST", "/storage/xfer-external/upload", "targetPath", {"sourcePath": "f"}),
]


@pytest.mark.parametrize(
    ("method", "path", "name", "others"), SCREENED, ids=[f"{s[1]}-{s[2]}" for s in SCREENED]
)
def test_a_forbidden_character_is_refused_before_anything_runs(
    stack: SimpleNamespace, method: str, path: str, name: str, others: dict
):
    for char in FORBIDDEN:
        value = "7" + char if name == "mode" else f"/home/test1/a{char}b"
        answer = call(stack.client, method, path, **{name: value}, **others)
        assert answer.status_code == 400, repr(char)
        assert answer.get_json()["error"] == f"'{name}' has invalid char", repr(char)
        assert x_headers(answer) == {}, repr(char)
    assert stack.shell.commands == []
    assert stack.context.store.of_user("test1") == {}


def test_characters_the_reference_allows_reach_the_system_quoted(stack: SimpleNamespace):
    for char in ALLOWED:
        target = f"/home/test1/a{char}b"
        answer = call(stack.client, "POST", "/utilities/mkdir", targetPath=target)
        assert answer.status_code == 201, (char, answer.get_json())
        assert stack.shell.commands[-1] == f"mkdir -- {shlex.quote(target)}"


@pytest.mark.parametrize("name", ["a;b.txt", "a`b`.txt", "a|b.txt", "(a).txt"])
def test_upload_refuses_a_file_name_with_a_forbidden_character(stack: SimpleNamespace, name: str):
    answer = stack.client.post(
        "/utilities/upload",
        data={"targetPath": "/home/test1", "file": (io.BytesIO(b"x"), name)},
        headers=HEADERS,
    )
    assert (answer.status_code, answer.get_json()["error"]) == (400, "Filename has invalid char")
    assert stack.shell.commands == []


def test_an_external_upload_screens_the_name_it_gives_the_file(stack: SimpleNamespace):
    refused = call(
        stack.client,
        "POST",
        "/storage/xfer-external/upload",
        sourcePath="C:\\data\\a&b.bin",
        targetPath="/home/test1",
    )
    assert (refused.status_code, refused.get_json()["error"]) == (
        400,
        "'sourcePath' has invalid char",
    )
    assert stack.context.store.of_user("test1") == {}


@pytest.mark.parametrize(
    ("path", "query", "error"),
    [
        ("/compute/nodes", {"nodes": "c1;x"}, "node 'c1;x' has invalid char"),
        ("/compute/nodes/c1(x)", {}, "nodeName 'c1(x)' has invalid char"),
        ("/compute/partitions", {"partitions": "p|x"}, "partition 'p|x' has invalid char"),
        ("/compute/reservations", {"reservations": "r&x"}, "reservations 'r&x' has invalid char"),
        ("/compute/jobs", {"jobs": "1;2"}, "'jobs' has invalid char"),
        ("/compute/acct", {"jobs": "1'"}, "'jobs' has invalid char"),
        ("/compute/jobs/1`id`", {}, "'jobid' has invalid char"),
    ],
)
def test_compute_names_and_ids_are_screened_with_the_references_words(
    stack: SimpleNamespace, path: str, query: dict[str, str], error: str
):
    answer = call(stack.client, "GET", path, **query)
    assert (answer.status_code, answer.get_json()["error"]) == (400, error)
    assert stack.context.store.of_user("test1") == {}


# GET /utilities/view of a file that is not text.


def test_view_of_a_file_that_is_not_utf8_text_is_a_400_saying_so(stack: SimpleNamespace):
    answer = call(stack.client, "GET", "/utilities/view", targetPath="/home/test1/image.png")
    assert answer.status_code == 400
    assert answer.get_json()["description"] == "Failed to view file content"
    assert answer.headers["X-Error"] == answer.get_json()["error"]
    assert answer.headers["X-Error"].startswith("/home/test1/image.png is not a text file")
    text = call(stack.client, "GET", "/utilities/view", targetPath="/home/test1/cafe.txt")
    assert (text.status_code, text.get_json()["output"]) == (200, "café\n")


# POST /compute/jobs/path: the script is checked before any task exists.


@pytest.mark.parametrize(
    ("script", "header", "text"),
    [
        ("/home/test1/missing.sh", "X-Invalid-Path", "/home/test1/missing.sh is an invalid path"),
        (
            "/home/test1/locked.sh",
            "X-Permission-Denied",
            "User does not have permissions to access machine or path",
        ),
        (
            "/hidden/job.sh",
            "X-Permission-Denied",
            "User does not have permissions to access machine or path",
        ),
        ("/home/test1/dir", "X-A-Directory", "/home/test1/dir is a directory"),
    ],
)
def test_a_script_submitted_by_path_is_checked_before_the_task(
    stack: SimpleNamespace, script: str, header: str, text: str
):
    answer = call(stack.client, "POST", "/compute/jobs/path", targetPath=script)
    assert answer.status_code == 400
    assert x_headers(answer) == {header: text}
    assert stack.context.store.of_user("test1") == {}
    assert not any(command.startswith("sbatch") for command in stack.shell.commands)


def test_a_readable_script_is_submitted_from_its_folder(stack: SimpleNamespace):
    answer = call(stack.client, "POST", "/compute/jobs/path", targetPath="/home/test1/job.sh")
    assert answer.status_code == 201
    assert task_of(stack, answer)["data"]["jobid"] == 42
    assert "sbatch --parsable --chdir=/home/test1  -- /home/test1/job.sh" in stack.shell.commands


# account="" and GET /tasks?tasks=


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/compute/jobs/path", {"targetPath": "/home/test1/job.sh"}),
        ("/storage/xfer-internal/cp", {"sourcePath": "/home/test1/a", "targetPath": "/home/dir"}),
        ("/storage/xfer-internal/rm", {"targetPath": "/home/test1/a"}),
    ],
)
def test_an_empty_account_is_a_400(stack: SimpleNamespace, path: str, form: dict[str, str]):
    answer = call(stack.client, "POST", path, account="", **form)
    assert (answer.status_code, answer.get_json()["error"]) == (400, "'account' is empty")
    assert stack.context.store.of_user("test1") == {}


def test_an_empty_account_is_a_400_for_an_uploaded_job_too(stack: SimpleNamespace):
    answer = stack.client.post(
        "/compute/jobs/upload",
        data={"account": "", "file": (io.BytesIO(b"#!/bin/bash\n"), "j.sh")},
        headers=HEADERS,
    )
    assert (answer.status_code, answer.get_json()["error"]) == (400, "'account' is empty")


def test_the_tasks_filter_is_screened_like_the_references(stack: SimpleNamespace):
    mine = task_of(stack, call(stack.client, "GET", "/compute/partitions"))["task_id"]
    empty = stack.client.get("/tasks?tasks=", headers=HEADERS)
    assert (empty.status_code, empty.get_json()["error"]) == (400, "'tasks' is empty")
    invalid = stack.client.get("/tasks?tasks=a;b", headers=HEADERS)
    assert (invalid.status_code, invalid.get_json()["error"]) == (400, "'tasks' has invalid char")
    # Well-formed but no task of the user's: selects nothing, as the reference.
    unknown = stack.client.get(f"/tasks?tasks=nope,,{'0' * 32}", headers=HEADERS)
    assert (unknown.status_code, unknown.get_json()) == (200, {"tasks": {}})
    chosen = stack.client.get(f"/tasks?tasks=nope,{mine}", headers=HEADERS)
    assert list(chosen.get_json()["tasks"]) == [mine]


def test_another_users_task_is_forbidden_and_an_unknown_one_not_found(stack: SimpleNamespace):
    theirs = stack.context.store.create("test2", "compute", "cluster")["hash_id"]
    foreign = stack.client.get(f"/tasks/{theirs}", headers=HEADERS)
    assert (foreign.status_code, foreign.get_json()) == (
        403,
        {"description": "Operation not permitted. Invalid task owner."},
    )
    unknown = stack.client.get(f"/tasks/{'0' * 32}", headers=HEADERS)
    assert (unknown.status_code, unknown.get_json()["error"]) == (
        404,
        f"Task {'0' * 32} does not exist",
    )


# DELETE /compute/jobs/{jobid}: a list, as scancel takes.


def test_cancelling_a_list_of_jobs_passes_each_to_scancel(stack: SimpleNamespace):
    answer = call(stack.client, "DELETE", "/compute/jobs/1,2,3")
    assert answer.status_code == 200
    assert task_of(stack, answer)["status"] == "200"
    assert "scancel -v 1 2 3" in stack.shell.commands


@pytest.mark.parametrize("jobid", ["not-a-job", "1,,2", "1,x", "1_"])
def test_a_malformed_job_id_is_refused_at_once(stack: SimpleNamespace, jobid: str):
    answer = call(stack.client, "DELETE", f"/compute/jobs/{jobid}")
    assert answer.status_code == 400
    assert stack.context.store.of_user("test1") == {}


# Nodes, partitions and reservations.


def test_node_partitions_carry_no_trailing_space(stack: SimpleNamespace):
    [node] = task_of(stack, call(stack.client, "GET", "/compute/nodes"))["data"]
    assert node == {
        "NodeName": "c1",
        "State": ["IDLE"],
        "Partitions": ["part01", "part02", "xfer"],
        "ActiveFeatures": [],
    }


def test_scontrol_values_are_stripped_of_the_spaces_between_fields():
    [record] = slurm.parse_records(NODES)
    assert record["Partitions"] == "part01,part02,xfer"
    assert record["ExtSensorsTemp"] == "n/s"
    assert record["OS"] == "Linux 6.1.0 #1 SMP"


@pytest.mark.parametrize(
    ("path", "query", "names"),
    [
        ("/compute/partitions", "partitions=nope", []),
        ("/compute/partitions", "partitions=xfer,nope", ["xfer"]),
        ("/compute/reservations", "reservations=nope", []),
        ("/compute/reservations", "reservations=maint", ["maint"]),
        ("/compute/reservations", "partitions=nope", []),
    ],
)
def test_partitions_and_reservations_filtered_by_unknown_names_are_empty(
    stack: SimpleNamespace, path: str, query: str, names: list[str]
):
    task = task_of(stack, stack.client.get(f"{path}?{query}", headers=HEADERS))
    assert task["status"] == "200", task
    key = "PartitionName" if "partitions" in path else "ReservationName"
    assert [record[key] for record in task["data"]] == names


def test_an_unknown_node_still_fails_the_task(stack: SimpleNamespace):
    task = task_of(stack, call(stack.client, "GET", "/compute/nodes/nope"))
    assert (task["status"], task["data"]) == ("400", "Nodes not found: nope")


# head and tail with grep.


@pytest.mark.parametrize("program", ["head", "tail"])
def test_a_grep_that_matches_nothing_is_a_404_pattern_not_found(
    stack: SimpleNamespace, program: str
):
    answer = call(
        stack.client, "GET", f"/utilities/{program}", targetPath="/home/test1/f", grep="nomatch"
    )
    assert answer.status_code == 404
    assert x_headers(answer) == {"X-Not-Found": "pattern not found"}
    assert answer.get_json() == {
        "description": f"Error on {program} operation with grep",
        "error": "pattern not found",
    }
    [command] = stack.shell.commands
    assert command.endswith("| grep --fixed-strings --regexp=nomatch")


def test_a_grep_that_matches_answers_the_lines(stack: SimpleNamespace):
    answer = call(stack.client, "GET", "/utilities/head", targetPath="/home/test1/f", grep="t.o")
    assert (answer.status_code, answer.get_json()["output"]) == (200, "two\n")
    assert stack.shell.commands[0].endswith("| grep --fixed-strings --regexp=t.o")


@pytest.mark.parametrize("program", ["head", "tail"])
def test_head_and_tail_answer_at_most_the_size_limit(stack: SimpleNamespace, program: str):
    limit = 5 * 1024 * 1024
    stack.shell.answers = {program: Output(0, b"a" * limit + b"b" * 10, "")}
    answer = call(stack.client, "GET", f"/utilities/{program}", targetPath="/f", bytes="9999999")
    content = b"a" * limit + b"b" * 10
    expected = content[:limit] if program == "head" else content[-limit:]
    assert answer.get_json()["output"] == expected.decode()


def test_head_and_tail_document_their_404():
    document = create_openapi_document()
    for program in ("head", "tail"):
        assert "404" in document["paths"][f"/utilities/{program}"]["get"]["responses"]


def create_openapi_document() -> dict[str, Any]:
    from firecrest_testbuild.stack.api import openapi
    from firecrest_testbuild.stack.services import utilities

    return openapi(utilities.SERVICE.endpoints, "1.16")


# Status and the machine header.


def test_an_unknown_service_is_a_404_with_the_references_body(stack: SimpleNamespace):
    answer = stack.client.get("/status/services/nope", headers=HEADERS)
    assert (answer.status_code, answer.get_json()) == (
        404,
        {"description": "Service does not exists", "status_code": 404},
    )


def test_an_unknown_system_is_a_404_in_the_references_words(stack: SimpleNamespace):
    answer = stack.client.get("/status/systems/nope", headers=HEADERS)
    assert (answer.status_code, answer.get_json()) == (
        404,
        {"description": "System does not exists."},
    )


def test_the_filesystems_of_an_unknown_system_are_a_404(stack: SimpleNamespace):
    answer = stack.client.get("/status/filesystems/nope", headers=HEADERS)
    assert (answer.status_code, answer.get_json()) == (
        404,
        {
            "description": "Filesystem information for system nope",
            "out": "System 'nope' doesn't exist",
        },
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/utilities/ls?targetPath=/home"),
        ("GET", "/compute/jobs"),
        ("POST", "/storage/xfer-internal/rm"),
    ],
)
def test_a_missing_machine_header_is_a_plain_400(stack: SimpleNamespace, method: str, path: str):
    answer = stack.client.open(path, method=method, headers={"Authorization": "Bearer token"})
    assert answer.status_code == 400
    assert answer.get_json()["error"] == "No machine name given"
    assert x_headers(answer) == {}
