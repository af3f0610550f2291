"""Hosted implementations without an engine: the `implementations:` section,
its placeholders and their errors, the containers, files and gateway an entry
becomes, its target file, and the errors of what is missing."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from docker.errors import ImageNotFound

from firecrest_testbuild.harness import target, templates
from firecrest_testbuild.harness.config import dump, load, parse
from firecrest_testbuild.harness.environment import Environment
from firecrest_testbuild.harness.errors import ConfigError, TestbuildError
from firecrest_testbuild.harness.hosting import HostedImplementation
from firecrest_testbuild.harness.images import ImageBuilder, ImageSpec
from firecrest_testbuild.harness.progress import Progress
from firecrest_testbuild.harness.runtime import ContainerSpec
from firecrest_testbuild.scenarios.target import parse as parse_target
from firecrest_testbuild.stack.config import parse as parse_stack_config
from tests.repository import ROOT as REPOSITORY

SOURCE_ENTRY = """\
implementations:
  - name: mine
    api: v2
    port: 8100
    source: {path: TREE, python: 3.11}
    processes:
      - name: api
        command: [uvicorn, app:main, --port, "{{ implementation.port }}"]
        environment: {TOKEN_URL: "{{ keycloak.tokenUrl }}", S3: "{{ s3.privateUrl }}"}
      - name: worker
        command: [python, worker.py]
        port: 9000
    gateway:
      - {path: /, process: api}
      - {path: /jobs, process: worker}
    files:
      - path: config.yaml
        template: |
          issuer: {{ keycloak.issuer }}
          ssh: {host: {{ ssh.host }}, port: {{ ssh.port }}}
          worker: {{ processes.worker.url }}
      - {path: keys/ca, template: "{{ ssh.caPrivateKey }}", mode: 0400}
      - {path: keys/test1.pub, template: "{{users.test1.sshPublicKey}}", mode: "0440"}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text, "env.yaml")
    return caught.value.problems


def source_config(tree: Path, extra: str = "") -> str:
    return SOURCE_ENTRY.replace("TREE", str(tree)) + extra


class NoEngine:
    def info(self) -> dict[str, int]:
        return {"NCPU": 2}


def environment(tmp_path: Path, text: str) -> Environment:
    return Environment(parse(text), tmp_path / "state", client=NoEngine())  # type: ignore[arg-type]


def hosted(environment: Environment, name: str) -> HostedImplementation:
    component = environment.component(name)
    assert isinstance(component, HostedImplementation)
    return component


def specs(environment: Environment, name: str) -> dict[str, ContainerSpec]:
    context = environment._context(environment._existing_images(), engine_cpus=2)
    component = hosted(environment, name)
    return {spec.node: spec for spec in component.containers(context.given_to(component))}


# The section


def test_an_entry_reads_into_typed_objects_and_back(tmp_path: Path):
    config = parse(source_config(tmp_path, "cluster: {sshAuth: static-key}\n"))
    entry = config.implementations[0]
    assert entry.source is not None
    assert (entry.source.python, entry.source.debian_release) == ("3.11", "bookworm")
    assert [file.mode for file in entry.files] == [0o644, 0o400, 0o440]
    assert entry.published_process is None  # the gateway is
    assert parse(dump(config)) == config


def test_a_relative_source_tree_is_the_environment_files_folder(tmp_path: Path):
    (tmp_path / "checkout").mkdir()
    file = tmp_path / "env.yaml"
    file.write_text(SOURCE_ENTRY.replace("TREE", "checkout"))
    source = load(file).implementations[0].source
    assert source is not None and source.path == tmp_path / "checkout"


def test_an_unknown_placeholder_names_the_file_line_entry_key_and_a_close_name(tmp_path: Path):
    text = source_config(tmp_path).replace("{{ keycloak.tokenUrl }}", "{{ keycloak.tokenUri }}")
    assert problems(text) == [
        "env.yaml:9: implementations[0].processes[0].environment.TOKEN_URL: unknown placeholder"
        " {{ keycloak.tokenUri }} (fix: did you mean '{{ keycloak.tokenUrl }}'? the"
        " placeholders are listed in README.md (Hosting an implementation) and by"
        " 'testbuild placeholders')"
    ]


def test_placeholders_of_unknown_users_and_processes_are_refused(tmp_path: Path):
    text = (
        source_config(tmp_path)
        .replace("users.test1.", "users.nobody.")
        .replace("processes.worker.url", "processes.db.url")
    )
    found = problems(text)
    assert len(found) == 2
    assert (
        "implementations[0].files[0].template: unknown placeholder {{ processes.db.url }}"
        in (found[0])
    )
    assert "files[2].template: unknown placeholder {{ users.nobody.sshPublicKey }}" in found[1]


