"""S3 bucket conventions of the staging area: one bucket per user, objects
that expire. The stack makes buckets on demand; the harness seeds them."""

from __future__ import annotations

import re

from minio import Minio
from minio.commonconfig import ENABLED, Filter
from minio.error import S3Error
from minio.lifecycleconfig import Expiration, LifecycleConfig, Rule


def bucket_of(user: str) -> str:
    """An S3-valid bucket name for a user (lower case, no '_', 3 to 63 characters)."""
    name = re.sub(r"[^a-z0-9.-]", "-", user.lower()).strip(".-")
    return name.ljust(3, "0")[:63]


def ensure_bucket(client: Minio, bucket: str, expiry_days: int) -> None:
    """The bucket exists and its objects expire after `expiry_days`."""
    if not client.bucket_exists(bucket):
        try:
            client.make_bucket(bucket)
        except S3Error as error:  # made meanwhile by a parallel request
            if error.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
    rule = Rule(
        ENABLED,
        rule_filter=Filter(prefix=""),
        rule_id="testbuild-expiry",
        expiration=Expiration(days=expiry_days),
    )
    client.set_bucket_lifecycle(bucket, LifecycleConfig([rule]))
