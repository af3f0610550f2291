"""Utilities: blocking file operations on a system, run as the caller.

Every operation is one command through the certificator and SSH, limited to
the configured time; a failure becomes the error header FirecREST v1 names.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any
from urllib.parse import quote as url_quote

from flask import Blueprint, Response, jsonify

from firecrest_testbuild.common.sshexec import Output
from firecrest_testbuild.stack import errors, schemas
from firecrest_testbuild.stack.api import (
    Call,
    Endpoint,
    Param,
    file_name,
    has_forbidden_char,
    route,
)
from firecrest_testbuild.stack.commands import IDENTITY_COMMAND, failure, parse_identity, quote
from firecrest_testbuild.stack.context import stack_context
from firecrest_testbuild.stack.errors import ApiError
from firecrest_testbuild.stack.listing import LS_FLAGS, STAT_FORMAT, parse_listing, parse_stat
from firecrest_testbuild.stack.services import Service

blueprint = Blueprint("utilities", __name__, url_prefix="/utilities")
SERVICE = Service(name="utilities", blueprint=blueprint)
_route = lambda endpoint: route(blueprint, endpoint, SERVICE.endpoints)  # noqa: E731

COUNT = re.compile(r"^\d{1,12}$")
MODE = re.compile(r"^([0-7]{1,4}|[ugoa]*[-+=][rwxXst]*([,][ugoa]*[-+=][rwxXst]*)*)$")
ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$")


def _endpoint(
    method: str,
    name: str,
    summary: str,
    success: int,
    failure_text: str,
    *params: Param,
    response: schemas.Schema | None = schemas.UTILITIES_TEXT,
    media: str = "application/json",
    not_found: bool = False,
) -> Endpoint:
    return Endpoint(
        method,
        f"/utilities/{name}",
        summary,
        success,
        failure_text,
        params,
        tag="Utilities",
        response=response,
        media=media,
        not_found=not_found,  # a grep that matches nothing: 404, as FirecREST v1
    )


def _path(name: str, location: str = "query") -> Param:
    """A path: refused with FirecREST v1's "'<name>' has invalid char" when it
    holds a character FirecREST v1 refuses, so no such file is ever made."""
    return Param(name, location, required=True, forbid_chars=True)  # type: ignore[arg-type]


def _text(name: str, location: str = "query") -> Param:
    """An optional value that FirecREST v1 screens like a path."""
    return Param(name, location, forbid_chars=True)  # type: ignore[arg-type]


def _run(call: Call, command: str, path: str, stdin: bytes = b"") -> Output:
    """Run a utilities command; a non-zero exit is the client's error for `path`."""
    context = stack_context()
    output = context.shell.run(
        call.user, call.machine, command, context.config.limits.utilities_timeout, stdin
    )
    if output.exit_status != 0:
        raise failure(output, path)
    return output


def _arg(path: str) -> str:
    """A path that no command can mistake for an option."""
    if not path or "\n" in path:
        raise ApiError(400, f"{path!r} is an invalid path", errors.INVALID_PATH)
    return f"./{path}" if path.startswith("-") else path


def _ok(description: str, output: Any = "", status: int = 200) -> tuple[Response, int]:
    return jsonify({"description": description, "output": output}), status


def _max_bytes() -> int:
    return stack_context().config.limits.utilities_max_file_size_mb * 1024 * 1024


@_route(
    _endpoint(
        "GET",
        "ls",
        "List directory contents",
        200,
        "Error listing contents of path",
        _path("targetPath"),
        Param("numericUid", "query", "boolean", default=False),
        Param("showhidden", "query", "boolean", default=False),
        Param("recursive", "query", "boolean", default=False),
        response=schemas.LISTING,
    )
)
def ls(call: Call):
    target = call.params["targetPath"]
    flags = list(LS_FLAGS)
    if call.params["showhidden"]:
        flags.append("-A")
    if call.params["numericUid"]:
        flags.append("--numeric-uid-gid")
    if call.params["recursive"]:
        flags.append("-R")
    output = _run(call, f"ls {' '.join(flags)} -- {quote(target)}", target)
    return _ok("List of contents", parse_listing(output.text, target, call.params["recursive"]))


@_route(
    _endpoint(
        "POST",
        "mkdir",
        "Creates a directory",
        201,
        "Error creating directory",
        _path("targetPath", "form"),
        Param("p", "form", "boolean", default=False),
    )
)
def mkdir(call: Call):
    target = call.params["targetPath"]
    parents = "-p " if call.params["p"] else ""
    _run(call, f"mkdir {parents}-- {quote(target)}", target)
    return _ok("Directory created", status=201)


