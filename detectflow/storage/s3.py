"""Blob store on S3 or anything that speaks its API (MinIO, Ceph, R2; tested against moto)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, unquote

from detectflow.storage.base import BlobInfo, BlobNotFound, PreconditionFailed


def make_s3_client(endpoint_url: str | None, region: str) -> Any:
    import boto3  # lazy: the embedded default does not need it

    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region)


class S3BlobStore:
    """One bucket. `if_absent` is a conditional PUT (`If-None-Match: *`), S3's own atomic
    create-if-absent. The generation is the ETag (S3 has no generation numbers).

    S3 user metadata travels in HTTP headers, which are ASCII: values are percent-encoded
    on the way in and decoded on the way out, so unicode file names survive.
    """

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self.bucket = bucket

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        if_absent: bool = False,
    ) -> BlobInfo:
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "Body": data,
            "ContentType": content_type or "application/octet-stream",
            "Metadata": {k: quote(v, safe="") for k, v in (metadata or {}).items()},
        }
        if if_absent:
            args["IfNoneMatch"] = "*"
        try:
            self._client.put_object(**args)
        except self._client.exceptions.ClientError as err:
            if _error_code(err) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise PreconditionFailed(f"s3://{self.bucket}/{key} exists") from err
            raise
        info = self.stat(key)
        if info is None:
            raise BlobNotFound(f"s3://{self.bucket}/{key} vanished right after it was written")
        return info

    def get(self, key: str) -> bytes:
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=key)
        except self._client.exceptions.NoSuchKey as err:
            raise BlobNotFound(f"s3://{self.bucket}/{key}") from err
        data: bytes = response["Body"].read()
        return data

    def stat(self, key: str) -> BlobInfo | None:
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=key)
        except self._client.exceptions.ClientError as err:
            if _error_code(err) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return BlobInfo(
            key=key,
            size=int(head["ContentLength"]),
            generation=str(head["ETag"]).strip('"'),
            content_type=head.get("ContentType"),
            metadata={k: unquote(v) for k, v in head.get("Metadata", {}).items()},
            updated=head["LastModified"].timestamp(),
        )

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        # LIST does not return metadata or content type; stat each hit only when asked for
        # those would cost a request per object, so list answers with what LIST knows.
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield BlobInfo(
                    key=obj["Key"],
                    size=int(obj["Size"]),
                    generation=str(obj["ETag"]).strip('"'),
                    updated=obj["LastModified"].timestamp(),
                )

    def delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=key)  # idempotent in S3

    def create_bucket(self) -> None:
        with contextlib.suppress(self._client.exceptions.BucketAlreadyOwnedByYou):
            self._client.create_bucket(Bucket=self.bucket)


def _error_code(err: Any) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))
