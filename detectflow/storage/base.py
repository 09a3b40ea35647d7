"""The blob-store port: one bucket (or local folder) per instance.

Implementations: local folder (embedded default), Google Cloud Storage, S3-compatible.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


class BlobNotFound(KeyError):
    """The key does not exist in the store."""


class PreconditionFailed(RuntimeError):
    """A conditional write lost (e.g. `if_absent` and the object exists)."""


@dataclass(frozen=True, slots=True)
class BlobInfo:
    key: str
    size: int
    generation: str
    content_type: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    updated: float | None = None  # unix seconds


@runtime_checkable
class BlobStore(Protocol):
    bucket: str

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        if_absent: bool = False,
    ) -> BlobInfo:
        """Write atomically (readers never see half an object). `if_absent` -> PreconditionFailed
        when the key exists: the building block of idempotent, exactly-once result writes."""
        ...

    def get(self, key: str) -> bytes: ...

    def stat(self, key: str) -> BlobInfo | None: ...

    def list(self, prefix: str = "") -> Iterator[BlobInfo]: ...

    def delete(self, key: str) -> None: ...
