"""Blob stores: the `BlobStore` port and its backends (local folder, GCS, S3-compatible)."""

from detectflow.storage.base import BlobInfo, BlobNotFound, BlobStore, PreconditionFailed
from detectflow.storage.buckets import Buckets
from detectflow.storage.factory import make_buckets
from detectflow.storage.gcs import GcsBlobStore
from detectflow.storage.local import LocalBlobStore
from detectflow.storage.s3 import S3BlobStore

__all__ = [
    "BlobInfo",
    "BlobNotFound",
    "BlobStore",
    "Buckets",
    "GcsBlobStore",
    "LocalBlobStore",
    "PreconditionFailed",
    "S3BlobStore",
    "make_buckets",
]
