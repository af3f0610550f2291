"""Filesystem transfers (`/filesystem/{system}/transfer/...`): jobs on the
transfer partition that move the bytes on the cluster, as the user.

Each answers 201 with its `transferJob` (job id, working directory, output
and error logs); clients follow the job through /compute and read its
output log for the lines they check ("File was successfully ...", "Files
were successfully ...", "Multipart file upload successfully completed").
Large files go through S3 as clients expect: an upload gets presigned
part URLs and a completion URL, its job waits for the object and fetches
it; a download's job uploads the file in parts, and the client gets a
presigned GET. Bytes never pass through the API process.
"""

from __future__ import annotations

import math
import posixpath
import re
import uuid
from typing import Annotated, Any

from flask import Blueprint
from pydantic import Field, model_validator

from firecrest_testbuild.stack import slurm
from firecrest_testbuild.stack.commands import quote
from firecrest_testbuild.stack.errors import ApiError
from firecrest_testbuild.stack.listing import STAT_FORMAT, parse_stat
from firecrest_testbuild.stack.staging import Staging
from firecrest_testbuild.stack.v2 import models
from firecrest_testbuild.stack.v2.api import (
    Call,
    ValidationFailed,
    body,
    query,
    required_query,
    route,
    v2_context,
)
from firecrest_testbuild.stack.v2.ops import tar_compress, tar_extract

blueprint = Blueprint("v2-transfer", __name__, url_prefix="/filesystem/<system_name>/transfer")

ACCOUNT_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"
ACCOUNT = Annotated[str | None, Field(default=None, pattern=ACCOUNT_PATTERN)]
UPLOAD_POLL_SECONDS = 2  # how often the ingress job looks for the uploaded object


class Directives(models.Body):
    transfer_method: str = "s3"
    file_size: Annotated[int, Field(ge=0)] | None = None


class Upload(models.Body):
    # The target file; clients before API 2.4 sent its folder here and the
    # name in `fileName` (pyfirecrest reads F7T-AppVersion to choose).
    source_path: models.SourcePath
    file_name: str | None = None
    file_size: Annotated[int, Field(ge=0)] | None = None
    transfer_directives: Directives = Directives()
    account: ACCOUNT

    @model_validator(mode="after")
    def _size_given(self) -> Upload:
        if self.transfer_directives.file_size is None and self.file_size is None:
            raise ValueError("transferDirectives.fileSize (the file's size in bytes) is required")
        return self

    @property
    def target(self) -> str:
        if self.file_name:
            return posixpath.join(self.source_path, self.file_name)
        return self.source_path

    @property
    def size(self) -> int:
        size = self.transfer_directives.file_size
        return size if size is not None else self.file_size or 0


class Download(models.Body):
    source_path: models.SourcePath
    transfer_directives: Directives = Directives()
    account: ACCOUNT


class Copy(models.PathBody):
    target_path: models.NonEmpty
    dereference: bool = False
    account: ACCOUNT


class Move(models.PathBody):
    target_path: models.NonEmpty
    account: ACCOUNT


class Compress(models.Compress):
    account: ACCOUNT


class Extract(models.Extract):
    account: ACCOUNT


def _staging() -> Staging:
    staging = v2_context().staging
    if staging is None:
        raise ApiError(503, "This deployment has no S3 staging area for transfers")
    return staging


def _s3_only(directives: Directives) -> None:
    if directives.transfer_method != "s3":
        raise ApiError(
            400, f"Transfer method '{directives.transfer_method}' is not offered here (only s3)"
        )


