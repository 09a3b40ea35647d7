"""Reconcile: every upload ends in a result, even one that never got (or lost) its event.

Two passes, both idempotent (the handlers are, so a double drive is harmless):

  * `full`: the uploads bucket against the results bucket (one listing each), for start-up,
    backfill (a bucket filled before its notification existed) and on demand. Uploads without
    a result, older than a threshold, are re-driven: their OBJECT_FINALIZE notification is
    published again and the normal pipeline runs. The catalog is repaired on the way (records
    missing for uploads, records still pending although a result exists).
  * `stuck`: asks the catalog for records still queued/processing after the threshold, and
    re-drives (or repairs) only those: O(stuck), never a bucket listing, so it can run every
    minute (`detectflow up`) or from Cloud Scheduler.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from detectflow.catalog import PENDING, Catalog, CatalogRecord, result_entry, upload_entry
from detectflow.layout import image_id_for_upload, result_key
from detectflow.pipeline.events import StorageObject
from detectflow.pipeline.status import read_result
from detectflow.storage import BlobInfo, Buckets

log = logging.getLogger(__name__)

Redrive = Callable[[StorageObject], None]


@dataclass
class ReconcileReport:
    mode: Literal["full", "stuck"]
    dry_run: bool
    older_than_seconds: float
    checked: int = 0  # uploads listed (full) or stuck records read (stuck)
    redriven: list[str] = field(default_factory=list)  # image ids (would be, with dry_run)
    repaired: list[str] = field(default_factory=list)  # catalog records fixed from results
    catalogued: list[str] = field(default_factory=list)  # catalog records added for uploads
    removed: list[str] = field(default_factory=list)  # records of images that are gone
    seconds: float = 0.0

    def summary(self) -> dict[str, object]:
        return {"mode": self.mode, "dry_run": self.dry_run, "checked": self.checked,
                "redriven": len(self.redriven), "repaired": len(self.repaired),
                "catalogued": len(self.catalogued), "removed": len(self.removed),
                "seconds": round(self.seconds, 3)}

    def to_dict(self) -> dict[str, object]:
        return {**self.summary(), "older_than_seconds": self.older_than_seconds,
                "redriven_ids": self.redriven, "repaired_ids": self.repaired,
                "catalogued_ids": self.catalogued, "removed_ids": self.removed}


class Reconciler:
    def __init__(self, buckets: Buckets, catalog: Catalog, redrive: Redrive,
                 clock: Callable[[], float] = time.time) -> None:
        self.buckets = buckets
        self.catalog = catalog
        self.redrive = redrive
        self.clock = clock

    # The full pass --------------------------------------------------------------------------
    def full(self, older_than: float, dry_run: bool = False, settle_seconds: float = 0.0
             ) -> ReconcileReport:
        """`settle_seconds`: an upload changed more recently than this may still be being
        written (a file copied into a folder): it is looked at again after that long and
        driven only if it did not change."""
        started = time.perf_counter()
        report = ReconcileReport("full", dry_run, older_than)
        done = {info.key[:-5] for info in self.buckets.results.list() if
                info.key.endswith(".json")}
        catalogued = dict(self.catalog.states())
        cutoff = self.clock() - older_than
        present: set[str] = set()
        young: list[tuple[str, BlobInfo]] = []
        for info in self.buckets.uploads.list():
            report.checked += 1
            image_id = image_id_for_upload(info.key, info.generation)
            present.add(image_id)
            status = catalogued.get(image_id)
            if image_id in done:
                if status is None or status in PENDING:
                    self._repair(image_id, info, report)
                continue
            if status is None:
                report.catalogued.append(image_id)
                if not dry_run:
                    self.catalog.put(self._pending_entry(image_id, info))
            if (info.updated or 0.0) > cutoff:
                continue
            if (info.updated or 0.0) > self.clock() - settle_seconds:
                young.append((image_id, info))
            else:
                self._redrive(image_id, _storage_object(self.buckets.uploads.bucket, info),
                              report)
        self._redrive_settled(young, settle_seconds, report)
        for image_id in catalogued:
            if image_id not in present and image_id not in done:
                report.removed.append(image_id)  # deleted, or removed by the lifecycle rule
                if not dry_run:
                    self.catalog.delete(image_id)
        report.seconds = time.perf_counter() - started
        log.info("reconcile pass", extra=report.summary())
        return report

    # The periodic pass ----------------------------------------------------------------------
    def stuck(self, older_than: float, dry_run: bool = False, limit: int = 1000
              ) -> ReconcileReport:
        started = time.perf_counter()
        report = ReconcileReport("stuck", dry_run, older_than)
        now = self.clock()
        for record in self.catalog.stuck(now - older_than, limit):
            report.checked += 1
            if self.buckets.results.stat(result_key(record.image_id)) is not None:
                self._repair(record.image_id, None, report)
                continue
            info = self.buckets.uploads.stat(record.upload_key)
            obj = (_storage_object(self.buckets.uploads.bucket, info) if info is not None else
                   StorageObject(bucket=self.buckets.uploads.bucket, name=record.upload_key,
                                 generation=record.upload_generation))  # -> upload_missing
            if not dry_run:  # the clock restarts: driven again only after another threshold
                self.catalog.put(_touched(record, now))
            self._redrive(record.image_id, obj, report)
        report.seconds = time.perf_counter() - started
        if report.checked:
            log.info("reconcile pass", extra=report.summary())
        return report

    # Steps ----------------------------------------------------------------------------------
    def _redrive_settled(self, young: list[tuple[str, BlobInfo]], settle_seconds: float,
                         report: ReconcileReport) -> None:
        if not young:
            return
        time.sleep(settle_seconds)
        for image_id, info in young:
            now = self.buckets.uploads.stat(info.key)
            if now is not None and now.generation == info.generation:
                self._redrive(image_id, _storage_object(self.buckets.uploads.bucket, now),
                              report)

    def _redrive(self, image_id: str, obj: StorageObject, report: ReconcileReport) -> None:
        report.redriven.append(image_id)
        if not report.dry_run:
            self.redrive(obj)

    def _repair(self, image_id: str, info: BlobInfo | None, report: ReconcileReport) -> None:
        result = read_result(self.buckets, image_id)
        if result is None:
            return
        report.repaired.append(image_id)
        if not report.dry_run:
            self.catalog.put(result_entry(result, time_created=info.updated if info else None))

    @staticmethod
    def _pending_entry(image_id: str, info: BlobInfo) -> CatalogRecord:
        return upload_entry(image_id, info.key, "queued", filename=info.metadata.get("filename"),
                            time_created=info.updated, generation=info.generation)


def _storage_object(bucket: str, info: BlobInfo) -> StorageObject:
    return StorageObject(bucket=bucket, name=info.key, generation=info.generation,
                         content_type=info.content_type, size=info.size,
                         metadata=info.metadata, time_created=info.updated)


def _touched(record: CatalogRecord, now: float) -> CatalogRecord:
    from dataclasses import replace

    return replace(record, updated=now)
