"""The catalog port: one small record per image, so the gallery, the stats and reconcile cost
O(page), not O(bucket).

The buckets stay the source of truth (`detectflow catalog rebuild` recreates the catalog from
them); the catalog is an index that the pipeline keeps current: `queued` when the API accepts
an upload, `processing` when the preprocess stage takes it, `done`/`failed` where the result is
recorded (detectflow/pipeline/outcomes.py). Adapters: SQLite (embedded), Firestore (local cloud
and Google Cloud).

Order everywhere: newest first by (created_ms, image_id). `created_ms` is the upload time in
milliseconds: from the id for uploads made by the API, from the object's creation time for
files copied into the bucket by other means.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol, runtime_checkable

CatalogStatus = Literal["queued", "processing", "done", "failed"]
STATUSES: tuple[CatalogStatus, ...] = ("queued", "processing", "done", "failed")
PENDING: tuple[CatalogStatus, ...] = ("queued", "processing")
# A record never moves back down this order (a late `processing` after `done` is ignored).
STATUS_RANK: dict[str, int] = {"queued": 0, "processing": 1, "done": 2, "failed": 2}
_CURSOR = re.compile(r"^(?P<created>\d{1,15})-(?P<id>[0-9a-f]{32})$")


@dataclass(frozen=True, slots=True)
class CatalogRecord:
    image_id: str
    upload_key: str  # the object in the uploads bucket
    filename: str  # the user's file name, made safe
    created_ms: int  # upload time, unix milliseconds (the sort key, with image_id)
    status: CatalogStatus
    updated: float = 0.0  # unix seconds of the last status change (stuck-record queries)
    upload_generation: str | None = None  # names the id of files copied in by other means
    model_name: str | None = None
    model_version: str | None = None
    detection_count: int | None = None  # when done
    class_counts: dict[str, int] = field(default_factory=dict)  # label -> detections
    error_code: str | None = None  # when failed

    def same_content(self, other: CatalogRecord) -> bool:
        """Equal except for `updated` (when it was written): rebuilt == live."""
        return replace(self, updated=0.0) == replace(other, updated=0.0)


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ended: the last record's sort key. Text form `<created_ms>-<image_id>`."""

    created_ms: int
    image_id: str

    def encode(self) -> str:
        return f"{self.created_ms}-{self.image_id}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Raises ValueError for anything that is not a cursor this catalog made."""
        match = _CURSOR.match(text)
        if match is None:
            raise ValueError(f"not a page cursor: {text[:80]!r}")
        return cls(int(match.group("created")), match.group("id"))

    @classmethod
    def of(cls, record: CatalogRecord) -> Cursor:
        return cls(record.created_ms, record.image_id)


@dataclass(frozen=True, slots=True)
class CatalogQuery:
    """A page of records, newest first. `label`: at least one detection of that class.
    `since_ms` inclusive, `until_ms` exclusive; `before`: strictly older than the cursor."""

    status: CatalogStatus | None = None
    label: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    before: Cursor | None = None
    limit: int = 24


@dataclass(frozen=True, slots=True)
class CatalogPage:
    records: list[CatalogRecord]
    next: Cursor | None  # None on the last page


@dataclass(frozen=True, slots=True)
class CatalogStats:
    images_by_status: dict[str, int]
    detections_by_class: dict[str, int]

    @property
    def total_images(self) -> int:
        return sum(self.images_by_status.values())


@runtime_checkable
class Catalog(Protocol):
    def put(self, record: CatalogRecord) -> None:
        """Insert or update one record. A record already `done`/`failed` is not moved back
        to `queued`/`processing` (SQLite enforces it in the write; Firestore, to save a read
        per write, lets reconcile repair that rare race)."""
        ...

    def put_many(self, records: Iterable[CatalogRecord]) -> int:
        """Bulk `put` (rebuild, benchmarks); returns how many were written."""
        ...

    def get(self, image_id: str) -> CatalogRecord | None: ...

    def delete(self, image_id: str) -> None:
        """Idempotent."""
        ...

    def page(self, query: CatalogQuery) -> CatalogPage: ...

    def stats(self, labels: Iterable[str] = ()) -> CatalogStats:
        """Images by status, detections by class (`labels`: the classes to count at least;
        adapters that cannot list classes cheaply count only those)."""
        ...

    def stuck(self, updated_before: float, limit: int = 1000) -> list[CatalogRecord]:
        """Records still queued/processing whose last change is older than `updated_before`
        (unix seconds), oldest first: what the periodic reconcile pass re-drives."""
        ...

    def scan(self) -> Iterator[CatalogRecord]:
        """Every record (rebuild only: O(catalog))."""
        ...

    def states(self) -> Iterator[tuple[str, CatalogStatus]]:
        """(image_id, status) of every record: what reconcile's full pass compares with the
        buckets, without holding whole records."""
        ...

    def close(self) -> None: ...


class NullCatalog:
    """catalog=none: the pipeline keeps no index (the functions of a deployment without one)."""

    def put(self, record: CatalogRecord) -> None:
        return None

    def put_many(self, records: Iterable[CatalogRecord]) -> int:
        return 0

    def get(self, image_id: str) -> CatalogRecord | None:
        return None

    def delete(self, image_id: str) -> None:
        return None

    def page(self, query: CatalogQuery) -> CatalogPage:
        return CatalogPage([], None)

    def stats(self, labels: Iterable[str] = ()) -> CatalogStats:
        return CatalogStats({}, {})

    def stuck(self, updated_before: float, limit: int = 1000) -> list[CatalogRecord]:
        return []

    def scan(self) -> Iterator[CatalogRecord]:
        return iter(())

    def states(self) -> Iterator[tuple[str, CatalogStatus]]:
        return iter(())

    def close(self) -> None:
        return None