def _submit(call: Call, name: str, script: str, account: str | None) -> dict[str, Any]:
    """Submit `script` (bash lines) as a job on the transfer partition; its transferJob."""
    settings = v2_context().config.transfer
    folder = settings.jobs_folder
    output = call.check(f"mkdir -p -- {quote(folder)} && echo $HOME", folder)
    working = posixpath.join(output.text.strip(), folder)
    unique = uuid.uuid4().hex
    logs = {
        "outputLog": f"{working}/.f7t_file_handling_job_{unique}.log",
        "errorLog": f"{working}/.f7t_file_handling_job_error_{unique}.log",
    }
    header = "\n".join(
        [
            "#!/bin/bash",
            f"#SBATCH --job-name={name}",
            f"#SBATCH --partition={settings.partition}",
            f"#SBATCH --time={settings.time_limit}",
            f"#SBATCH --chdir={working}",
            f"#SBATCH --output={logs['outputLog']}",
            f"#SBATCH --error={logs['errorLog']}",
            "#SBATCH --input=/dev/null",
            *([f"#SBATCH --account={account}"] if account else []),
            'echo "$(date -u) ' + name + ' (job ${SLURM_JOB_ID})"',
        ]
    )
    limit = v2_context().config.scheduler_timeout
    submitted = call.run(
        f"timeout {limit} sbatch --parsable", f"{header}\n{script}\n".encode(), timeout=limit + 10
    )
    job_id = slurm.submitted_job_id(submitted.text) if submitted.exit_status == 0 else None
    if job_id is None:
        raise ApiError(400, f"The transfer job was not submitted: {submitted.stderr.strip()}")
    return {
        "transferJob": {
            "jobId": job_id,
            "system": call.system.name,
            "workingDirectory": working,
            "logs": logs,
        }
    }


def _stat(call: Call, path: str) -> dict[str, int]:
    output = call.check(f"stat -L -c {quote(STAT_FORMAT)} -- {quote(path)}", path)
    return parse_stat(output.text)


def _parts(size: int) -> int:
    return max(1, math.ceil(size / v2_context().config.transfer.max_part_size))


@route(blueprint, "POST", "/upload", status=201)
def upload(call: Call) -> dict[str, Any]:
    sent = body(Upload)
    _s3_only(sent.transfer_directives)
    staging = _staging()
    target = sent.target
    folder = posixpath.dirname(target) or "."
    writable = call.run(f"test -d {quote(folder)} && test -w {quote(folder)}")
    if writable.exit_status != 0:
        raise ApiError(400, f"{folder} is not a directory {call.user} can write to")
    bucket = staging.bucket_for(call.user)
    key = f"{uuid.uuid4()}/{posixpath.basename(target)}"
    upload_id = staging.start_multipart(bucket, key)
    parts = [staging.part_url(bucket, key, upload_id, n) for n in range(1, _parts(sent.size) + 1)]
    script = f"""target={quote(target)}
head_url={quote(staging.signed_url("HEAD", bucket, key))}
get_url={quote(staging.get_url(bucket, key))}
delete_url={quote(staging.signed_url("DELETE", bucket, key))}
echo "$(date -u) Waiting for the upload of $target to complete"
until curl --silent --fail --head --output /dev/null "$head_url"; do
    sleep {UPLOAD_POLL_SECONDS}
done
echo "$(date -u) Uploaded: fetching it into $target"
if ! curl --silent --show-error --fail --output "$target.f7t-part" "$get_url"; then
    echo "$(date -u) Unable to fetch the uploaded file" >&2; rm -f "$target.f7t-part"; exit 1
fi
mv -f -- "$target.f7t-part" "$target" || exit 1
curl --silent --request DELETE --output /dev/null "$delete_url"
echo "$(date -u) File was successfully downloaded to $target ($(stat -c %s "$target") bytes)"
"""
    answer = _submit(call, "IngressFileTransfer", script, sent.account)
    answer["transferDirectives"] = {
        "transferMethod": "s3",
        "partsUploadUrls": parts,
        "completeUploadUrl": staging.complete_url(bucket, key, upload_id),
        "maxPartSize": v2_context().config.transfer.max_part_size,
    }
    return answer