@_route(
    _endpoint(
        "PUT",
        "rename",
        "Rename/move a file, directory, or symlink",
        200,
        "Error on rename operation",
        _path("sourcePath", "form"),
        _path("targetPath", "form"),
    )
)
def rename(call: Call):
    source, target = call.params["sourcePath"], call.params["targetPath"]
    try:
        _run(call, f"mv -T -- {quote(source)} {quote(target)}", source)
    except ApiError as error:
        raise _source_missing(error, source) from None
    return _ok("Success to rename file or directory")


@_route(
    _endpoint(
        "PUT",
        "chmod",
        "Change file mode bits",
        200,
        "Error in chmod operation",
        _path("targetPath", "form"),
        _path("mode", "form"),
    )
)
def chmod(call: Call):
    target, mode = call.params["targetPath"], call.params["mode"]
    if not MODE.match(mode):
        raise ApiError(400, f"{mode} is an invalid mode", errors.INVALID_MODE)
    output = _run(call, f"chmod -v -- {quote(mode)} {quote(target)}", target)
    return _ok("Operation completed", output.text.strip())


@_route(
    _endpoint(
        "PUT",
        "chown",
        "Change file owner and group",
        200,
        "Error in chown operation",
        _path("targetPath", "form"),
        _text("owner", "form"),
        _text("group", "form"),
    )
)
def chown(call: Call):
    target = call.params["targetPath"]
    owner, group = call.params["owner"] or "", call.params["group"] or ""
    if not owner and not group:
        raise ApiError(400, "Give an owner, a group or both", errors.INVALID_OWNER)
    for value, header in ((owner, errors.INVALID_OWNER), (group, errors.INVALID_GROUP)):
        if value and not ACCOUNT_NAME.match(value):
            raise ApiError(400, f"{value} is not a valid name", header)
    spec = owner + (f":{group}" if group else "")
    try:
        output = _run(call, f"chown -v -- {quote(spec)} {quote(target)}", target)
    except ApiError as error:
        if "invalid user" in error.detail:
            raise ApiError(400, f"{owner} is not a valid owner", errors.INVALID_OWNER) from None
        if "invalid group" in error.detail:
            raise ApiError(400, f"{group} is not a valid group", errors.INVALID_GROUP) from None
        raise
    return _ok("Operation completed", output.text.strip())


@_route(
    _endpoint(
        "POST",
        "copy",
        "Copy file from a filesystem path to another",
        201,
        "Error in copy operation",
        _path("sourcePath", "form"),
        _path("targetPath", "form"),
    )
)
def copy(call: Call):
    source, target = call.params["sourcePath"], call.params["targetPath"]
    try:
        _run(call, f"cp --force -dR --preserve=all -- {quote(source)} {quote(target)}", target)
    except ApiError as error:
        raise _source_missing(error, source) from None
    return _ok("Object copy succesful", status=201)


def _source_missing(error: ApiError, source: str) -> ApiError:
    """X-Not-Found when the failure is about the source, not the target."""
    detail = error.detail.lower()
    missing = "no such file" in detail or "cannot find" in detail
    about_target = "cannot move" in detail or "cannot create" in detail
    about_source = "cannot stat" in detail or (source.lower() in detail and not about_target)
    if missing and about_source:
        return ApiError(400, f"{source} not found", errors.NOT_FOUND, detail=error.detail)
    return error


@_route(
    _endpoint(
        "GET", "file", "determine file type", 200, "Error in file operation", _path("targetPath")
    )
)
def file_type(call: Call):
    target = call.params["targetPath"]
    output = _run(call, f"file -E -b -- {quote(target)}", target)
    return _ok("Operation completed", output.text.strip())


def _lines_or_bytes(call: Call) -> tuple[str, str]:
    count_bytes, count_lines = call.params["bytes"], call.params["lines"]
    if count_bytes and count_lines:
        raise errors.bad_request("'bytes' and 'lines' cannot be given together")
    for name in ("bytes", "lines"):
        value = call.params[name]
        if value is not None and not COUNT.match(value):
            raise errors.bad_request(f"'{name}' must be a whole number, got {value!r}")
    return ("-c", count_bytes) if count_bytes else ("-n", count_lines or "10")


def _grep_suffix(call: Call) -> str:
    # "Supports fixed strings matching patterns only" (the API description).
    pattern = call.params["grep"]
    return f" | grep --fixed-strings --regexp={quote(pattern)}" if pattern else ""