def test_entries_that_cannot_run_are_refused_with_their_keys(tmp_path: Path):
    text = """\
implementations:
  - {name: one, api: v1, image: x/y, source: {path: /}}
  - {name: one, api: v1, source: {path: /}, processes: [{name: a}, {name: a, command: [b]}],
     gateway: [{path: /, process: c}]}
  - {name: two, api: v2, image: x/y, gateway: [{path: /, process: main}]}
"""
    found = problems(text)
    assert found == [
        "env.yaml:2: implementations[0]: give exactly one of 'image' (an image in the engine)"
        " or 'source' (a local source tree) (fix: keep the one the implementation runs from)",
        "env.yaml:2: implementations[0].processes[0]: a process of a source tree needs a"
        " 'command' (fix: the command line that starts it, run in the tree)",
        "env.yaml:3: implementations[1].name: 'one' is already the name of implementations[0]"
        " (fix: give each a unique name)",
        "env.yaml:3: implementations[1].processes[0]: a process of a source tree needs a"
        " 'command' (fix: the command line that starts it, run in the tree)",
        "env.yaml:3: implementations[1].processes[1].name: 'a' names two processes (fix: give"
        " each process a unique name)",
        "env.yaml:4: implementations[1].gateway[0].process: no process is named 'c' (fix: use"
        " one of a)",
        "env.yaml:5: implementations[2].gateway: the gateway runs beside a source tree only"
        " (fix: remove it, or put the routing in the image)",
    ]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("files: [{path: ../x, template: y}]", "files[0].path: '..' may not be part of it"),
        ("files: [{path: /etc/x, template: y}]", "files[0].path: String should match pattern"),
        ("processes: [{name: gateway}]", "processes[0].name: 'gateway' is the name of"),
        ("source: {path: /, python: 3.12}", "source.python: Input should be '3.11' or '3.13'"),
        ("api: v3", "api: Input should be 'v1' or 'v2'"),
    ],
)
def test_schema_problems_name_the_key(entry: str, expected: str):
    base = {"name": "x", "api": "v1", "image": "x/y"}
    override = yaml.safe_load(entry)
    if "source" in override:
        del base["image"]
        override["processes"] = [{"command": ["run"]}]
    text = yaml.safe_dump({"implementations": [base | override]})
    assert any(expected in problem for problem in problems(text)), problems(text)


def test_the_commented_example_of_testbuild_yaml_renders_a_valid_stack_config(tmp_path: Path):
    lines = (REPOSITORY / "testbuild.yaml").read_text().splitlines()
    start = lines.index("# implementations:")
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith("#  "))
    example = "\n".join(line[2:] for line in lines[start:end])
    env = environment(tmp_path, example)
    spec = specs(env, "mybranch")["mybranch-api"]
    stack_yaml = spec.files["stack.yaml"][0].decode()
    config = parse_stack_config(yaml.safe_load(stack_yaml), "stack.yaml")
    assert config.auth.issuer == "http://127.0.0.1:8080/auth/realms/kcrealm"
    assert spec.files["user_ca"][1] == 0o400


# Templates


def test_render_fills_each_placeholder_once_and_only_those_used():
    asked: list[str] = []

    def value(name: str, result: str) -> templates.Values:
        return {name: lambda: asked.append(name) or result}

    values = {**value("a.b", "1"), **value("c.d", "2")}
    assert templates.render("x={{a.b}} y={{ a.b }}", values) == "x=1 y=1"
    assert asked == ["a.b"]


def test_a_value_the_environment_cannot_give_names_the_entry_key_and_reason(tmp_path: Path):
    env = environment(tmp_path, source_config(tmp_path))  # certificate logins: no user keys
    with pytest.raises(TestbuildError) as caught:
        specs(env, "mine")
    assert caught.value.component == "mine"
    assert caught.value.message == (
        "implementations[0].files[2].template: {{ users.test1.sshPublicKey }} cannot be"
        " filled: users have static keys only with cluster.sshAuth: static-key"
    )


def test_slurmrestd_needs_a_cluster_that_runs_it(tmp_path: Path):
    text = source_config(tmp_path, "cluster: {sshAuth: static-key, slurm: '22.05'}\n").replace(
        "{{ ssh.host }}", "{{ slurmrestd.url }}"
    )
    with pytest.raises(TestbuildError) as caught:
        specs(environment(tmp_path, text), "mine")
    assert "{{ slurmrestd.url }} cannot be filled: the cluster runs no slurmrestd" in (
        caught.value.message
    )