@route(blueprint, "POST", "/download", status=201)
def download(call: Call) -> dict[str, Any]:
    sent = body(Download)
    _s3_only(sent.transfer_directives)
    staging = _staging()
    source = sent.source_path
    size = _stat(call, source)["size"]
    bucket = staging.bucket_for(call.user)
    key = f"{uuid.uuid4()}/{posixpath.basename(source.rstrip('/')) or 'download'}"
    upload_id = staging.start_multipart(bucket, key)
    part_size = v2_context().config.transfer.max_part_size
    count = _parts(size)
    urls = " ".join(quote(staging.part_url(bucket, key, upload_id, n)) for n in range(1, count + 1))
    script = f"""source={quote(source)}
part_size={part_size}
parts=({urls})
complete_url={quote(staging.complete_url(bucket, key, upload_id))}
test -f "$source" -a -r "$source" || {{ echo "$source is not a readable file" >&2; exit 1; }}
echo "$(date -u) Uploading $source to the staging area in ${{#parts[@]}} part(s)"
scratch=$(mktemp -d) || exit 1
trap 'rm -rf "$scratch"' EXIT
document=""
for index in "${{!parts[@]}}"; do
    number=$((index + 1))
    if [ "${{#parts[@]}}" -eq 1 ]; then
        piece="$source"
    else
        piece="$scratch/part"
        dd if="$source" of="$piece" bs=1M iflag=skip_bytes,count_bytes \\
            skip=$((index * part_size)) count=$part_size status=none || exit 1
    fi
    etag=$(curl --silent --show-error --fail --upload-file "$piece" --dump-header - \\
        --output /dev/null "${{parts[$index]}}" | tr -d '\\r' | sed -n 's/^[Ee][Tt][Aa][Gg]: *//p')
    [ -n "$etag" ] || {{ echo "$(date -u) Upload of part $number failed" >&2; exit 1; }}
    echo "$(date -u) Part $number uploaded"
    document="$document<Part><PartNumber>$number</PartNumber><ETag>$etag</ETag></Part>"
done
document="<CompleteMultipartUpload>$document</CompleteMultipartUpload>"
if curl --silent --show-error --fail --output /dev/null --data "$document" "$complete_url"; then
    echo "$(date -u) Multipart file upload successfully completed"
else
    echo "$(date -u) The staging area refused to complete the upload" >&2; exit 1
fi
"""
    answer = _submit(call, "OutgressFileTransfer", script, sent.account)
    answer["transferDirectives"] = {
        "transferMethod": "s3",
        "downloadUrl": staging.get_url(bucket, key),
    }
    return answer


def _job_of(call: Call, name: str, command: str, done: str, account: str | None) -> dict[str, Any]:
    """A transfer job that runs `command` and logs `done` when it succeeded."""
    script = f'if {command}; then echo "$(date -u) {done}"; else exit 1; fi'
    return _submit(call, name, script, account)


@route(blueprint, "POST", "/cp", status=201)
def copy(call: Call) -> dict[str, Any]:
    sent = body(Copy)
    follow = "--dereference " if sent.dereference else "--no-dereference "
    command = f"cp -r {follow}-- {quote(sent.source_path)} {quote(sent.target_path)}"
    return _job_of(call, "CopyFiles", command, "Files were successfully copied", sent.account)


@route(blueprint, "POST", "/mv", status=201)
def move(call: Call) -> dict[str, Any]:
    sent = body(Move)
    command = f"mv -- {quote(sent.source_path)} {quote(sent.target_path)}"
    return _job_of(call, "MoveFiles", command, "Files were successfully moved", sent.account)


@route(blueprint, "DELETE", "/rm")
def remove(call: Call) -> dict[str, Any]:
    path = required_query("path")
    account = query("account")
    if account is not None and not re.match(ACCOUNT_PATTERN, account):
        raise ValidationFailed(f"'account' {account!r} is not an account name")
    command = f"rm -r --interactive=never -- {quote(path)}"
    return _job_of(call, "DeleteFiles", command, "Files were successfully removed", account)


@route(blueprint, "POST", "/compress", status=201)
def compress(call: Call) -> dict[str, Any]:
    sent = body(Compress)
    command = "{ " + tar_compress(sent) + "; }"
    done = "Files were successfully compressed"
    return _job_of(call, "CompressFiles", command, done, sent.account)


@route(blueprint, "POST", "/extract", status=201)
def extract(call: Call) -> dict[str, Any]:
    sent = body(Extract)
    done = "Files were successfully extracted"
    return _job_of(call, "ExtractFiles", tar_extract(sent), done, sent.account)
