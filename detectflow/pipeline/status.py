"""An image's status, derived from the buckets alone (no database): the one place that rule lives.

    result in the results bucket  -> "done" or "failed" (the record says which)
    else a prepared work object   -> "processing"
    else the upload exists        -> "queued"
    else                          -> "not_found"
"""

from __future__ import annotations

from typing import Literal

from detectflow.layout import is_image_id, result_key, work_key
from detectflow.records import ResultRecord
from detectflow.storage import BlobNotFound, Buckets

ImageStatus = Literal["queued", "processing", "done", "failed", "not_found"]


def image_status(buckets: Buckets, image_id: str) -> tuple[ImageStatus, ResultRecord | None]:
    """(status, the result record when there is one). Raises ValueError for a malformed id."""
    if not is_image_id(image_id):
        raise ValueError(f"not an image id: {image_id!r}")
    record = read_result(buckets, image_id)
    if record is not None:
        return record.status, record
    if buckets.work.stat(work_key(image_id)) is not None:
        return "processing", None
    if next(iter(buckets.uploads.list(prefix=f"{image_id}/")), None) is not None:
        return "queued", None
    return "not_found", None


def read_result(buckets: Buckets, image_id: str) -> ResultRecord | None:
    try:
        data = buckets.results.get(result_key(image_id))
    except BlobNotFound:
        return None
    return ResultRecord.model_validate_json(data)
