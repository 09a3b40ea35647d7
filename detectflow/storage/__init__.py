"""Blob stores: the `BlobStore` port and its backends (local folder, GCS, S3-compatible)."""

from detectflow.storage.base import BlobInfo, BlobNotFound, BlobStore, PreconditionFailed
from detectflow.storage.buckets import Buckets
from detectflow.storage.local import LocalBlobStore

__all__ = [
    "BlobInfo",
    "BlobNotFound",
    "BlobStore",
    "Buckets",
    "LocalBlobStore",
    "PreconditionFailed",
]
