"""Building the API's answers (frontend/schemas.py) from what the pipeline stores: result
records, uploads, catalog records. Routes only choose what to fetch; this says how it looks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from detectflow import layout
from detectflow.catalog import CatalogRecord
from detectflow.catalog.entries import created_ms, display_name
from detectflow.records import ResultRecord
from detectflow.storage import BlobInfo, BlobStore
from frontend.schemas import (
    DetectionOut,
    ErrorBody,
    ImageDetail,
    ImageLinks,
    ImageSizeOut,
    ImageStatus,
    ImageSummary,
    ModelRefOut,
)


@dataclass(frozen=True, slots=True)
class Upload:
    """The stored upload of an image: its key, the user's file name, when it arrived."""

    key: str
    filename: str
    created_ms: int


def image_path(image_id: str) -> str:
    return f"/api/images/{image_id}"


def iso_time(ms: int) -> str | None:
    if ms <= 0:
        return None
    try:
        return datetime.fromtimestamp(ms / 1e3, UTC).isoformat(timespec="milliseconds")
    except (OverflowError, OSError, ValueError):
        return None


def upload_from_blob(image_id: str, info: BlobInfo) -> Upload:
    return Upload(info.key, display_name(info.key, info.metadata.get("filename")),
                  created_ms(info.key, image_id, info.updated))


def upload_from_catalog(record: CatalogRecord) -> Upload:
    return Upload(record.upload_key, record.filename, record.created_ms)


def find_upload(uploads: BlobStore, image_id: str) -> Upload | None:
    """The upload of an id the API created (`<id>/<name>`): one listing of that prefix."""
    for info in uploads.list(prefix=f"{image_id}/"):
        return upload_from_blob(image_id, info)
    return None


def filename_of(record: ResultRecord | None, upload: Upload | None) -> str | None:
    if upload is not None:
        return upload.filename
    if record is not None:
        return display_name(record.source.name, record.source.filename)
    return None


def created_of(image_id: str, record: ResultRecord | None, upload: Upload | None) -> str | None:
    if upload is not None:
        return iso_time(upload.created_ms)
    if record is not None and record.source.name.startswith(f"{image_id}/"):
        return iso_time(created_ms(record.source.name, image_id, None))
    return None


def links(image_id: str) -> ImageLinks:
    path = image_path(image_id)
    return ImageLinks(self=path, original=f"{path}/original", annotated=f"{path}/annotated",
                      events=f"{path}/events")


def detail(image_id: str, state: ImageStatus, record: ResultRecord | None,
           upload: Upload | None) -> ImageDetail:
    """GET /api/images/{id}: status, and the result once there is one."""
    answer = ImageDetail(id=image_id, status=state, filename=filename_of(record, upload),
                         created=created_of(image_id, record, upload), links=links(image_id))
    if record is None:
        return answer
    answer.detections = sorted(
        (DetectionOut.of(d) for d in record.detections),
        key=lambda d: -d.score)
    answer.image = ImageSizeOut(**record.image.model_dump()) if record.image else None
    answer.model = ModelRefOut(**record.model.model_dump()) if record.model else None
    answer.timings_ms = record.timings_ms
    if record.error is not None:
        answer.error = ErrorBody(code=record.error.code, message=record.error.message)
    return answer


def summary(record: CatalogRecord) -> ImageSummary:
    """One gallery entry, from the catalog alone (no bucket read)."""
    done = record.status == "done"
    return ImageSummary(
        id=record.image_id, status=record.status, filename=record.filename,
        created=iso_time(record.created_ms),
        detection_count=record.detection_count if done else None,
        class_counts=record.class_counts if done else {},
        error_code=record.error_code, url=image_path(record.image_id))


def is_api_upload(image_id: str, key: str) -> bool:
    return key.startswith(f"{image_id}/") and layout.is_image_id(image_id)
