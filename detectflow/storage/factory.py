"""Build the four buckets for the storage backend the settings name."""

from __future__ import annotations

from typing import Any

from detectflow.settings import Settings
from detectflow.storage.buckets import ROLES, Buckets


def make_buckets(settings: Settings, create: bool = False) -> Buckets:
    """Buckets for `settings.storage`; `create=True` creates missing buckets (emulators, tests:
    on Google Cloud, Terraform owns them)."""
    names = settings.bucket_names()
    if settings.storage == "local":
        return Buckets.local(settings.data_dir)
    stores: dict[str, Any]
    if settings.storage == "gcs":
        from detectflow.storage.gcs import GcsBlobStore, make_gcs_client

        gcs = make_gcs_client(settings.project, settings.storage_emulator_host)
        stores = {role: GcsBlobStore(gcs, names[role]) for role in ROLES}
    else:
        from detectflow.storage.s3 import S3BlobStore, make_s3_client

        s3 = make_s3_client(settings.s3_endpoint_url, settings.s3_region)
        stores = {role: S3BlobStore(s3, names[role]) for role in ROLES}
    if create:
        for store in stores.values():
            store.create_bucket()
    return Buckets(**stores)
