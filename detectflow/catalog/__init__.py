"""The catalog: one record per image behind a port, like `BlobStore` and `EventBus`.

SQLite (a file, the embedded default) or Firestore (the local cloud and Google Cloud); see
`base.py` for the port and what each status means, `rebuild.py` for recreating it from the
buckets, which stay the source of truth.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from detectflow.catalog.base import (
    PENDING,
    STATUSES,
    Catalog,
    CatalogPage,
    CatalogQuery,
    CatalogRecord,
    CatalogStats,
    CatalogStatus,
    Cursor,
    NullCatalog,
)
from detectflow.catalog.entries import result_entry, upload_entry

if TYPE_CHECKING:
    from detectflow.settings import Settings

__all__ = [
    "PENDING", "STATUSES", "Catalog", "CatalogPage", "CatalogQuery", "CatalogRecord",
    "CatalogStats", "CatalogStatus", "Cursor", "NullCatalog", "make_catalog", "result_entry",
    "upload_entry",
]


def make_catalog(settings: Settings) -> Catalog:
    """The catalog the settings name (`DETECTFLOW_CATALOG`; by default Firestore with
    storage=gcs, else SQLite under the data folder)."""
    backend = settings.catalog_backend
    if backend == "firestore":
        from detectflow.catalog.firestore import FirestoreCatalog

        if not settings.project:
            raise ValueError("the Firestore catalog needs a project")
        return FirestoreCatalog(settings.project, settings.catalog_collection,
                                settings.firestore_database, settings.firestore_emulator_host)
    if backend == "sqlite":
        from detectflow.catalog.sqlite import SqliteCatalog

        return SqliteCatalog(settings.catalog_file)
    return NullCatalog()
