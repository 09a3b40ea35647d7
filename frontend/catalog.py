"""Read-side view of the uploads bucket: which images exist, when, under which file name.

The pipeline owns the writes and the status rule (`detectflow.pipeline.status`); this module
only reads, through the `BlobStore` port, so it works the same on local folders,
fake-gcs-server and Google Cloud Storage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from detectflow import layout
from detectflow.storage import BlobInfo, BlobStore

_API_UPLOAD_KEY = re.compile(r"^(?P<id>[0-9a-f]{32})/(?P<name>[^/]+)$")


@dataclass(frozen=True, slots=True)
class Upload:
    """One object in the uploads bucket, seen as an image of the gallery."""

    image_id: str
    key: str
    filename: str
    created_ns: int
    content_type: str | None

    @property
    def sort_key(self) -> tuple[int, str]:
        return (self.created_ns, self.image_id)


def upload_from_blob(info: BlobInfo) -> Upload:
    match = _API_UPLOAD_KEY.match(info.key)
    if match:  # written by the API: the id starts with its creation time
        image_id = match.group("id")
        created_ns = id_time_ns(image_id)
        name = match.group("name")
    else:  # dropped into the bucket by other means: the pipeline derives a stable id
        image_id = layout.image_id_for_upload(info.key, info.generation)
        created_ns = int((info.updated or 0.0) * 1e9)
        name = info.key.rsplit("/", 1)[-1]
    filename = info.metadata.get("filename") or layout.safe_filename(name)
    return Upload(image_id, info.key, filename, created_ns, info.content_type)


def id_time_ns(image_id: str) -> int:
    """Creation time encoded in ids made by `layout.new_image_id` (first 16 hex digits)."""
    return int(image_id[:16], 16)


def iso_time(ns: int) -> str | None:
    if ns <= 0:
        return None
    try:
        return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds")
    except (OverflowError, OSError, ValueError):
        return None


def list_uploads(uploads: BlobStore) -> list[Upload]:
    """Every image in the uploads bucket, newest first."""
    found = [upload_from_blob(info) for info in uploads.list()]
    return sorted(found, key=lambda u: u.sort_key, reverse=True)


def find_upload(uploads: BlobStore, image_id: str) -> Upload | None:
    """The upload of an id the API created (`<id>/<name>`), or None."""
    for info in uploads.list(prefix=f"{image_id}/"):
        return upload_from_blob(info)
    return None


def page_of(
    newest_first: list[Upload], before: str | None, limit: int
) -> tuple[list[Upload], str | None]:
    """Items strictly older than the cursor `before` (an image id), and the next cursor."""
    candidates = newest_first
    if before is not None:
        cursor = next((u.sort_key for u in newest_first if u.image_id == before), None)
        if cursor is None:  # the cursor image is gone; its id still says when it was made
            cursor = (id_time_ns(before), before)
        candidates = [u for u in newest_first if u.sort_key < cursor]
    items = candidates[:limit]
    more = len(candidates) > limit
    return items, (items[-1].image_id if more and items else None)
