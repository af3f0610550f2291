"""Hosting implementations: this repository's own stack declared as a foreign
implementation, once from its source tree (a virtual environment the harness
builds, two processes behind the harness's gateway) and once from the stack's
image configured only by rendered templates; then judged with one command,
and removed by `down`. They are hosted beside the split environment
(conftest's split_environment_for), which the other tests of its files use
too: its `down` runs after all of them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
import yaml

from firecrest_testbuild.harness import cli
from firecrest_testbuild.harness.contracts import KeycloakEndpoints
from firecrest_testbuild.harness.environment import Environment
from firecrest_testbuild.harness.errors import TestbuildError
from firecrest_testbuild.harness.runtime import COMPONENT_LABEL, ENVIRONMENT_LABEL
from tests.integration.conftest import split_environment_for
from tests.repository import ROOT

pytestmark = pytest.mark.integration

# The stack's own configuration file (stack/README.md), as a template.
STACK_TEMPLATE = """\
publicUrl: "{{ implementation.url }}"
systems:
  - name: "{{ cluster.name }}"
    host: "{{ ssh.host }}"
    port: {{ ssh.port }}
    hostKey: "{{ ssh.hostKey }}"
    filesystems:
      - {name: HOME, path: /home}
      - {name: SCRATCH, path: /scratch}
auth: {jwksUrl: "{{ keycloak.jwksUrl }}", issuer: "{{ keycloak.issuer }}"}
ssh: {caPrivateKey: CA_KEY}
tasks: {redisUrl: "redis://{{ redis.host }}:{{ redis.port }}/DB"}
storage:
  s3Url: "{{ s3.publicUrl }}"
  s3InternalUrl: "{{ s3.privateUrl }}"
  accessKey: "{{ s3.accessKey }}"
  secretKey: "{{ s3.secretKey }}"
