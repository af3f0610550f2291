"""Endpoint declarations: authentication, machine, parameters and error shapes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from flask import Blueprint, Flask, jsonify

from firecrest_testbuild.common.sshexec import Output
from firecrest_testbuild.stack import errors
from firecrest_testbuild.stack.api import Call, Endpoint, Param, openapi, route
from firecrest_testbuild.stack.commands import failure
from firecrest_testbuild.stack.config import ConfigFileError, parse
from firecrest_testbuild.stack.errors import ApiError, Unauthorized

CONFIG = {
    "systems": [{"name": "cluster", "host": "cluster", "hostKey": "ssh-ed25519 AAAA"}],
    "auth": {"jwksUrl": "http://keycloak/certs", "issuer": "http://issuer"},
    "ssh": {"caPrivateKey": "/run/ca"},
    "tasks": {"redisUrl": "redis://redis:6379/0"},
}

ENDPOINT = Endpoint(
    "GET",
    "/demo/echo",
    "Echo the parameters",
    200,
    "Error echoing",
    (
        Param("targetPath", "query", required=True),
        Param("flag", "query", "boolean", default=False),
        Param("count", "query", "integer", default=3),
        Param("items", "query", "list"),
    ),
    tag="Demo",
)


class Verifier:
    def user_of(self, header: str | None) -> str:
        if header != "Bearer good":
            raise Unauthorized({"message": "Bad token; invalid JSON"})
        return "test1"


@pytest.fixture
def client():
    app = Flask("test")
    app.extensions["stack"] = SimpleNamespace(verifier=Verifier(), config=parse(CONFIG, "t"))
    blueprint = Blueprint("demo", __name__, url_prefix="/demo")
    registry: list[Endpoint] = []

    @route(blueprint, ENDPOINT, registry)
    def echo(call: Call):
        if call.params["targetPath"] == "boom":
            raise ApiError(400, "/x is an invalid path", errors.INVALID_PATH)
        return jsonify({"user": call.user, "machine": call.machine.name, **call.params})

    app.register_blueprint(blueprint)
    return app.test_client()


def get(client, query: str, machine: str | None = "cluster", token: str = "good"):
    headers = {"Authorization": f"Bearer {token}"}
    if machine is not None:
        headers["X-Machine-Name"] = machine
    return client.get(f"/demo/echo?{query}", headers=headers)


def test_parameters_are_converted(client):
    body = get(client, "targetPath=/home&flag=True&count=7&items=1,2&items=3").get_json()
    assert body == {
        "user": "test1",
        "machine": "cluster",
        "targetPath": "/home",
        "flag": True,
        "count": 7,
        "items": ["1", "2", "3"],
    }
    defaults = get(client, "targetPath=/home").get_json()
    assert (defaults["flag"], defaults["count"], defaults["items"]) == (False, 3, None)


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("flag=true", "targetPath"),
        ("targetPath=a&flag=maybe", "flag"),
        ("targetPath=a&count=-1", "count"),
        ("targetPath=a%00b", "targetPath"),
    ],
)
def test_bad_parameters_are_a_400_naming_them(client, query: str, named: str):
    response = get(client, query)
    assert response.status_code == 400
    assert response.get_json()["description"] == "Error echoing"
    assert named in response.get_json()["error"]


def test_the_machine_header_is_required_and_checked(client):
    # FirecREST v1's answer to a missing header: a plain 400, no X- header.
    missing = get(client, "targetPath=a", machine=None)
    assert (missing.status_code, missing.get_json()) == (
        400,
        {"description": "Error echoing", "error": "No machine name given"},
    )
    assert not [name for name, _ in missing.headers.items() if name.startswith("X-")]
    unknown = get(client, "targetPath=a", machine="other")
    assert unknown.headers["X-Machine-Does-Not-Exist"] == "Machine other does not exist"


def test_errors_carry_their_header_and_tokens_come_first(client):
    failed = get(client, "targetPath=boom")
    assert failed.status_code == 400
    assert failed.headers["X-Invalid-Path"] == "/x is an invalid path"
    assert failed.get_json() == {"description": "Error echoing", "error": "/x is an invalid path"}
    refused = get(client, "targetPath=a", machine="other", token="bad")
    assert (refused.status_code, refused.get_json()) == (
        401,
        {"message": "Bad token; invalid JSON"},
    )


def test_openapi_describes_the_declarations():
    document = openapi([ENDPOINT], "1.16.1")
    operation = document["paths"]["/demo/echo"]["get"]
    names = [(p["in"], p["name"], p["required"]) for p in operation["parameters"]]
    assert names[:2] == [("header", "X-Machine-Name", True), ("query", "targetPath", True)]
    assert set(operation["responses"]) == {"200", "400", "401", "503"}


def output(stderr: str, status: int = 1) -> Output:
    return Output(status, b"", stderr)


@pytest.mark.parametrize(
    ("stderr", "header", "text"),
    [
        (
            "ls: cannot open directory '/p': Permission denied",
            errors.PERMISSION_DENIED,
            errors.PERMISSION_DENIED_TEXT,
        ),
        (
            "ls: cannot access '/p': No such file or directory",
            errors.INVALID_PATH,
            "/p is an invalid path",
        ),
        ("mkdir: cannot create directory '/p': File exists", errors.EXISTS, "/p already exists"),
        ("sha256sum: /p: Is a directory", errors.A_DIRECTORY, "/p is a directory"),
        (
            "stat: cannot statx '/p/x': Not a directory",
            errors.NOT_A_DIRECTORY,
            "/p is not a directory",
        ),
        ("something else entirely", errors.ERROR, "something else entirely"),
    ],
)
def test_command_failures_map_to_the_apis_headers(stderr: str, header: str, text: str):
    error = failure(output(stderr), "/p")
    assert (error.status, error.headers, error.error) == (400, {header: text}, text)
    assert error.detail == stderr


def test_config_errors_name_the_key():
    with pytest.raises(ConfigFileError) as raised:
        parse({**CONFIG, "tasks": {"redisUrl": "x", "expirySecond": 5}}, "stack.yaml")
    assert any("tasks.expirySecond" in problem for problem in raised.value.problems)
    with pytest.raises(ConfigFileError) as raised:
        parse({key: value for key, value in CONFIG.items() if key != "auth"}, "stack.yaml")
    assert raised.value.problems == [
        "stack.yaml: 'auth' is required (fix: add it; see stack/README.md)"
    ]
