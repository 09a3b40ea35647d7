"""Catalog records from what the pipeline knows at each step: an accepted upload, an object
in the uploads bucket, a result record. One place for the rules (file name, upload time)."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime

from detectflow import layout
from detectflow.catalog.base import CatalogRecord, CatalogStatus
from detectflow.records import ResultRecord


def id_time_ms(image_id: str) -> int:
    """Creation time encoded in ids made by `layout.new_image_id` (first 16 hex digits, ns)."""
    return int(image_id[:16], 16) // 1_000_000


def created_ms(key: str, image_id: str, time_created: float | None) -> int:
    """Upload time: from the id for keys the API wrote (`<id>/<name>`), else the object's
    creation time (unix seconds), else 0 (unknown: sorts last)."""
    if key.startswith(f"{image_id}/") and layout.is_image_id(image_id):
        return id_time_ms(image_id)
    return round(time_created * 1000) if time_created else 0


def display_name(key: str, filename: str | None = None) -> str:
    """What the gallery calls the image: the name the user gave it, made safe."""
    return layout.safe_filename(filename or key.rsplit("/", 1)[-1])


def upload_entry(image_id: str, key: str, status: CatalogStatus, *,
                 filename: str | None = None, time_created: float | None = None,
                 generation: str | None = None, now: float | None = None) -> CatalogRecord:
    """A record for an upload that has no result yet (queued or processing)."""
    return CatalogRecord(
        image_id=image_id, upload_key=key, filename=display_name(key, filename),
        created_ms=created_ms(key, image_id, time_created), status=status,
        updated=time.time() if now is None else now, upload_generation=generation)


def result_entry(result: ResultRecord, *, time_created: float | None = None,
                 now: float | None = None) -> CatalogRecord:
    """The record of a finished image. Its upload time, for a file copied in by other means,
    is `time_created` when known, else the result's own time (adapters keep the time an
    earlier record of the same image already has)."""
    source = result.source
    fallback = time_created if time_created is not None else _iso_seconds(result.created)
    counts = Counter(d.label for d in result.detections) if result.status == "done" else {}
    return CatalogRecord(
        image_id=result.image_id, upload_key=source.name,
        filename=display_name(source.name, source.filename),
        created_ms=created_ms(source.name, result.image_id, fallback), status=result.status,
        updated=time.time() if now is None else now, upload_generation=source.generation,
        model_name=result.model.name if result.model else None,
        model_version=result.model.version if result.model else None,
        detection_count=len(result.detections) if result.status == "done" else None,
        class_counts=dict(sorted(counts.items())),
        error_code=result.error.code if result.error else None)


def _iso_seconds(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None
