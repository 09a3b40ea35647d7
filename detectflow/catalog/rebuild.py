"""Recreate the catalog from the buckets, which stay the source of truth.

Lists the uploads, work and results buckets once each and reads every result record: O(bucket),
for `detectflow catalog rebuild` (a lost or damaged catalog, a new catalog backend, a check that
the live one is right), not for anything that runs often.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from detectflow.catalog.base import Catalog, CatalogRecord
from detectflow.catalog.entries import result_entry, upload_entry
from detectflow.layout import image_id_for_upload
from detectflow.records import ResultRecord
from detectflow.storage import BlobInfo, BlobNotFound, Buckets

log = logging.getLogger(__name__)


@dataclass
class RebuildReport:
    images: int = 0  # records the buckets call for
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return {"images": self.images, "added": self.added, "updated": self.updated,
                "removed": self.removed, "unchanged": self.unchanged,
                "seconds": round(self.seconds, 3)}


def expected_records(buckets: Buckets) -> dict[str, CatalogRecord]:
    """The catalog the buckets describe, by image id."""
    now = time.time()
    uploads: dict[str, BlobInfo] = {}
    for info in buckets.uploads.list():
        uploads[image_id_for_upload(info.key, info.generation)] = info
    working = {info.key[: -len(".npz")] for info in buckets.work.list()
               if info.key.endswith(".npz")}
    records: dict[str, CatalogRecord] = {}
    for info in buckets.results.list():
        if not info.key.endswith(".json"):
            continue
        result = _read_result(buckets, info.key)
        if result is None:
            continue
        upload = uploads.get(result.image_id)
        records[result.image_id] = result_entry(
            result, time_created=upload.updated if upload else None, now=now)
    for image_id, info in uploads.items():
        if image_id not in records:
            records[image_id] = upload_entry(
                image_id, info.key, "processing" if image_id in working else "queued",
                filename=info.metadata.get("filename"), time_created=info.updated,
                generation=info.generation, now=now)
    return records


def rebuild(buckets: Buckets, catalog: Catalog) -> RebuildReport:
    """Make `catalog` hold exactly what the buckets describe (safe while the pipeline runs:
    a record it writes meanwhile is as good as the rebuilt one)."""
    started = time.perf_counter()
    expected = expected_records(buckets)
    report = RebuildReport(images=len(expected))
    current = {record.image_id: record for record in catalog.scan()}
    changed: list[CatalogRecord] = []
    for image_id, record in expected.items():
        have = current.get(image_id)
        if have is None:
            report.added += 1
            changed.append(record)
        elif have.same_content(record):
            report.unchanged += 1
        else:
            report.updated += 1
            catalog.delete(image_id)  # a plain put keeps the first record's upload time
            changed.append(record)
    catalog.put_many(changed)
    for image_id in current.keys() - expected.keys():
        catalog.delete(image_id)
        report.removed += 1
    report.seconds = time.perf_counter() - started
    log.info("catalog rebuilt", extra=report.to_dict())
    return report


def _read_result(buckets: Buckets, key: str) -> ResultRecord | None:
    try:
        return ResultRecord.model_validate_json(buckets.results.get(key))
    except (BlobNotFound, ValueError):
        log.warning("result record unreadable; skipped", extra={"key": key})
        return None

