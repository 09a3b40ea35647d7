"""Blob store on Google Cloud Storage (or fake-gcs-server, via STORAGE_EMULATOR_HOST)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from detectflow.storage.base import BlobInfo, BlobNotFound, PreconditionFailed


def make_gcs_client(project: str | None, emulator_host: str | None = None) -> Any:
    """A google-cloud-storage client; against an emulator it needs no credentials."""
    from google.cloud import storage  # lazy: the embedded default does not need it

    if emulator_host:
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(
            project=project or "detectflow-local",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": emulator_host},
        )
    return storage.Client(project=project)


class GcsBlobStore:
    """One bucket. `if_absent` is GCS's own precondition (ifGenerationMatch=0), so two writers
    racing for the same key cannot both win, even across machines."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = client.bucket(bucket)
        self.bucket = bucket

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        if_absent: bool = False,
    ) -> BlobInfo:
        from google.api_core import exceptions
        from google.cloud.storage.retry import DEFAULT_RETRY

        blob = self._bucket.blob(key)
        if metadata:
            blob.metadata = metadata
        try:
            # Retrying is safe either way: our writes are deterministic per key, and with
            # if_absent a retry after a lost response answers 412, i.e. "already there".
            blob.upload_from_string(
                data,
                content_type=content_type or "application/octet-stream",
                if_generation_match=0 if if_absent else None,
                retry=DEFAULT_RETRY,
            )
        except exceptions.PreconditionFailed as err:
            raise PreconditionFailed(f"gs://{self.bucket}/{key} exists") from err
        return self._info(blob)

    def get(self, key: str) -> bytes:
        from google.api_core import exceptions

        try:
            data: bytes = self._bucket.blob(key).download_as_bytes()
        except exceptions.NotFound as err:
            raise BlobNotFound(f"gs://{self.bucket}/{key}") from err
        return data

    def stat(self, key: str) -> BlobInfo | None:
        blob = self._bucket.get_blob(key)
        return None if blob is None else self._info(blob)

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        for blob in self._client.list_blobs(self.bucket, prefix=prefix or None):
            yield self._info(blob)

    def delete(self, key: str) -> None:
        from google.api_core import exceptions

        with contextlib.suppress(exceptions.NotFound):
            self._bucket.blob(key).delete()

    def create_bucket(self) -> None:
        """Create the bucket if missing (emulators and tests; Terraform does it on GCP)."""
        from google.api_core import exceptions

        with contextlib.suppress(exceptions.Conflict):
            self._client.create_bucket(self.bucket)

    def _info(self, blob: Any) -> BlobInfo:
        return BlobInfo(
            key=blob.name,
            size=int(blob.size or 0),
            generation=str(blob.generation),
            content_type=blob.content_type,
            metadata=dict(blob.metadata or {}),
            updated=blob.updated.timestamp() if blob.updated else None,
        )