"""


def stack_template(ca_key: str, database: int, extra: str = "") -> str:
    # Each implementation keeps its tasks in a Redis database of its own.
    text = STACK_TEMPLATE.replace("CA_KEY", ca_key).replace("DB", str(database))
    return text + extra


def entries() -> list[dict[str, object]]:
    serve = ["python", "-m", "firecrest_testbuild.stack", "--bind", "0.0.0.0:8000", "--config"]
    ca_key = {"path": "user_ca", "template": "{{ ssh.caPrivateKey }}", "mode": 0o400}
    return [
        {
            "name": "fromsource",
            "api": "v1",
            "source": {"path": str(ROOT), "requirements": "stack/requirements.txt"},
            "processes": [
                {"name": "api", "command": [*serve, "/etc/testbuild/api.yaml"]},
                {"name": "tasks", "command": [*serve, "/etc/testbuild/tasks.yaml"]},
            ],
            "gateway": [{"path": "/tasks", "process": "tasks"}, {"path": "/", "process": "api"}],
            "files": [
                {
                    "path": "api.yaml",
                    "template": stack_template(
                        "/etc/testbuild/user_ca",
                        1,
                        "services: [certificator, compute, reservations, status, storage,"
                        " utilities]\npeers: {tasks: '{{ processes.tasks.url }}'}\n",
                    ),
                },
                {
                    "path": "tasks.yaml",
                    "template": stack_template("/etc/testbuild/user_ca", 1, "services: [tasks]\n"),
                },
                ca_key,
            ],
            "health": {"path": "/status/systems", "token": True, "timeout": 300},
            # It serves the reservations too: the suites are to judge them.
            "target": {"capabilities": {"optionalEndpoints": ["reservations"]}},
        },
        {
            "name": "fromimage",
            "api": "v1",
            # The stack's image as it is: its entrypoint reads /etc/testbuild/stack.yaml
            # and hands /etc/testbuild/user_ca to its service user as /run/stack/user_ca.
            "image": "testbuild/stack:latest",
            "files": [
                {"path": "stack.yaml", "template": stack_template("/run/stack/user_ca", 2)},
                ca_key,
            ],
            "health": {"path": "/_health"},
        },
    ]


@pytest.fixture(scope="session")
def hosting(split_environment: Environment, state_home: Path) -> Environment:
    """The split environment with both implementations declared: its next
    `up` starts only theirs (the others are as they were)."""
    name = split_environment.config.name
    environment = split_environment_for(state_home, name, entries())
    environment.up()
    return environment


def test_both_come_up_with_their_containers_labels_and_ports(hosting: Environment):
    nodes = {row["node"]: row["state"] for row in hosting.status()}
    for node in ("fromsource-api", "fromsource-tasks", "fromsource-gateway", "fromimage-main"):
        assert nodes[node] == "running"
    for implementation in ("fromsource", "fromimage"):
        containers = hosting.runtime.containers(implementation)
        assert containers
        assert all(c.labels[ENVIRONMENT_LABEL] == hosting.config.name for c in containers)
        assert all(c.labels[COMPONENT_LABEL] == implementation for c in containers)
    urls = {hosted.name: hosted.url(hosting.context()) for hosted in hosting.implementations}
    assert all(url.startswith("http://127.0.0.1:") for url in urls.values())
    assert len(set(urls.values())) == 2


def test_the_gateway_routes_to_each_process_and_the_token_is_checked(hosting: Environment):
    url = hosting.component("fromsource").url(hosting.context())  # type: ignore[attr-defined]
    keycloak = hosting.context().endpoints(KeycloakEndpoints)
    token = keycloak.token(user=hosting.config.user("test1"))
    headers = {"Authorization": f"Bearer {token}", "X-Machine-Name": "cluster"}
    whoami = requests.get(f"{url}/utilities/whoami", headers=headers, timeout=30)
    assert (whoami.status_code, whoami.json()["output"]) == (200, "test1")
    tasks = requests.get(f"{url}/tasks/", headers=headers, timeout=30)
    assert tasks.status_code == 200
    services = requests.get(f"{url}/status/services/tasks", headers=headers, timeout=30).json()
    assert services["status"] == "available"
    assert "fromsource-tasks:8000" in services["description"]
    refused = requests.get(f"{url}/utilities/whoami", headers={"X-Machine-Name": "cluster"})
    assert refused.status_code == 401


def test_rendered_files_have_their_modes(hosting: Environment):
    for node in ("fromsource-api", "fromimage-main"):
        result = hosting.runtime.execute(node, ["stat", "-c", "%a %U", "/etc/testbuild/user_ca"])
        assert result.output.strip() == "400 root"
    key = hosting.runtime.execute("fromimage-main", ["cat", "/etc/testbuild/stack.yaml"]).output
    assert "{{" not in key and 'jwksUrl: "http://keycloak:8080/' in key


def test_logs_name_each_container_of_an_implementation(
    hosting: Environment, capsys: pytest.CaptureFixture[str]
):
    assert cli.main(["logs", "--name", hosting.config.name, "fromsource", "-n", "50"]) == 0
    shown = capsys.readouterr().out
    for node in ("api", "tasks", "gateway"):
        assert f"==> testbuild-{hosting.config.name}-fromsource-{node} <==" in shown
    assert "GET /tasks/" in shown  # the gateway's access log


def test_up_writes_a_target_file_for_each(hosting: Environment):
    for hosted in hosting.implementations:
        written = yaml.safe_load(hosting.implementation_target(hosted.name).read_text())
        assert written["api"] == {"url": hosted.url(hosting.context()), "version": "1.16.1"}
        assert written["kind"] == "Target"
        offered = written["capabilities"]["optionalEndpoints"]
        assert offered == (["reservations"] if hosted.name == "fromsource" else [])
    env = hosting.endpoints().as_json()
    assert env["fromimage"]["target"] == str(hosting.implementation_target("fromimage"))


# The suites the hosted stack's test runs: every request of the tutorial and
# the task listing cross the gateway to both processes. (The whole suites run
# against the same code in test_conformance.py; here they would add a minute.)
JUDGED_HERE = "test_tutorial or test_tasks or test_utilities or test_status"


def test_conformance_judges_one_implementation_by_name(hosting: Environment, tmp_path: Path):
    report = tmp_path / "report"
    code = cli.main(
        [
            "conformance",
            "--name",
            hosting.config.name,
            "--implementation",
            "fromsource",
            "--report",
            str(report),
            "--",
            "-q",
            "-k",
            JUDGED_HERE,
        ]
    )
    # The stack run from this checkout, behind the gateway, passes the suites
    # chosen: both of its processes answer through the gateway.
    document = json.loads((report / "report.json").read_text())
    statuses = {case["id"].split("::")[-1]: case["status"] for case in document["cases"]}
    assert code == 0, statuses
    assert document["target"]["api"]["url"] == hosting.component("fromsource").url(  # type: ignore[attr-defined]
        hosting.context()
    )
    assert len(statuses) >= 25
    assert {status for status in statuses.values()} <= {"PASS", "SKIP"}, statuses
    assert statuses["test_mkdir"] == "PASS"
    assert statuses["test_the_target_system_is_available"] == "PASS"


def test_all_are_judged_and_each_implementation_is_compared_with_the_stack(
    hosting: Environment, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    report = tmp_path / "all"
    arguments = ["conformance", "--name", hosting.config.name, "--all", "--report", str(report)]
    # One status check of each generation: the stack's v2 API is judged too.
    chosen = "test_the_target_system_is_available or test_liveness_needs_no_token"
    code = cli.main([*arguments, "--", "-q", "-k", chosen])
    assert code == 0
    for name, check in (
        ("stack", "test_the_target_system_is_available"),
        ("stack-v2", "test_liveness_needs_no_token"),
        ("fromsource", "test_the_target_system_is_available"),
        ("fromimage", "test_the_target_system_is_available"),
    ):
        document = json.loads((report / name / "report.json").read_text())
        run = {case["id"].split("::")[-1]: case["status"] for case in document["cases"]}
        assert run[check] == "PASS", (name, run)
        assert not {status for status in run.values()} & {"FAIL", "ERROR"}
    for name in ("fromsource", "fromimage"):
        page = (report / f"compare-{name}.html").read_text()
        assert f"testbuild-{hosting.config.name}-{name}" in page
        assert f"testbuild-{hosting.config.name}" in page
    assert f"compare page: {report}/compare-fromimage.html" in capsys.readouterr().out


def test_a_process_that_never_gets_healthy_is_explained_with_its_log(hosting: Environment):
    broken = {
        "name": "broken",
        "api": "v2",
        "image": "testbuild/debian:trixie",  # the base image: no entrypoint of its own
        "processes": [{"command": ["sh", "-c", "echo not-serving-on-purpose; sleep 600"]}],
        "health": {"path": "/", "timeout": 5},
    }
    again = split_environment_for(hosting.state.home, hosting.config.name, [*entries(), broken])
    with pytest.raises(TestbuildError) as caught:
        again.up()
    text = caught.value.explain()
    assert text.startswith("✗ broken: GET / answers HTTP 200 (implementations[2].health)")
    assert "not-serving-on-purpose" in text
    assert "testbuild logs broken" in text


@pytest.mark.ends_environment
def test_down_removes_every_container_of_the_implementations(hosting: Environment):
    """Runs after the other tests of the split environment (ends_environment)."""
    assert hosting.runtime.containers("fromsource")
    removed = hosting.down()
    assert f"container testbuild-{hosting.config.name}-fromsource-gateway" in removed
    assert f"container testbuild-{hosting.config.name}-broken-main" in removed
    assert hosting.runtime.leftovers() == []
    assert not hosting.state.root.exists()
