"""Where things live: image ids and object keys, shared by the pipeline and the frontend.

Buckets (or folders, for the embedded backend) by role:
  uploads  <image_id>/<safe file name>      what users upload; the pipeline's trigger
  work     <image_id>.npz                   the prepared model input (never re-triggers)
  results  <image_id>.json                  exactly one ResultRecord per accepted upload
  models   <model name>/<version>/...       model bundles; `<model name>/LATEST` names a version
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import unicodedata

IMAGE_ID_PATTERN = r"^[0-9a-f]{32}$"
_IMAGE_ID = re.compile(IMAGE_ID_PATTERN)
_UPLOAD_KEY = re.compile(r"^(?P<id>[0-9a-f]{32})/[^/]+$")
MAX_FILENAME_CHARS = 120


def new_image_id() -> str:
    """32 hex chars that sort by creation time (ns clock, then randomness): newest-first lists."""
    return f"{time.time_ns():016x}{os.urandom(8).hex()}"


def is_image_id(value: str) -> bool:
    return bool(_IMAGE_ID.match(value))


def safe_filename(name: str) -> str:
    """A display/storage-safe file name: no directories, no control characters, bounded length.

    Path tricks (`../`, absolute paths, backslashes) are reduced to their last component;
    unicode letters and spaces are kept, since people name files that way.
    """
    base = re.split(r"[\\/]", unicodedata.normalize("NFC", name))[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    base = base.lstrip(".") or "image"
    if len(base) > MAX_FILENAME_CHARS:
        stem, dot, ext = base.rpartition(".")
        base = (stem[: MAX_FILENAME_CHARS - len(ext) - 1] + dot + ext) if dot else base[:120]
    return base


def upload_key(image_id: str, filename: str) -> str:
    if not is_image_id(image_id):
        raise ValueError(f"not an image id: {image_id!r}")
    return f"{image_id}/{safe_filename(filename)}"


def image_id_for_upload(object_name: str, generation: str | int | None) -> str:
    """The image id of an object in the uploads bucket.

    Objects written by the API carry their id in the key. Files dropped into the bucket by
    other means get a stable id from (name, generation): a re-upload under the same name is
    a new image, a redelivered event for the same generation is the same image.
    """
    match = _UPLOAD_KEY.match(object_name)
    if match:
        return match.group("id")
    digest = hashlib.sha256(f"{object_name}#{generation}".encode()).hexdigest()
    return digest[:32]


def work_key(image_id: str) -> str:
    return f"{image_id}.npz"


def result_key(image_id: str) -> str:
    return f"{image_id}.json"