def test_the_catalogue_lists_every_fixed_name():
    lines = templates.catalogue()
    for name in templates.NAMES:
        assert any(line.startswith(f"{{{{ {name} }}}}") for line in lines)


# Containers


def test_each_process_is_a_container_with_the_tree_and_the_rendered_files(tmp_path: Path):
    env = environment(tmp_path, source_config(tmp_path, "cluster: {sshAuth: static-key}\n"))
    made = specs(env, "mine")
    assert list(made) == ["mine-api", "mine-worker", "mine-gateway"]
    api = made["mine-api"]
    assert api.component == "mine"
    assert api.image == "testbuild/venv-mine:latest"
    assert api.mounts == {str(tmp_path): "/src"}
    assert api.command == ["uvicorn", "app:main", "--port", "8100"]
    assert api.environment["TOKEN_URL"] == (
        "http://keycloak:8080/auth/realms/kcrealm/protocol/openid-connect/token"
    )
    assert api.environment["S3"] == "http://minio:9000"
    assert api.ports == ()  # the gateway publishes the port
    config = yaml.safe_load(api.files["config.yaml"][0])
    assert config == {
        "issuer": "http://127.0.0.1:8080/auth/realms/kcrealm",
        "ssh": {"host": "cluster", "port": 22},
        "worker": "http://mine-worker:9000",
    }
    ca_key, mode = api.files["keys/ca"]
    assert mode == 0o400
    assert ca_key == env.state.user_ca.private_path.read_bytes()
    public, mode = api.files["keys/test1.pub"]
    assert (public.decode(), mode) == (env.state.user_key("test1").public_line(), 0o440)
    assert made["mine-worker"].files == api.files


def test_a_change_of_the_source_tree_changes_the_processes_specs(tmp_path: Path):
    (tmp_path / "app.py").write_text("print('one')\n")
    (tmp_path / ".git").mkdir()
    env = environment(tmp_path, source_config(tmp_path, "cluster: {sshAuth: static-key}\n"))
    before = specs(env, "mine")["mine-api"].fingerprint("image")
    (tmp_path / ".git" / "index").write_text("not part of the tree's version")
    assert specs(env, "mine")["mine-api"].fingerprint("image") == before
    (tmp_path / "app.py").write_text("print('two, longer')\n")
    assert specs(env, "mine")["mine-api"].fingerprint("image") != before
    assert specs(env, "mine")["mine-gateway"].environment == {}


def test_the_gateway_publishes_the_port_and_routes_each_prefix(tmp_path: Path):
    env = environment(tmp_path, source_config(tmp_path, "cluster: {sshAuth: static-key}\n"))
    gateway = specs(env, "mine")["mine-gateway"]
    assert [(p.container_port, p.host_ip, p.host_port) for p in gateway.ports] == [
        (8080, "127.0.0.1", 8100)
    ]
    assert gateway.ports[0].config_key == "implementations[0].port"
    conf = gateway.files["gateway.conf"][0].decode()
    assert "location / {\n      set $process mine-api:8000;" in conf
    assert "location /jobs {\n      set $process mine-worker:9000;" in conf
    assert "client_max_body_size 0;" in conf  # uploads of any size pass


