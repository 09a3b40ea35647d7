"""Writing the one record per upload, and the notes that explain a failure later.

`write_record` is the exactly-once point of the pipeline: results are written with
`if_absent`, so whichever delivery of an event comes first wins and every later one (a
duplicate, a redelivery after a crash, the dead-letter handler) finds the record and stops.
The catalog (detectflow/catalog) is updated right after: it is an index, so a failed catalog
write is logged, not retried here; reconcile finds the record still pending and repairs it
from the result.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Literal

from detectflow.bus import EventBus
from detectflow.catalog import Catalog, CatalogRecord, result_entry
from detectflow.layout import result_key, work_key
from detectflow.pipeline.events import ResultNotice
from detectflow.records import ErrorInfo, ResultRecord, SourceObject
from detectflow.storage import BlobNotFound, BlobStore, Buckets, PreconditionFailed

log = logging.getLogger(__name__)

Outcome = Literal["prepared", "done", "failed", "duplicate", "ignored"]


def result_exists(buckets: Buckets, image_id: str) -> bool:
    return buckets.results.stat(result_key(image_id)) is not None


def write_record(buckets: Buckets, record: ResultRecord) -> bool:
    """True when this call wrote the record; False when one was there already."""
    try:
        buckets.results.put(result_key(record.image_id), record.model_dump_json().encode(),
                            content_type="application/json", if_absent=True)
    except PreconditionFailed:
        log.info("result already recorded", extra={"image_id": record.image_id})
        return False
    log.info("result recorded", extra={"image_id": record.image_id, "status": record.status,
                                       "pid": os.getpid(),
                                       "detections": len(record.detections),
                                       "error": record.error.code if record.error else None})
    return True


def record_outcome(buckets: Buckets, bus: EventBus, results_topic: str, record: ResultRecord,
                   catalog: Catalog | None = None) -> Outcome:
    """Write the record (once), index it, tell listeners, tidy the work bucket.

    A failure note (rare) is left to the work bucket's lifecycle rule, except on the error
    paths: deleting it on every success would cost a request per image.
    """
    if not write_record(buckets, record):
        return "duplicate"
    if catalog is not None:
        index(catalog, result_entry(record))
    publish_result_notice(bus, results_topic, record)
    keys = [work_key(record.image_id)]
    if record.status == "failed":
        keys.append(failure_note_key(record.image_id))
    for key in keys:
        try:
            buckets.work.delete(key)
        except Exception:  # lifecycle rules remove leftovers
            log.warning("work object not deleted", extra={"key": key}, exc_info=True)
    return record.status


def index(catalog: Catalog, entry: CatalogRecord) -> bool:
    """Best effort: the buckets are the truth and reconcile repairs a record that stayed
    behind; an outage of the catalog must not fail (and so redo) the image's processing."""
    started = time.perf_counter()
    try:
        catalog.put(entry)
    except Exception:
        log.warning("catalog not updated", extra={"image_id": entry.image_id,
                                                  "status": entry.status}, exc_info=True)
        return False
    log.debug("catalog updated", extra={
        "image_id": entry.image_id, "status": entry.status,
        "catalog_ms": round((time.perf_counter() - started) * 1e3, 3)})
    return True


def publish_result_notice(bus: EventBus, topic: str, record: ResultRecord) -> None:
    """Best effort: the results bucket is the truth, the notice only a hint to listeners."""
    notice = ResultNotice(image_id=record.image_id, status=record.status,
                          result_key=result_key(record.image_id))
    try:
        bus.publish(topic, *notice.to_message())
    except Exception:
        log.warning("result notice not published", extra={"image_id": record.image_id},
                    exc_info=True)


def error_record(image_id: str, source: SourceObject, code: str, message: str,
                 timings_ms: dict[str, float] | None = None) -> ResultRecord:
    return ResultRecord(image_id=image_id, status="failed", source=source,
                        error=ErrorInfo(code=code, message=message),
                        timings_ms=timings_ms or {})


def failure_note_key(image_id: str) -> str:
    """Work-bucket key of the last unexpected error for an image (read by the dead-letter
    handler, so the stored error says why, not just that it failed)."""
    return f"{image_id}.error.json"


def note_failure(work: BlobStore, image_id: str, stage: str, err: BaseException) -> None:
    note = {"stage": stage, "error": f"{type(err).__name__}: {err}"[:500], "at": time.time()}
    try:
        work.put(failure_note_key(image_id), json.dumps(note).encode(), "application/json")
    except Exception:  # the note is a courtesy; the retry matters more
        log.warning("could not store failure note", extra={"image_id": image_id},
                    exc_info=True)


def read_failure_note(work: BlobStore, image_id: str) -> dict[str, str] | None:
    try:
        note = json.loads(work.get(failure_note_key(image_id)))
    except (BlobNotFound, ValueError):
        return None
    return note if isinstance(note, dict) else None
