"""The v2 status suite and the unknown-system check run for real (pytest in a
process of its own, the report written) against a small recorded-answer
double of a v2 deployment: answers written from the API description's
schemas, with a token endpoint beside them. A double that answers as the
description says passes; one that drops a required field fails exactly the
scenario and the operation that judge it; a missing F7T-AppVersion is a
SHOULD warning only."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest

from firecrest_testbuild.harness import conformance
from firecrest_testbuild.harness.paths import SCENARIOS

SYSTEM = {
    "name": "cluster",
    "ssh": {"host": "login", "port": 22},
    "scheduler": {"type": "slurm", "version": "24.11"},
    "probing": {"intervalCheck": 120},
    "fileSystems": [{"path": "/home", "dataType": "users", "defaultWorkDir": True}],
}
RECORDED: dict[str, Any] = {
    "/status/liveness/": {"healthcheckRuns": {}, "lastUpdate": 1767000000},
    "/status/systems": {"systems": [SYSTEM]},
    "/status/cluster/nodes": {"nodes": [{"name": "n1", "cpus": 2, "state": ["IDLE"]}]},
    "/status/cluster/partitions": {"partitions": [{"name": "part01", "partition": "part01"}]},
    "/status/cluster/reservations": {"reservations": []},
    "/status/cluster/userinfo": {
        "user": {"id": "1001", "name": "alice"},
        "group": {"id": "1001", "name": "alice"},
        "groups": [{"id": "1001", "name": "alice"}],
    },
}


class Double:
    """A v2 deployment answering RECORDED (with `changes` applied) and tokens."""

    def __init__(self, changes: dict[str, Any], version: str | None = "2.5.6") -> None:
        self.answers = RECORDED | changes
        self.version = version
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path == "/token":
                    token = jwt.encode({"exp": int(time.time()) + 600}, "k" * 32)
                    self._send(200, {"access_token": token})
                else:
                    self.do_GET()

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path != "/status/liveness/" and not self.headers.get("Authorization"):
                    self._send(401, {"message": "Not authenticated", "errorType": "error"})
                elif "/no-such-system-x/" in path:
                    self._send(404, {"message": "System not found", "user": "alice"})
                elif path in double.answers:
                    self._send(200, double.answers[path])
                else:
                    self._send(404, {"message": "Not Found"})

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if double.version:
                    self.send_header("F7T-AppVersion", double.version)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        return Handler


@pytest.fixture
def judge(tmp_path: Path) -> Iterator[Any]:
    """Run the status suite and the unknown-system check against a double;
    the report.json of the run."""
    doubles: list[Double] = []

    def run(changes: dict[str, Any], version: str | None = "2.5.6") -> dict[str, Any]:
        double = Double(changes, version)
        doubles.append(double)
        target = tmp_path / "target.yaml"
        target.write_text(
            f"name: double\napi: {{url: '{double.url}', version: '2.5.6'}}\n"
            f"auth: {{tokenUrl: '{double.url}/token', clientId: c, clientSecret: s}}\n"
            "identities: [{name: alice, password: a}, {name: bob, password: b}]\n"
            "system: {name: cluster, filesystems: [/home]}\n"
            "capabilities: {scheduler: slurm, transfer: s3}\n"
        )
        report = tmp_path / "report"
        v2 = SCENARIOS / "v2"
        unknown_system = f"{v2 / 'test_errors.py'}::test_an_unknown_system_is_404"
        tests = [str(v2 / "test_status.py"), unknown_system]
        conformance.run(target, report, ["-q"], quiet=True, tests=tests)
        return conformance.read_report(report)

    yield run
    for double in doubles:
        double.server.shutdown()


def outcomes(document: dict[str, Any]) -> dict[str, str]:
    return {case["id"].split("::")[-1]: case["status"] for case in document["cases"]}


def matrix(document: dict[str, Any]) -> dict[str, str]:
    return {f"{row['method']} {row['path']}": row["status"] for row in document["matrix"]}


def test_a_double_answering_as_described_passes(judge: Any):
    document = judge({})
    assert set(outcomes(document).values()) == {"PASS"}, outcomes(document)
    assert len(outcomes(document)) == 7
    assert document["scores"]["status"] == {"passed": 6, "total": 6, "percent": 100.0}
    # The unknown-system check of each area: 404 "System not found" holds as SHOULD.
    assert document["scores_by_level"]["SHOULD"]["percent"] == 100.0
    assert document["target"]["version"] == "2.5.6"


def test_a_dropped_field_fails_its_scenario_and_a_missing_header_warns(judge: Any):
    nodes = {"nodes": [{"name": "n1", "state": ["IDLE"]}]}  # cpus is required
    document = judge({"/status/cluster/nodes": nodes}, version=None)
    failed = {name for name, status in outcomes(document).items() if status != "PASS"}
    assert failed == {"test_nodes"}
    assert matrix(document)["GET /status/{system_name}/nodes"] == "fail"
    assert matrix(document)["GET /status/{system_name}/partitions"] == "pass"
    # F7T-AppVersion is what pyfirecrest reads, not what the description says: a warning.
    warned = [w["message"] for case in document["cases"] for w in case["warnings"]]
    assert warned == ["F7T-AppVersion is None"], warned
    assert matrix(document)["GET /status/systems"] == "pass"


def test_a_pytest_plugin_installed_beside_the_package_does_not_judge(
    judge: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A plugin pytest would load by its entry point (here one that errors
    every test) stays out of a run, even when PYTEST_ADDOPTS names it: only
    the suites' own plugin judges."""
    site = tmp_path / "site"
    (site / "meddler-1.0.dist-info").mkdir(parents=True)
    (site / "meddler-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: meddler\nVersion: 1.0\n"
    )
    (site / "meddler-1.0.dist-info" / "entry_points.txt").write_text(
        "[pytest11]\nmeddler = meddler\n"
    )
    (site / "meddler.py").write_text(
        "def pytest_runtest_setup(item):\n    raise RuntimeError('the meddler ran')\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(site))
    # Nor do options meant for the caller's own pytest (here: load it anyway).
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p meddler")
    document = judge({})
    assert set(outcomes(document).values()) == {"PASS"}, outcomes(document)
