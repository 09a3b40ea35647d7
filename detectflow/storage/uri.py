"""Folders addressed by URI: `gs://bucket/prefix`, `s3://bucket/prefix` or a local path.

The trainer (and its container on Vertex AI) reads datasets from and writes runs and bundles
to such URIs. Cloud URIs go through the same BlobStore backends as the pipeline; emulators
are honoured through STORAGE_EMULATOR_HOST / AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from detectflow.storage.base import BlobStore

REMOTE_SCHEMES = ("gs", "s3")


@dataclass(frozen=True)
class RemoteFolder:
    store: BlobStore
    prefix: str  # "" or ending in "/"


def is_remote(uri: str | Path) -> bool:
    return urlparse(str(uri)).scheme in REMOTE_SCHEMES


def open_remote(uri: str) -> RemoteFolder:
    parsed = urlparse(uri)
    prefix = parsed.path.lstrip("/")
    prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
    if parsed.scheme == "gs":
        from detectflow.storage.gcs import GcsBlobStore, make_gcs_client

        client = make_gcs_client(os.environ.get("GOOGLE_CLOUD_PROJECT"),
                                 os.environ.get("STORAGE_EMULATOR_HOST"))
        return RemoteFolder(GcsBlobStore(client, parsed.netloc), prefix)
    if parsed.scheme == "s3":
        from detectflow.storage.s3 import S3BlobStore, make_s3_client

        client = make_s3_client(os.environ.get("AWS_ENDPOINT_URL"),
                                os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
        return RemoteFolder(S3BlobStore(client, parsed.netloc), prefix)
    raise ValueError(f"not a remote URI (gs:// or s3://): {uri!r}")


def download_folder(uri: str, destination: Path) -> Path:
    """Copy every object under the URI into `destination` (skipping files already there)."""
    remote = open_remote(uri)
    destination.mkdir(parents=True, exist_ok=True)
    for info in remote.store.list(remote.prefix):
        relative = info.key[len(remote.prefix):]
        target = destination / relative
        if not relative or ".." in Path(relative).parts:
            continue
        if target.is_file() and target.stat().st_size == info.size:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(remote.store.get(info.key))
    if not any(destination.iterdir()):
        raise FileNotFoundError(f"nothing found under {uri}")
    return destination


def upload_folder(source: Path, uri: str) -> int:
    """Copy a local folder's files under the URI; returns how many were written."""
    remote = open_remote(uri)
    files = sorted(p for p in source.rglob("*") if p.is_file())
    for path in files:
        remote.store.put(remote.prefix + path.relative_to(source).as_posix(), path.read_bytes())
    return len(files)


def publish_to(bundle: Path, target: str) -> str:
    """Publish a bundle folder to a models bucket (gs://BUCKET, s3://BUCKET) or local folder,
    as `<name>/<version>/` + `<name>/LATEST`; returns where it went."""
    from detectflow.model.registry import publish_bundle
    from detectflow.storage.local import LocalBlobStore

    store = open_remote(target).store if is_remote(target) else LocalBlobStore(target)
    manifest = publish_bundle(store, bundle)
    return f"{target.rstrip('/')}/{manifest.name}/{manifest.version}/"
