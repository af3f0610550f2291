"""Filesystem operations: synchronous commands on the system as the user
(`/filesystem/{system}/ops/...`), files up to `transfer.maxOpsFileSize`."""

from __future__ import annotations

import posixpath
from typing import Any

from flask import Blueprint, Response, request

from firecrest_testbuild.stack.commands import quote
from firecrest_testbuild.stack.errors import ApiError
from firecrest_testbuild.stack.listing import (
    LS_FLAGS,
    STAT_FORMAT,
    file_model,
    parse_listing,
    parse_stat,
)
from firecrest_testbuild.stack.v2 import models
from firecrest_testbuild.stack.v2.api import (
    Call,
    ValidationFailed,
    body,
    query_bool,
    query_int,
    required_query,
    route,
    v2_context,
)

blueprint = Blueprint("v2-ops", __name__, url_prefix="/filesystem/<system_name>/ops")

LS = "ls " + " ".join(quote(flag) for flag in LS_FLAGS)
# tar's flag for each of the description's compression types.
TAR_FLAG = {"none": "", "gzip": "z", "bzip2": "j", "xz": "J"}


def _limit() -> int:
    return v2_context().config.transfer.max_ops_file_size


def _listed(call: Call, command: str, path: str) -> dict[str, Any]:
    """Run `command`, then `ls -ld` the path: the File the description answers with."""
    output = call.check(f"{command} && {LS} -d -- {quote(path)}", path)
    entries = parse_listing(output.text, path, recursive=False)
    return {"output": file_model(entries[0]) if entries else None}


@route(blueprint, "GET", "/ls")
def ls(call: Call) -> dict[str, Any]:
    path = required_query("path")
    options = [
        flag
        for name, flag in (
            ("showHidden", "-A"),
            ("numericUid", "--numeric-uid-gid"),
            ("recursive", "-R"),
            ("dereference", "-L"),
        )
        if query_bool(name)
    ]
    recursive = "-R" in options
    output = call.check(f"{LS} {' '.join(options)} -- {quote(path)}", path)
    entries = parse_listing(output.text, path, recursive)
    return {"output": [file_model(entry) for entry in entries]}


def _count(name: str) -> int | None:
    value = query_int(name)
    if value is not None and value < 0:
        raise ValidationFailed(f"'{name}' must not be negative")
    return value


def _part(call: Call, program: str, skip: bool) -> tuple[str, str, int | None, int | None]:
    """head or tail by bytes or lines (10 lines by default); the content, cut at the limit."""
    path = required_query("path")
    count_bytes, count_lines = _count("bytes"), _count("lines")
    if count_bytes is not None and count_lines is not None:
        raise ApiError(400, "Only one of `bytes` or `lines` can be specified.")
    flag, count = ("-c", count_bytes) if count_bytes is not None else ("-n", count_lines)
    # head: all but the last N (-N); tail: from the N-th on (+N).
    sign = ("-" if program == "head" else "+") if skip else ""
    number = 10 if count is None else count
    output = call.check(f"{program} {flag} {sign}{number} -- {quote(path)}", path)
    content = output.stdout[: _limit()] if program == "head" else output.stdout[-_limit() :]
    unit = "bytes" if count_bytes is not None else "lines"
    return content.decode(errors="replace"), unit, count_bytes, count_lines


@route(blueprint, "GET", "/head")
def head(call: Call) -> dict[str, Any]:
    skip = query_bool("skipTrailing")
    content, unit, count_bytes, count_lines = _part(call, "head", skip)
    count = count_bytes if count_bytes is not None else (count_lines or 10)
    return {
        "output": {
            "content": content,
            "contentType": unit,
            "startPosition": 0,
            "endPosition": -count if skip else count,
        }
    }


@route(blueprint, "GET", "/tail")
def tail(call: Call) -> dict[str, Any]:
    skip = query_bool("skipHeading")
    content, unit, count_bytes, count_lines = _part(call, "tail", skip)
    count = count_bytes if count_bytes is not None else (count_lines or 10)
    return {
        "output": {
            "content": content,
            "contentType": unit,
            "startPosition": count if skip else -count,
            "endPosition": -1,
        }
    }


@route(blueprint, "GET", "/view")
def view(call: Call) -> dict[str, Any]:
    path = required_query("path")
    size = query_int("size", _limit())
    offset = query_int("offset", 0)
    assert size is not None and offset is not None
    if offset < 0:
        raise ApiError(400, "`offset` value must be an integer value equal or greater than 0")
    if size <= 0:
        raise ApiError(400, "`size` value must be an integer value greater than 0")
    if size > _limit():
        raise ApiError(400, f"`size` value must be less than {_limit()} bytes")
    output = call.check(
        f"dd if={quote(path)} iflag=skip_bytes,count_bytes skip={offset} count={size}"
        " bs=65536 status=none",
        path,
    )
    return {"output": output.stdout.decode(errors="replace")}


@route(blueprint, "GET", "/checksum")
def checksum(call: Call) -> dict[str, Any]:
    path = required_query("path")
    output = call.check(f"sha256sum -- {quote(path)}", path)
    return {"output": {"algorithm": "SHA-256", "checksum": output.text.split()[0]}}


