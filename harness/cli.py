"""The `testbuild` command: up, down, status, env, logs, ssh, token, images, compose.

`up`, `images` and `compose` read the environment file. The others find a
running environment by name (--name, else the name in the environment file,
else 'testbuild') and read the config `up` saved in its state folder; they
never create an environment or any of its files.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from firecrest_testbuild.harness import config as config_module
from firecrest_testbuild.harness import conformance, engine, templates
from firecrest_testbuild.harness.contracts import (
    ClusterEndpoints,
    KeycloakEndpoints,
    StackEndpoints,
)
from firecrest_testbuild.harness.endpoints import EnvironmentEndpoints
from firecrest_testbuild.harness.environment import Environment, down, not_up
from firecrest_testbuild.harness.errors import TestbuildError
from firecrest_testbuild.harness.keycloak_realm import TokenRefused
from firecrest_testbuild.harness.progress import Progress
from firecrest_testbuild.harness.runtime import Runtime

Handler = Callable[[argparse.Namespace], int]


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    arguments = parser.parse_args(argv)
    handler: Handler = arguments.handler
    try:
        return handler(arguments)
    except TestbuildError as error:
        print(error.explain(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("✗ interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="testbuild",
        description="A whole FirecREST world on one machine: bring it up, use it, tear it down.",
    )
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        default=None,
        help=f"environment file (default: $TESTBUILD_CONFIG, else ./{config_module.DEFAULT_FILE}"
        " if present, else built-in defaults); commands other than up, images and compose"
        " take only its name",
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    up = commands.add_parser(
        "up", help="build what is missing, start everything, seed users, wait until ready"
    )
    up.add_argument(
        "--retain", action="store_true", help="keep what a failed first 'up' created, for debugging"
    )
    up.set_defaults(handler=_up)

    down_command = _named(
        commands.add_parser(
            "down", help="remove every container, network and volume 'up' made, and its state"
        )
    )
    down_command.set_defaults(handler=_down)

    status = _named(
        commands.add_parser("status", help="the environment's containers and their state")
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=_status)

    env = _named(commands.add_parser("env", help="endpoints and credentials a client needs"))
    env.add_argument("--json", action="store_true", help="machine-readable output")
    env.set_defaults(handler=_env)

    logs = _named(commands.add_parser("logs", help="last log lines of a component or node"))
    logs.add_argument(
        "target",
        metavar="COMPONENT",
        help="a component (cluster, keycloak, minio, a hosted implementation's name)"
        " or node (controller, c1, ...)",
    )
    logs.add_argument(
        "-n", "--tail", type=int, default=100, help="lines per container (default 100)"
    )
    logs.set_defaults(handler=_logs)

    ssh = _named(
        commands.add_parser(
            "ssh",
            help="run a command on the login node as USER, through the command wrapper",
            description="Signs a short-lived certificate whose force-command is COMMAND"
            " and sends it the way FirecREST v1 does.",
        )
    )
    ssh.add_argument("user", metavar="USER")
    ssh.add_argument("command", metavar="COMMAND", nargs=argparse.REMAINDER, help="after '--'")
    ssh.set_defaults(handler=_ssh)

    suites = _named(
        commands.add_parser(
            "conformance",
            help="run the conformance suites against a FirecREST deployment",
            description=(
                "Run scenarios/ against a target (default: this environment, which must be up)"
                " and write a report; or compare two reports."
            ),
        )
    )
    judged = suites.add_mutually_exclusive_group()
    judged.add_argument(
        "--target", type=Path, help="target description (default: this environment's stack)"
    )
    judged.add_argument(
        "--implementation",
        metavar="NAME",
        help="judge the hosted implementation NAME (its entry under implementations:)",
    )
    judged.add_argument(
        "--all",
        action="store_true",
        help="judge the stack (each API it serves) and every hosted implementation, each in"
        " REPORT/<name>/, and compare each implementation with the stack's API of its"
        " generation (REPORT/compare-<name>.html)",
    )
    suites.add_argument(
        "--api",
        choices=("v1", "v2"),
        default="v1",
        help="which of this environment's stack APIs to judge (default: v1, the tutorial's)",
    )
    suites.add_argument(
        "--report", type=Path, default=Path("out"), help="report folder (default: ./out)"
    )
    suites.add_argument(
        "--strict",
        action="store_true",
        help="a missed SHOULD check fails its test (default: a warning in the report)",
    )
    suites.add_argument(
        "--compare",
        nargs=2,
        type=Path,
        metavar=("A.json", "B.json"),
        help="show two reports side by side instead of running",
    )
    suites.add_argument(
        "--html",
        type=Path,
        metavar="FILE",
        help="with --compare: also write the comparison as a self-contained HTML page to FILE",
    )
    suites.add_argument(
        "pytest_args",
        nargs="*",
        help="more pytest arguments after --, e.g. -- -k utilities (the suites run with"
        " no pytest plugin but their own: load another with -- -p NAME)",
    )
    suites.set_defaults(handler=_conformance)

    placeholders = commands.add_parser(
        "placeholders",
        help="the placeholders an implementation's templates may use, and what each is",
    )
    placeholders.set_defaults(handler=_placeholders)

    compose = commands.add_parser("compose", help="print the environment as a compose file")
    compose.add_argument(
        "--write",
        action="store_true",
        help="also write the node files it mounts under the state dir",
    )
    compose.set_defaults(handler=_compose)

    token = _named(
        commands.add_parser(
            "token",
            help="print an access token from the environment's Keycloak",
            description="With USER: a password grant for that user. With --client: the client's"
            " service-account token (client credentials). export TOKEN=$(testbuild token test1)",
        )
    )
    token.add_argument("user", metavar="USER", nargs="?", help="a user from the environment file")
    token.add_argument("--client", help="client id (default: the first configured client)")
    token.set_defaults(handler=_token)

    images = commands.add_parser(
        "images", help="build (or find) every image without starting anything"
    )
    images.set_defaults(handler=_images)
    return parser


def _named(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """A command that finds a running environment by name."""
    command.add_argument(
        "--name",
        help="the environment (default: the name in the environment file, else"
        f" '{config_module.DEFAULT_NAME}')",
    )
    return command


def _environment(arguments: argparse.Namespace, quiet: bool = False) -> Environment:
    """The environment of the environment file, to bring up or render."""
    config = config_module.load(config_module.default_path(arguments.config))
    return Environment(config, progress=Progress(quiet=quiet))


def _name(arguments: argparse.Namespace) -> str:
    if arguments.name:
        return str(arguments.name)
    return config_module.load(config_module.default_path(arguments.config)).name


def _running(arguments: argparse.Namespace) -> Environment:
    """The running environment the command names, as `up` saved it."""
    return Environment.open(_name(arguments), progress=Progress(quiet=True))


def _up(arguments: argparse.Namespace) -> int:
    environment = _environment(arguments)
    started = time.monotonic()
    endpoints = environment.up(retain_on_failure=arguments.retain)
    print(_summary(endpoints, environment.progress.durations, time.monotonic() - started))
    return 0


def _summary(endpoints: EnvironmentEndpoints, durations: dict[str, float], total: float) -> str:
    first = endpoints.users[0].name
    stack = endpoints.of(StackEndpoints)
    # The tutorial's v1 when it runs, else v2 (both list systems at /status/systems).
    stack_url = stack.url or stack.v2_url or ""
    lines = [
        "",
        f"Environment '{endpoints.name}' is ready ({total:.1f}s).",
        *(f"  {line}" for line in endpoints.summary()),
        "",
        f"  try:   testbuild ssh {first} -- sinfo",
        f"         export TOKEN=$(testbuild token {first})",
        f'         curl -H "Authorization: Bearer $TOKEN" {stack_url}/status/systems',
        "  more:  testbuild env (endpoints, credentials)   testbuild down (remove everything)",
        "",
        "  stage times: "
        + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in durations.items()),
    ]
    return "\n".join(lines)


def _down(arguments: argparse.Namespace) -> int:
    name = _name(arguments)
    removed = down(name, engine.connect())
    print(f"removed {len(removed)} resources of '{name}'" + "".join(f"\n  {r}" for r in removed))
    return 0


def _status(arguments: argparse.Namespace) -> int:
    name = _name(arguments)
    client = engine.connect()
    rows = Runtime(client, name).status()
    if arguments.json:
        print(json.dumps(rows, indent=2))
    elif rows:
        for row in rows:
            print(f"{row['node']:<12} {row['state']:<10} {row['container']:<40} {row['image']}")
    else:
        print(not_up(name, client).explain(), file=sys.stderr)
    return 0 if rows and all(row["state"] == "running" for row in rows) else 3


def _env(arguments: argparse.Namespace) -> int:
    endpoints = _running(arguments).endpoints().as_json()
    print(json.dumps(endpoints, indent=2) if arguments.json else _flatten(endpoints))
    return 0


def _flatten(value: Any, prefix: str = "") -> str:
    if isinstance(value, dict):
        return "\n".join(_flatten(item, f"{prefix}{key}.") for key, item in value.items())
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return "\n".join(_flatten(item, f"{prefix}{index}.") for index, item in enumerate(value))
    shown = ", ".join(map(str, value)) if isinstance(value, list) else value
    return f"{prefix.rstrip('.')}: {shown}"


def _logs(arguments: argparse.Namespace) -> int:
    name = _name(arguments)
    client = engine.connect()
    runtime = Runtime(client, name)
    if not runtime.containers():
        raise not_up(name, client)
    print(runtime.logs(arguments.target, arguments.tail))
    return 0


def _ssh(arguments: argparse.Namespace) -> int:
    command = arguments.command[1:] if arguments.command[:1] == ["--"] else arguments.command
    if not command:
        raise TestbuildError(
            "ssh", "no command given", fix="testbuild ssh USER -- COMMAND [ARGS...]"
        )
    environment = _running(arguments)
    environment.config.user(arguments.user)
    login = environment.context().endpoints(ClusterEndpoints).login_node()
    result = login.run(arguments.user, " ".join(command))
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.exit_status


def _token(arguments: argparse.Namespace) -> int:
    if not arguments.user and not arguments.client:
        raise TestbuildError("token", "say whose token", fix="testbuild token USER, or --client ID")
    environment = _running(arguments)
    user = environment.config.user(arguments.user) if arguments.user else None
    keycloak = environment.context().endpoints(KeycloakEndpoints)
    try:
        token = keycloak.token(user, arguments.client)
    except TokenRefused as refusal:
        raise TestbuildError("keycloak", f"no token: {refusal}") from refusal
    print(token)
    return 0


def _compose(arguments: argparse.Namespace) -> int:
    from firecrest_testbuild.harness import compose

    environment = _environment(arguments, quiet=True)
    cpus = int(environment.client.info().get("NCPU", 1))
    node_files = environment.state.root / "nodes" if arguments.write else None
    print(environment.compose_file(engine_cpus=cpus, node_files=node_files), end="")
    if node_files is not None:
        print(compose.export_line(node_files), file=sys.stderr)
    return 0


def _conformance(arguments: argparse.Namespace) -> int:
    if arguments.html and not arguments.compare:
        print("✗ conformance: --html FILE goes with --compare A.json B.json", file=sys.stderr)
        return 2
    if arguments.compare:
        first, second = arguments.compare
        print(conformance.compare(first, second, html=arguments.html))
        if arguments.html:
            print(f"compare page: {arguments.html}")
        return 0
    if arguments.target:
        return _judge(arguments, arguments.target, arguments.report)
    environment = _running(arguments)
    if arguments.implementation:
        target = environment.implementation_target(arguments.implementation)
        return _judge(arguments, target, arguments.report)
    if not arguments.all:
        return _judge(arguments, environment.target_file(arguments.api), arguments.report)
    return _judge_all(arguments, environment)


def _judge(arguments: argparse.Namespace, target: Path, report: Path) -> int:
    code = conformance.run(target, report, arguments.pytest_args, strict=arguments.strict)
    print(f"report: {report}/report.html, report.md, report.json, junit.xml")
    return code


def _judge_all(arguments: argparse.Namespace, environment: Environment) -> int:
    """The stack and each implementation, one after the other, then each
    implementation beside the stack; the worst exit code."""
    report: Path = arguments.report
    # Each implementation is compared with the stack's API of its generation.
    stacks = {
        api: name
        for api, name in (("v1", "stack"), ("v2", "stack-v2"))
        if environment.state_has_target(api)
    }
    targets = {name: environment.target_file(api) for api, name in stacks.items()} | {
        hosted.name: environment.implementation_target(hosted.name)
        for hosted in environment.implementations
    }
    codes = [_judge(arguments, target, report / name) for name, target in targets.items()]
    for hosted in environment.implementations:
        if hosted.entry.api not in stacks:
            continue
        stack = report / stacks[hosted.entry.api] / "report.json"
        page = report / f"compare-{hosted.name}.html"
        print(conformance.compare(stack, report / hosted.name / "report.json", html=page))
        print(f"compare page: {page}")
    return max(codes)


def _placeholders(arguments: argparse.Namespace) -> int:
    print("\n".join(templates.catalogue()))
    return 0


def _images(arguments: argparse.Namespace) -> int:
    environment = _environment(arguments)
    with environment.progress.stage("images"):
        environment.build_images()
    return 0


if __name__ == "__main__":
    sys.exit(main())
