"""`make bench`'s stack rows: each figure printed beside its baseline from the
same run, and a missing baseline said, not a crash after a long run; and the
upload body it sends, streamed like the plain PUT it is compared with."""

from __future__ import annotations

import os
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import requests

from firecrest_testbuild.harness import bench_stack
from firecrest_testbuild.harness.bench_stack import StreamedForm

LOAD = {"p50_ms": 20.0, "p95_ms": 30.0, "requests_per_second": 100.0, "failures": 0}


def figures(**changes: Any) -> dict[str, Any]:
    return {
        "clients": 20,
        "ls": LOAD,
        "certificate_logins_per_second": 125.0,
        "status_systems": LOAD,
        "ls_single_client_ms": 50.0,
        "job_turnaround_seconds": 1.4,
        "slurmrestd_turnaround_seconds": None,
        "certificate_signing_ms": 1.0,
        "ssh_round_trip_ms": 75.0,
        "ssh_round_trip_without_wrapper_ms": 50.0,
        "pooled_commands": {"commands": 200, "p50_ms": 20.0, "p90_ms": 22.0},
        "sshca_round_trip_ms": 100.0,
        "transfer": {},
        "conformance": {
            "v1": {"seconds": 60.0, "totals": {"passed": 59}},
            "v2": {"seconds": 90.5, "totals": {"passed": 40}},
        },
        **changes,
    }


def line_with(lines: list[str], text: str) -> str:
    [line] = [line for line in lines if text in line]
    return line


def test_the_ssh_round_trip_is_shown_with_its_wrapperless_baseline_and_ratio():
    line = line_with(bench_stack.report(figures()), "SSH round trip")
    assert "75.0 ms" in line and "without the wrapper 50.0 ms (ratio 1.50)" in line


def test_ls_is_shown_beside_the_rate_of_bare_certificate_logins_of_the_same_run():
    """Each v1 request is one login: the login node's rate bounds the API's."""
    line = line_with(bench_stack.report(figures()), "GET ls's baseline")
    assert "20 clients 125.0/s" in line and "GET ls at 0.80 of that" in line


def test_a_missing_baseline_is_said():
    lines = bench_stack.report(figures(ssh_round_trip_without_wrapper_ms=None))
    assert "no baseline" in line_with(lines, "SSH round trip")


def test_each_generations_suites_and_their_sum_are_shown():
    lines = bench_stack.report(figures())
    assert "60.0 s" in line_with(lines, "conformance suites, v1")
    assert "90.5 s" in line_with(lines, "conformance suites, v2")
    assert "150.5 s" in line_with(lines, "conformance suites, all")
    only_v1 = bench_stack.report(figures(conformance={"v1": {"seconds": 1, "totals": {}}}))
    assert not [line for line in only_v1 if "suites, all" in line]


def test_each_transfer_way_is_shown_beside_plain_s3_and_the_ratio_plain_speeds_allow():
    # 1024 MB: the plain PUT took 4 s, the GET 1 s; through the API 10 s and 5 s.
    rates = bench_stack.transfer_rates(1024, 4.0, 1.0, 10.0, 5.0, Watched())
    assert rates["upload_ratio"] == 0.4 and rates["upload_ratio_at_plain_speeds"] == 0.8
    assert rates["download_ratio"] == 0.2 and rates["download_ratio_at_plain_speeds"] == 0.2
    lines = bench_stack.report(figures(transfer=rates))
    upload = line_with(lines, "xfer-external upload")
    assert "102.4" in upload and "plain PUT   256.0" in upload
    assert "ratio 0.4 (at plain speeds 0.8)" in upload
    download = line_with(lines, "xfer-external download")
    assert "plain GET  1024.0" in download and "ratio 0.2 (at plain speeds 0.2)" in download


class Watched:
    first = 70.0
    peak = 80.0


def test_the_streamed_form_is_the_multipart_body_of_its_fields_and_file(tmp_path: Path):
    content = os.urandom(200_000)
    path = tmp_path / "data.bin"
    path.write_bytes(content)
    with StreamedForm({"key": "bucket/1/data.bin", "policy": "e30="}, path) as form:
        request = requests.Request("POST", "http://127.0.0.1:9/", data=form).prepare()
        assert request.body is form  # streamed, not copied
        body = b""
        while chunk := form.read(8192):  # as http.client sends a body it can read
            body += chunk
    assert request.headers["Content-Length"] == str(len(body))
    message = BytesParser().parsebytes(f"Content-Type: {form.content_type}\r\n\r\n".encode() + body)
    parts = {
        part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
        for part in message.get_payload()
    }
    assert parts == {"key": b"bucket/1/data.bin", "policy": b"e30=", "file": content}
    assert form.file.closed