def _piped(call: Call, program: str, command: str, target: str) -> Output:
    """head or tail, its output maybe filtered by grep (exit 1: nothing matched)."""
    context = stack_context()
    output = context.shell.run(
        call.user, call.machine, command, context.config.limits.utilities_timeout
    )
    if output.stderr.strip() or output.exit_status > 1:
        raise failure(output, target)
    if call.params["grep"] and output.exit_status == 1:
        # FirecREST v1's answer (check_command_error): 404, X-Not-Found.
        raise ApiError(
            404,
            "pattern not found",
            errors.NOT_FOUND,
            body={
                "description": f"Error on {program} operation with grep",
                "error": "pattern not found",
            },
        )
    if output.exit_status != 0:
        raise failure(output, target)
    return output


def _part_params(skip: str) -> tuple[Param, ...]:
    return (
        _path("targetPath"),
        _text("bytes"),
        _text("lines"),
        Param(skip, "query", "boolean", default=False),
        Param("grep", "query"),
    )


def _file_part(call: Call, program: str, skip: str, skip_sign: str):
    """head or tail: by lines or bytes, optionally skipping, optionally filtered."""
    target = call.params["targetPath"]
    flag, count = _lines_or_bytes(call)
    sign = skip_sign if call.params[skip] else ""
    command = f"{program} {flag} {sign}{count} -- {quote(target)}{_grep_suffix(call)}"
    content = _piped(call, program, command, target).stdout
    # At most the size limit, as FirecREST v1: the first bytes of head's
    # output, the last of tail's.
    limit = _max_bytes()
    part = content[:limit] if program == "head" else content[-limit:]
    return _ok("File content successfully returned", part.decode(errors="replace"))


@_route(
    _endpoint(
        "GET",
        "head",
        "Prints first part of a file",
        200,
        "Failed to return file content",
        *_part_params("skip_ending"),
        not_found=True,
    )
)
def head(call: Call):
    return _file_part(call, "head", "skip_ending", "-")  # all but the last N


@_route(
    _endpoint(
        "GET",
        "tail",
        "Prints last part of a file",
        200,
        "Failed to return file content",
        *_part_params("skip_beginning"),
        not_found=True,
    )
)
def tail(call: Call):
    return _file_part(call, "tail", "skip_beginning", "+")  # from the Nth on


@_route(
    _endpoint(
        "GET",
        "stat",
        "determines the status of a file",
        200,
        "Error on stat operation",
        _path("targetPath"),
        Param("dereference", "query", "boolean", default=False),
        response=schemas.STAT,
    )
)
def stat(call: Call):
    target = call.params["targetPath"]
    follow = "-L " if call.params["dereference"] else ""
    output = _run(call, f"stat {follow}-c {quote(STAT_FORMAT)} -- {quote(target)}", target)
    return _ok("Operation completed", parse_stat(output.text))


@_route(
    _endpoint(
        "POST",
        "symlink",
        "Create a symlink",
        201,
        "Failed to create symlink",
        _path("targetPath", "form"),
        _path("linkPath", "form"),
    )
)
def symlink(call: Call):
    target, link = call.params["targetPath"], call.params["linkPath"]
    _run(call, f"ln -s -- {quote(target)} {quote(link)}", link)
    return _ok("Success create the symlink", status=201)


@_route(
    _endpoint(
        "GET",
        "download",
        "Download a small file (binary or text)",
        200,
        "Failed to download file",
        _path("sourcePath"),
        response=schemas.BINARY,
        media="application/octet-stream",
    )
)
def download(call: Call):
    source = call.params["sourcePath"]
    content = _read_small_file(call, source)
    name = posixpath.basename(source.rstrip("/")) or "download"
    return Response(
        content,
        mimetype="application/octet-stream",
        headers={"Content-Disposition": _attachment(name)},
    )


def _attachment(name: str) -> str:
    """A Content-Disposition any client can parse, whatever the file is called."""
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{url_quote(name, safe='')}"


def _read_small_file(call: Call, path: str) -> bytes:
    limit = _max_bytes()
    # One byte more than allowed tells "too big" without reading the whole file.
    output = _run(call, f"head -c {limit + 1} -- {quote(path)}", path)
    if len(output.stdout) > limit:
        mb = stack_context().config.limits.utilities_max_file_size_mb
        raise ApiError(
            400,
            f"{path} is larger than {mb} MB; use /storage/xfer-external/download",
            errors.SIZE_LIMIT,
        )
    return output.stdout


