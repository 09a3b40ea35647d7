"""Reading and removing one image across the buckets and the catalog (the routes' data
access). The status rule itself lives in detectflow.pipeline.status."""

from __future__ import annotations

import logging

from detectflow import layout
from detectflow.catalog import Catalog
from detectflow.pipeline.outcomes import failure_note_key
from detectflow.pipeline.status import image_status, read_result
from detectflow.storage import BlobNotFound, Buckets
from frontend.schemas import ImageDetail
from frontend.views import detail, filename_of, find_upload, upload_from_catalog

log = logging.getLogger(__name__)


def lookup(buckets: Buckets, catalog: Catalog, image_id: str) -> ImageDetail | None:
    """The image as GET /api/images/{id} shows it, or None when there is no such image."""
    state, record = image_status(buckets, image_id)
    if state == "not_found":
        # A file copied into the bucket by other means has no `<id>/` key for the status rule
        # to find; the catalog knows it from the moment the pipeline (or reconcile) saw it.
        entry = catalog.get(image_id)
        if entry is None:
            return None
        return detail(image_id, entry.status, None, upload_from_catalog(entry))
    upload = None if record is not None else find_upload(buckets.uploads, image_id)
    return detail(image_id, state, record, upload)


def original_bytes(buckets: Buckets, catalog: Catalog, image_id: str
                   ) -> tuple[bytes, str] | None:
    """The uploaded bytes and the user's file name, or None when not stored."""
    record = read_result(buckets, image_id)
    upload = find_upload(buckets.uploads, image_id)
    if upload is None and record is None:
        entry = catalog.get(image_id)
        upload = upload_from_catalog(entry) if entry else None
    key = upload.key if upload else (record.source.name if record else None)
    if key is None:
        return None
    try:
        data = buckets.uploads.get(key)
    except BlobNotFound:
        return None
    return data, filename_of(record, upload) or "image"


def delete_image(buckets: Buckets, catalog: Catalog, image_id: str) -> bool:
    """Remove the upload, the work objects, the result and the catalog record; False when
    none of them existed. The upload goes first, so the pipeline stops finding it (an image
    deleted mid-processing ends, at most, in an `upload_missing` record without pixels,
    which a second delete removes)."""
    record = read_result(buckets, image_id)
    entry = catalog.get(image_id)
    upload_keys = {info.key for info in buckets.uploads.list(prefix=f"{image_id}/")}
    if entry is not None:
        upload_keys.add(entry.upload_key)
    if record is not None:
        upload_keys.add(record.source.name)
    found = record is not None or entry is not None or bool(upload_keys)
    work = [layout.work_key(image_id), failure_note_key(image_id)]
    found = found or any(buckets.work.stat(key) is not None for key in work)
    if not found:
        return False
    for key in sorted(upload_keys):
        buckets.uploads.delete(key)
    for key in work:
        buckets.work.delete(key)
    buckets.results.delete(layout.result_key(image_id))
    catalog.delete(image_id)
    log.info("image deleted", extra={"image_id": image_id, "uploads": len(upload_keys)})
    return True