class Gateway(ThreadingHTTPServer):
    """Answers GETs with the status `answers` holds for the path."""

    def __init__(self, answers: dict[str, int]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(answers[self.path])
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


def test_behind_a_gateway_up_waits_for_every_route_to_reach_its_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    env = environment(tmp_path, source_config(tmp_path, "cluster: {sshAuth: static-key}\n"))
    answers = {"/": 401, "/jobs": 502}  # the worker is still starting
    gateway = Gateway(answers)
    url = f"http://127.0.0.1:{gateway.server_address[1]}"
    monkeypatch.setattr(HostedImplementation, "url", lambda self, context: url)
    try:
        health, *routes = hosted(env, "mine").started(None)  # type: ignore[arg-type]
        assert health.description == "GET / answers HTTP 200 (implementations[0].health)"
        assert [route.description for route in routes] == [
            "GET / reaches process api through the gateway (implementations[0].gateway[0])",
            "GET /jobs reaches process worker through the gateway (implementations[0].gateway[1])",
        ]
        assert routes[0].check() is None  # the process's own refusal is an answer
        assert routes[1].check() == "HTTP 502 from the gateway"
        answers["/jobs"] = 504
        assert routes[1].check() == "HTTP 504 from the gateway"
        answers["/jobs"] = 503  # the worker's own answer: it is reached
        assert routes[1].check() is None
    finally:
        gateway.shutdown()
        gateway.server_close()


def test_an_image_entry_runs_the_image_as_it_is_on_its_port(tmp_path: Path):
    text = "implementations: [{name: theirs, api: v1, image: 'site/firecrest:1.2'}]\n"
    env = environment(tmp_path, text)
    (spec,) = specs(env, "theirs").values()
    assert (spec.node, spec.image, spec.command, spec.mounts) == (
        "theirs-main",
        "site/firecrest:1.2",
        [],
        {},
    )
    (port,) = spec.ports
    assert port.container_port == 8000 and port.host_port == env.component("theirs").port(  # type: ignore[attr-defined]
        env.context()
    )
    assert hosted(env, "theirs").image(env.config) == ImageSpec(
        "",
        "",
        existing="site/firecrest:1.2",
        existing_missing="implementations[0].image of implementation 'theirs'",
    )


def test_implementations_start_after_every_component_and_may_not_take_their_names(
    tmp_path: Path,
):
    env = environment(tmp_path, "implementations: [{name: theirs, api: v1, image: a/b}]\n")
    order = [component.name for component in env.components]
    before = order[: order.index("theirs")]
    assert set(hosted(env, "theirs").requires) == {"cluster", "keycloak", "minio", "redis", "sshca"}
    assert set(hosted(env, "theirs").requires) <= set(before)
    assert env.implementations == [env.component("theirs")]
    with pytest.raises(TestbuildError) as caught:
        environment(tmp_path, "implementations: [{name: minio, api: v1, image: a/b}]\n")
    assert caught.value.message == "implementations[0].name: 'minio' is the name of a component"


def test_an_implementation_the_environment_does_not_host_is_named_with_those_it_does(
    tmp_path: Path,
):
    env = environment(tmp_path, "implementations: [{name: theirs, api: v1, image: a/b}]\n")
    assert env.implementation_target("theirs") == env.state.root / "targets" / "theirs.yaml"
    with pytest.raises(TestbuildError) as caught:
        env.implementation_target("ours")
    assert caught.value.explain() == (
        f"✗ ours: environment '{env.config.name}' hosts no implementation 'ours'\n"
        "  fix: name one of its implementations: theirs"
    )


# What is missing


class Images:
    """The part of a Docker client ImageBuilder asks about images."""

    def __init__(self, present: set[str]) -> None:
        self.present = present

    def get(self, reference: str) -> Any:
        if reference not in self.present:
            raise ImageNotFound(reference)
        return reference


class Client:
    def __init__(self, present: set[str]) -> None:
        self.images = Images(present)


def builder(present: set[str]) -> ImageBuilder:
    config = parse("images: {caCertificates: none}\n")
    return ImageBuilder(Client(present), config.images, Progress())  # type: ignore[arg-type]


def test_a_missing_image_names_the_entry_and_says_how_to_get_it(tmp_path: Path):
    env = environment(tmp_path, "implementations: [{name: theirs, api: v1, image: 'a/b:1'}]\n")
    spec = hosted(env, "theirs").image(env.config)
    assert builder({"a/b:1"}).ensure(spec) == "a/b:1"
    with pytest.raises(TestbuildError) as caught:
        builder(set()).ensure(spec)
    assert caught.value.message == (
        "the engine has no image 'a/b:1' (implementations[0].image of implementation 'theirs')"
    )
    assert caught.value.fix is not None and "docker build -t a/b:1" in caught.value.fix


@pytest.mark.parametrize("tree_exists", [False, True])
def test_a_missing_source_tree_or_requirements_file_names_the_entry_and_key(
    tmp_path: Path, tree_exists: bool
):
    tree = tmp_path / "checkout"
    if tree_exists:
        tree.mkdir()
    env = environment(tmp_path, source_config(tree))
    spec = hosted(env, "mine").image(env.config)
    with pytest.raises(TestbuildError) as caught:
        builder(set())._context_files(spec)
    assert caught.value.component == "mine"
    if tree_exists:
        assert caught.value.message == (
            f"its source tree {tree} has no requirements file requirements.txt"
        )
        assert caught.value.fix == (
            "set implementations[0].source.requirements to the file's path in the tree"
        )
    else:
        assert caught.value.message == f"its source tree {tree} does not exist"
        assert caught.value.fix == (
            "set implementations[0].source.path to the checkout of the implementation"
        )


def test_the_requirements_file_is_the_venv_images_input(tmp_path: Path):
    (tmp_path / "requirements.txt").write_text("flask\n")
    env = environment(tmp_path, source_config(tmp_path))
    spec = hosted(env, "mine").image(env.config)
    files = builder(set())._context_files(spec)
    assert files["requirements.txt"] == (b"flask\n", 0o644)
    assert "Dockerfile" in files and spec.debian_release == "bookworm"


# The target file


def test_a_hosted_target_is_the_environments_with_its_url_and_its_own_settings(tmp_path: Path):
    text = (
        "implementations:\n"
        "  - name: theirs\n    api: v1\n    image: a/b\n"
        "    target: {limits: {uploadMaxMb: 2}, capabilities: {optionalEndpoints: []},"
        " api: {version: 1.15.0}}\n"
    )
    env = environment(tmp_path, text)
    context = env._context(env._existing_images(), engine_cpus=2)
    entry = env.config.implementations[0]
    ours = target.describe(context)
    theirs = target.describe_hosted(context, entry, "http://127.0.0.1:9999")
    assert theirs["api"] == {"url": "http://127.0.0.1:9999", "version": "1.15.0"}
    assert theirs["name"] == f"testbuild-{env.config.name}-theirs"
    assert theirs["limits"] == {"uploadMaxMb": 2}
    for same in ("auth", "identities", "system", "groundTruth"):
        assert theirs[same] == ours[same]
    written = target.render_hosted(context, entry, "http://127.0.0.1:9999")
    assert parse_target(written, "theirs.yaml", {}).limits.upload_max_mb == 2


def test_a_hosted_v2_target_has_v2s_capabilities(tmp_path: Path):
    text = "implementations: [{name: theirs, api: v2, image: a/b}]\n"
    env = environment(tmp_path, text)
    context = env._context(env._existing_images(), engine_cpus=2)
    written = target.render_hosted(context, env.config.implementations[0], "http://127.0.0.1:1")
    parsed = parse_target(written, "theirs.yaml", {})
    assert parsed.generation == 2
    assert parsed.capabilities.model_dump(by_alias=True) == {
        "scheduler": "slurm",
        "transfer": "s3",
        "optionalEndpoints": (),
    }


def test_a_target_the_suites_could_not_read_is_an_error_of_up(tmp_path: Path):
    text = (
        "implementations: [{name: theirs, api: v1, image: a/b,"
        " target: {limits: {uploadMaxMb: -1}, extra: 1}}]\n"
    )
    env = environment(tmp_path, text)
    context = env._context(env._existing_images(), engine_cpus=2)
    with pytest.raises(TestbuildError) as caught:
        target.render_hosted(context, env.config.implementations[0], "http://127.0.0.1:1")
    assert caught.value.component == "theirs"
    assert caught.value.message == "its entry's `target:` makes an invalid target file"
    assert any("limits.uploadMaxMb" in line for line in caught.value.details)
    assert any("unknown key 'extra'" in line for line in caught.value.details)


def test_the_stacks_target_is_unchanged_by_hosting(tmp_path: Path):
    env = environment(tmp_path, "")
    context = env._context(env._existing_images(), engine_cpus=2)
    described = target.describe(context)
    assert described["limits"] == {"uploadMaxMb": 5, "commandTimeout": 5}
    assert described["capabilities"]["optionalEndpoints"] == ["reservations"]
    assert described["api"]["version"] == "1.16.1"


def test_the_stacks_v2_target_is_a_2x_target_of_its_v2_url(tmp_path: Path):
    env = environment(tmp_path, "stack: {v2: {port: 8123}}\n")
    context = env._context(env._existing_images(), engine_cpus=2)
    written = target.render_v2(context)
    parsed = parse_target(written, "target-v2.yaml", {})
    assert parsed.generation == 2
    assert parsed.capabilities.model_dump(by_alias=True) == {
        "scheduler": "slurm",
        "transfer": "s3",
        "optionalEndpoints": ("attach",),
    }
    described = target.describe_v2(context)
    assert described["api"] == {"url": "http://127.0.0.1:8123", "version": "2.5.6"}
    assert described["identities"] == target.describe(context)["identities"]


def test_judging_an_api_the_stack_does_not_serve_says_how_to_switch_it_on(tmp_path: Path):
    env = environment(tmp_path, "stack: {v2: {enabled: false}}\n")
    with pytest.raises(TestbuildError) as caught:
        env.target_file("v2")
    assert caught.value.message == f"environment '{env.config.name}' serves no FirecREST v2"
    assert "stack.v2.enabled: true" in str(caught.value.fix)
