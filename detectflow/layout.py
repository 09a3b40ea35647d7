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
# The stored key is `<id>/<name>`; on the local-folder backend the name is a file name, and its
# metadata sidecar is `<name>.json`: most filesystems allow 255 *bytes* per name. 200 bytes of
# UTF-8 leaves room for the sidecar's suffix (and is far under GCS's and S3's 1024-byte keys).
MAX_FILENAME_BYTES = 200


def new_image_id() -> str:
    """32 hex chars that sort by creation time (ns clock, then randomness): newest-first lists."""
    return f"{time.time_ns():016x}{os.urandom(8).hex()}"


def is_image_id(value: str) -> bool:
    return bool(_IMAGE_ID.match(value))


def safe_filename(name: str) -> str:
    """A display/storage-safe file name: no directories, no control characters, at most
    MAX_FILENAME_BYTES bytes of UTF-8.

    Path tricks (`../`, absolute paths, backslashes) are reduced to their last component;
    unicode letters and spaces are kept, since people name files that way. A long name is
    shortened (whole characters, the extension kept), never refused.
    """
    base = re.split(r"[\\/]", unicodedata.normalize("NFC", name))[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    base = base.lstrip(".") or "image"
    return _fit_bytes(base, MAX_FILENAME_BYTES)


def _fit_bytes(name: str, limit: int) -> str:
    """`name` cut to `limit` bytes of UTF-8 at a character boundary, keeping a short
    extension (`.jpg`), so the stored object still says what it is."""
    if len(name.encode()) <= limit:
        return name
    stem, dot, ext = name.rpartition(".")
    suffix = f".{ext}" if dot and stem and len(ext.encode()) <= 16 else ""
    stem = stem if suffix else name
    room = limit - len(suffix.encode())
    cut = stem.encode()[:room].decode("utf-8", errors="ignore").rstrip()
    return (cut or "image") + suffix


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
