"""The catalog in Firestore (native mode): the local cloud (the emulator) and Google Cloud.

One document per image in one collection. Document ids put the id's random half first
(`image_id[16:] + image_id[:16]`): ids made by the API start with the time, and
monotonically increasing document ids concentrate writes on one key range (a hot spot).

Queries, and the composite indexes they need (infra/terraform declares them):
  * newest first:               created_ms DESC, image_id DESC
  * by status:                  status ASC, created_ms DESC, image_id DESC
  * by class:                   labels ARRAY_CONTAINS, created_ms DESC, image_id DESC
  * stuck (periodic reconcile): status ASC, updated ASC
`since`/`until` are ranges on created_ms, the first order field, so they need no other index.
Stats are count/sum aggregations (1 read per 1,000 index entries; the API caches them briefly).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from typing import Any

from detectflow.catalog.base import (
    PENDING,
    STATUSES,
    CatalogPage,
    CatalogQuery,
    CatalogRecord,
    CatalogStats,
    CatalogStatus,
    Cursor,
)

IDENTITY = ("image_id", "upload_key", "filename", "created_ms")
BATCH = 400  # Firestore's batch limit is 500 writes


def _module(name: str) -> Any:
    """google-cloud-firestore, imported by name: it is the one typed package in the
    google.cloud namespace, and mypy, once it follows it, rejects the untyped siblings
    (storage, pubsub) everywhere else."""
    return importlib.import_module(name)


def _field_filter(field: str, op: str, value: object) -> Any:
    return _module("google.cloud.firestore_v1.base_query").FieldFilter(field, op, value)


def document_id(image_id: str) -> str:
    return image_id[16:] + image_id[:16]


class FirestoreCatalog:
    def __init__(self, project: str, collection: str = "detectflow-images",
                 database: str = "(default)", emulator_host: str | None = None) -> None:
        firestore = _module("google.cloud.firestore")
        self._firestore = firestore
        if emulator_host:
            import os

            # The client reads the emulator address from the environment only.
            os.environ["FIRESTORE_EMULATOR_HOST"] = emulator_host
        self.client = firestore.Client(project=project, database=database)
        self.collection = self.client.collection(collection)

    # Writes -----------------------------------------------------------------------------
    def put(self, record: CatalogRecord) -> None:
        """Pending records: one `set`. Finished ones: one `update` of the status fields, so
        the upload time an earlier record set is kept; `set` when there was none."""
        not_found = _module("google.api_core.exceptions").NotFound
        doc = self.collection.document(document_id(record.image_id))
        if record.status in PENDING:
            doc.set(_document(record))
            return
        fields = {k: v for k, v in _document(record).items() if k not in IDENTITY}
        try:
            doc.update(fields)
        except not_found:
            doc.set(_document(record))

    def put_many(self, records: Iterable[CatalogRecord]) -> int:
        """Bulk `set` (rebuild, benchmarks): whole records, in batches."""
        written = 0
        batch = self.client.batch()
        for record in records:
            batch.set(self.collection.document(document_id(record.image_id)),
                      _document(record))
            written += 1
            if written % BATCH == 0:
                batch.commit()
                batch = self.client.batch()
        if written % BATCH:
            batch.commit()
        return written

    def delete(self, image_id: str) -> None:
        self.collection.document(document_id(image_id)).delete()

    # Reads ------------------------------------------------------------------------------
    def get(self, image_id: str) -> CatalogRecord | None:
        snapshot = self.collection.document(document_id(image_id)).get()
        return _record(snapshot.to_dict()) if snapshot.exists else None

    def page(self, query: CatalogQuery) -> CatalogPage:
        if query.label is not None and query.status not in (None, "done"):
            return CatalogPage([], None)  # only done images have detections
        descending = self._firestore.Query.DESCENDING
        q: Any = self.collection
        if query.label is not None:
            q = q.where(filter=_field_filter("labels", "array_contains", query.label))
        elif query.status is not None:
            q = q.where(filter=_field_filter("status", "==", query.status))
        if query.since_ms is not None:
            q = q.where(filter=_field_filter("created_ms", ">=", query.since_ms))
        if query.until_ms is not None:
            q = q.where(filter=_field_filter("created_ms", "<", query.until_ms))
        q = q.order_by("created_ms", direction=descending).order_by(
            "image_id", direction=descending)
        if query.before is not None:
            q = q.start_after({"created_ms": query.before.created_ms,
                               "image_id": query.before.image_id})
        docs = [_record(d.to_dict()) for d in q.limit(query.limit + 1).stream()]
        records = docs[: query.limit]
        more = len(docs) > query.limit
        return CatalogPage(records, Cursor.of(records[-1]) if more and records else None)

    def stats(self, labels: Iterable[str] = ()) -> CatalogStats:
        by_status: dict[str, int] = {}
        for status in STATUSES:
            result = self.collection.where(
                filter=_field_filter("status", "==", status)).count(alias="n").get()
            count = int(result[0][0].value)
            if count:
                by_status[status] = count
        by_class: dict[str, int] = {}
        for label in labels:
            result = self.collection.sum(f"class_counts.`{label}`", alias="n").get()
            by_class[label] = int(result[0][0].value or 0)
        return CatalogStats(by_status, by_class)

    def stuck(self, updated_before: float, limit: int = 1000) -> list[CatalogRecord]:
        q = (self.collection.where(filter=_field_filter("status", "in", list(PENDING)))
             .where(filter=_field_filter("updated", "<", updated_before))
             .order_by("updated").limit(limit))
        return [_record(d.to_dict()) for d in q.stream()]

    def scan(self) -> Iterator[CatalogRecord]:
        for snapshot in self.collection.stream():
            yield _record(snapshot.to_dict())

    def states(self) -> Iterator[tuple[str, CatalogStatus]]:
        for snapshot in self.collection.select(["image_id", "status"]).stream():
            doc = snapshot.to_dict() or {}
            yield str(doc["image_id"]), doc["status"]

    def close(self) -> None:
        self.client.close()


def _document(record: CatalogRecord) -> dict[str, Any]:
    return {
        "image_id": record.image_id, "upload_key": record.upload_key,
        "filename": record.filename, "created_ms": record.created_ms,
        "status": record.status, "updated": record.updated,
        "upload_generation": record.upload_generation, "model_name": record.model_name,
        "model_version": record.model_version, "detection_count": record.detection_count,
        "class_counts": dict(record.class_counts),
        "labels": sorted(label for label, n in record.class_counts.items() if n > 0),
        "error_code": record.error_code,
    }


def _record(doc: dict[str, Any] | None) -> CatalogRecord:
    doc = dict(doc or {})
    doc.pop("labels", None)
    doc["class_counts"] = {str(k): int(v) for k, v in (doc.get("class_counts") or {}).items()}
    return CatalogRecord(**doc)