@route(blueprint, "GET", "/file")
def file_type(call: Call) -> dict[str, Any]:
    path = required_query("path")
    output = call.check(f"file -b -- {quote(path)}", path)
    return {"output": output.text.strip()}


@route(blueprint, "GET", "/stat")
def stat(call: Call) -> dict[str, Any]:
    path = required_query("path")
    follow = "-L " if query_bool("dereference") else ""
    output = call.check(f"stat {follow}-c {quote(STAT_FORMAT)} -- {quote(path)}", path)
    return {"output": parse_stat(output.text)}


@route(blueprint, "GET", "/download")
def download(call: Call) -> Response:
    path = required_query("path")
    # One byte over the limit tells "too big" without reading the whole file.
    output = call.check(f"head -c {_limit() + 1} -- {quote(path)}", path)
    if len(output.stdout) > _limit():
        raise ApiError(413, f"{path} is larger than {_limit()} bytes: use /transfer/download")
    return Response(output.stdout, mimetype="application/octet-stream")


@route(blueprint, "POST", "/upload", status=204)
def upload(call: Call) -> None:
    folder = required_query("path")
    sent = request.files.get("file")
    if sent is None:
        raise ValidationFailed("The form field 'file' (the file to upload) is required")
    name = posixpath.basename((sent.filename or "").replace("\\", "/"))
    if name in ("", ".", "..") or any(char < " " for char in name):
        raise ValidationFailed("The uploaded file has no usable file name")
    content = sent.read(_limit() + 1)
    if len(content) > _limit():
        raise ApiError(413, f"The file is larger than {_limit()} bytes: use /transfer/upload")
    target = posixpath.join(folder, name)
    call.check(f"cat > {quote(target)}", target, stdin=content)


@route(blueprint, "PUT", "/chmod")
def chmod(call: Call) -> dict[str, Any]:
    sent = body(models.Chmod)
    path = sent.source_path
    return _listed(call, f"chmod {quote(sent.mode)} -- {quote(path)}", path)


@route(blueprint, "PUT", "/chown")
def chown(call: Call) -> dict[str, Any]:
    sent = body(models.Chown)
    path = sent.source_path
    if not sent.owner and not sent.group:
        raise ApiError(400, "Either `owner` or `group` must be given")
    owner = sent.owner + (f":{sent.group}" if sent.group else "")
    return _listed(call, f"chown {quote(owner)} -- {quote(path)}", path)


@route(blueprint, "POST", "/mkdir", status=201)
def mkdir(call: Call) -> dict[str, Any]:
    sent = body(models.Mkdir)
    path = sent.source_path
    parents = "-p " if sent.parent else ""
    return _listed(call, f"mkdir {parents}-- {quote(path)}", path)


@route(blueprint, "POST", "/symlink", status=201)
def symlink(call: Call) -> dict[str, Any]:
    sent = body(models.Symlink)
    return _listed(
        call, f"ln -s -- {quote(sent.source_path)} {quote(sent.link_path)}", sent.link_path
    )


@route(blueprint, "DELETE", "/rm", status=204)
def rm(call: Call) -> None:
    path = required_query("path")
    call.check(f"rm -r --interactive=never -- {quote(path)}", path)


def tar_compress(sent: models.Compress, timeout: str = "") -> str:
    """The tar command line of a compress request (shared with the transfer job);
    `timeout` ("timeout N "), when given, prefixes each program."""
    parent, base = posixpath.split(sent.source_path.rstrip("/") or "/")
    flags = ("h" if sent.dereference else "") + TAR_FLAG[sent.compression]
    if sent.match_pattern:
        # Only the files under the source whose path (./<base>/...) matches the pattern.
        return (
            f"cd {quote(parent or '.')} && {timeout}find {quote('./' + base)} -regex"
            f" {quote(sent.match_pattern)} -print0 | {timeout}tar -c{flags}f"
            f" {_absolute(sent.target_path)} --null --no-recursion -T -"
        )
    return (
        f"{timeout}tar -c{flags}f {quote(sent.target_path)} -C {quote(parent or '.')}"
        f" -- {quote(base)}"
    )


def _absolute(path: str) -> str:
    """`path` for a command that changed directory: relative paths stay under $HOME."""
    return quote(path) if path.startswith("/") else f'"$HOME"/{quote(path)}'


def tar_extract(sent: models.Extract) -> str:
    flag = TAR_FLAG[sent.compression]
    return f"tar -x{flag}f {quote(sent.source_path)} -C {quote(sent.target_path)}"


@route(blueprint, "POST", "/compress", status=204)
def compress(call: Call) -> None:
    sent = body(models.Compress)
    limit = v2_context().config.ssh.command_timeout
    call.check(tar_compress(sent, f"timeout {limit} "), sent.target_path, timed=False)


@route(blueprint, "POST", "/extract", status=204)
def extract(call: Call) -> None:
    sent = body(models.Extract)
    call.check(tar_extract(sent), sent.source_path)
