"""The S3 staging area of large transfers: one bucket per user, objects that
expire, presigned URLs and forms that work without credentials.

URLs are signed for the public address (`storage.s3Url`) without contacting
it; the stack's own calls (buckets, object state) go to the internal one.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import urllib3
from minio import Minio
from minio.datatypes import PostPolicy
from minio.error import S3Error

from firecrest_testbuild.common.buckets import bucket_of, ensure_bucket
from firecrest_testbuild.stack.config import Storage

TIMEOUT = urllib3.Timeout(connect=5, read=30)


def _client(url: str, settings: Storage) -> Minio:
    secure = url.startswith("https://")
    return Minio(
        url.split("://", 1)[1],
        access_key=settings.access_key,
        secret_key=settings.secret_key,
        secure=secure,
        region=settings.region,
        http_client=urllib3.PoolManager(timeout=TIMEOUT, retries=False),
    )


@dataclass(frozen=True)
class UploadForm:
    url: str  # where the form is POSTed
    fields: dict[str, str]  # every field but the file, in order


class Staging:
    def __init__(self, settings: Storage) -> None:
        self.settings = settings
        self.public = _client(settings.s3_url, settings)  # signs only
        self.internal = _client(settings.s3_internal_url or settings.s3_url, settings)
        self.expiry = datetime.timedelta(seconds=settings.url_expiry_seconds)
        self._ready_buckets: set[str] = set()

    def bucket_for(self, user: str) -> str:
        bucket = bucket_of(user)
        if bucket not in self._ready_buckets:
            ensure_bucket(self.internal, bucket, self.settings.object_expiry_days)
            self._ready_buckets.add(bucket)
        return bucket

    def upload_form(self, bucket: str, key: str) -> UploadForm:
        policy = PostPolicy(bucket, datetime.datetime.now(datetime.UTC) + self.expiry)
        policy.add_equals_condition("key", key)
        signed = self.public.presigned_post_policy(policy)
        return UploadForm(f"{self.settings.s3_url}/{bucket}", {"key": key, **signed})

    def get_url(self, bucket: str, key: str) -> str:
        return self.public.presigned_get_object(bucket, key, expires=self.expiry)

    def put_url(self, bucket: str, key: str) -> str:
        return self.public.presigned_put_object(bucket, key, expires=self.expiry)

    def signed_url(
        self, method: str, bucket: str, key: str, query: dict[str, str] | None = None
    ) -> str:
        """A presigned URL of any S3 request on the object (HEAD, DELETE, multipart parts)."""
        params: dict[str, str | list[str] | tuple[str]] = dict(query or {})
        return self.public.get_presigned_url(
            method, bucket, key, expires=self.expiry, extra_query_params=params
        )

    def start_multipart(self, bucket: str, key: str) -> str:
        """A multipart upload of the object (FirecREST v2's transfers); its upload id."""
        return self.internal._create_multipart_upload(bucket, key, {})

    def part_url(self, bucket: str, key: str, upload_id: str, part: int) -> str:
        """Presigned PUT of part `part` (1, 2, ...) of a multipart upload."""
        return self.signed_url("PUT", bucket, key, {"partNumber": str(part), "uploadId": upload_id})

    def complete_url(self, bucket: str, key: str, upload_id: str) -> str:
        """Presigned POST of the CompleteMultipartUpload document that ends the upload."""
        return self.signed_url("POST", bucket, key, {"uploadId": upload_id})

    def size_of(self, bucket: str, key: str) -> int | None:
        """The object's size, or None while it does not exist."""
        try:
            return self.internal.stat_object(bucket, key).size
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchObject", "NoSuchBucket"):
                return None
            raise

    def remove(self, bucket: str, key: str) -> None:
        self.internal.remove_object(bucket, key)

    def healthy(self) -> bool:
        try:
            self.internal.bucket_exists("testbuild-health-probe")
        except (S3Error, urllib3.exceptions.HTTPError):
            return False
        return True