@_route(
    _endpoint(
        "POST",
        "upload",
        "Uploads a small file",
        201,
        "Failed to upload file",
        Param("file", "file", required=True),
        _path("targetPath", "form"),
    )
)
def upload(call: Call):
    upload_file = call.files["file"]
    if has_forbidden_char(upload_file.filename or ""):
        raise errors.bad_request("Filename has invalid char")  # FirecREST v1's words
    name = file_name(upload_file, "uploaded file")
    content = upload_file.read(_max_bytes() + 1)
    if len(content) > _max_bytes():
        mb = stack_context().config.limits.utilities_max_file_size_mb
        raise ApiError(
            400,
            f"File is larger than {mb} MB; use /storage/xfer-external/upload",
            errors.SIZE_LIMIT,
        )
    target = posixpath.join(call.params["targetPath"], name)
    _run(call, f"cat > {quote(_arg(target))}", target, stdin=content)
    return _ok("File upload successful", status=201)


@_route(
    _endpoint(
        "DELETE",
        "rm",
        "Delete a small file",
        204,
        "Failed to delete file",
        _path("targetPath", "form"),
        response=None,
    )
)
def rm(call: Call):
    target = call.params["targetPath"]
    _run(call, f"rm -r --interactive=never -- {quote(target)}", target)
    return Response(status=204)


@_route(
    _endpoint(
        "GET",
        "checksum",
        "Calculate the checksum of a given file",
        200,
        "Error obatining checksum",
        _path("targetPath"),
    )
)
def checksum(call: Call):
    target = call.params["targetPath"]
    output = _run(call, f"sha256sum -- {quote(target)}", target)
    return _ok("Checksum successfully retrieved", output.text.split()[0])


@_route(
    _endpoint(
        "GET",
        "view",
        "View the content of a plain text file (UTF8)",
        200,
        "Failed to view file content",
        _path("targetPath"),
    )
)
def view(call: Call):
    target = call.params["targetPath"]
    content = _read_small_file(call, target)
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        # "View the content of a plain text file (UTF8 chars only)": anything
        # else is refused, as FirecREST v1 does (its 400 comes from failing
        # to decode the output; this check is deliberate, same answer).
        raise ApiError(
            400,
            f"{target} is not a text file: byte 0x{content[error.start]:02x} at offset"
            f" {error.start} is not UTF-8",
            errors.ERROR,
        ) from None
    return _ok("File content successfully returned", text)


@_route(
    _endpoint(
        "GET",
        "whoami",
        "Returns current system username",
        200,
        "Failed to return username",
        Param("groups", "query", "boolean", default=False),
        response=schemas.WHOAMI,
    )
)
def whoami(call: Call):
    if not call.params["groups"]:
        output = _run(call, "id -un", "")
        return _ok("Success on whoami operation", output.text.strip())
    output = _run(call, IDENTITY_COMMAND, "")
    return _ok("User information", parse_identity(output.text))


@_route(
    _endpoint(
        "POST",
        "compress",
        "Compress file/directory",
        201,
        "Error in compress operation",
        _path("sourcePath", "form"),
        _path("targetPath", "form"),
        Param("dereference", "form", "boolean", default=False),
    )
)
def compress(call: Call):
    source, target = call.params["sourcePath"], call.params["targetPath"]
    parent, base = posixpath.split(source.rstrip("/") or "/")
    follow = "--dereference " if call.params["dereference"] else ""
    command = f"tar {follow}-czf {quote(_arg(target))} -C {quote(parent or '.')} -- {quote(base)}"
    try:
        _run(call, command, target)
    except ApiError as error:
        raise _source_missing(error, base) from None
    return _ok("Object compress succesful", status=201)


@_route(
    _endpoint(
        "POST",
        "extract",
        "Extract file",
        201,
        "Error in extract operation",
        _path("sourcePath", "form"),
        _path("targetPath", "form"),
        Param("extension", "form", default="auto"),
    )
)
def extract(call: Call):
    source, target = call.params["sourcePath"], call.params["targetPath"]
    extension = call.params["extension"]
    if extension not in ("auto", ".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz"):
        raise errors.bad_request(f"extension {extension!r} is not supported (auto, .zip, .tar...)")
    is_zip = extension == ".zip" or (extension == "auto" and source.lower().endswith(".zip"))
    if is_zip:
        command = f"unzip -q -o {quote(_arg(source))} -d {quote(_arg(target))}"
    else:
        command = f"tar -xf {quote(_arg(source))} -C {quote(_arg(target))}"
    try:
        _run(call, command, target)
    except ApiError as error:
        raise _source_missing(error, source) from None
    return _ok("Object extract succesful", status=201)
