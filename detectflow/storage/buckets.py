"""The four buckets by role (see detectflow/layout.py for what goes where)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from detectflow.storage.base import BlobStore
from detectflow.storage.local import LocalBlobStore

ROLES = ("uploads", "work", "results", "models")


@dataclass(frozen=True, slots=True)
class Buckets:
    uploads: BlobStore
    work: BlobStore
    results: BlobStore
    models: BlobStore

    @classmethod
    def local(cls, root: str | Path) -> Buckets:
        """One sub-folder per role under `root` (the embedded default)."""
        base = Path(root)
        stores = {role: LocalBlobStore(base / role, bucket=role) for role in ROLES}
        return cls(**stores)
