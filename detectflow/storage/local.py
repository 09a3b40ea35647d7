"""Blob store on a local folder: the embedded default (no cloud, no emulator)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from detectflow.storage.base import BlobInfo, BlobNotFound, PreconditionFailed

META_DIR = ".detectflow-meta"


class LocalBlobStore:
    """Objects are files under `root`; content type and metadata sit in a sidecar JSON file.

    Writes are atomic (temp file + rename), so a reader or a folder watcher never sees half a
    file. Keys are validated: nothing escapes `root`.
    """

    def __init__(self, root: str | Path, bucket: str | None = None) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.bucket = bucket or self.root.name

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts) or (
            parts[0] == META_DIR or "\\" in key or "\x00" in key
        ):
            raise ValueError(f"invalid object key: {key!r}")
        return self.root.joinpath(*parts)

    def _meta_path(self, key: str) -> Path:
        return self.root / META_DIR / f"{key}.json"

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        if_absent: bool = False,
    ) -> BlobInfo:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = json.dumps({"content_type": content_type, "metadata": metadata or {}}).encode()
        self._meta_path(key).parent.mkdir(parents=True, exist_ok=True)
        tmp = self._write_temp(path, data)
        try:
            if if_absent:
                try:
                    os.link(tmp, path)  # atomic create-if-absent
                except FileExistsError as err:
                    raise PreconditionFailed(f"{self.bucket}/{key} exists") from err
                self._atomic_write(self._meta_path(key), meta)
            else:
                # Metadata first, so a reader that sees the new object sees its metadata.
                self._atomic_write(self._meta_path(key), meta)
                os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        info = self.stat(key)
        assert info is not None
        return info

    @staticmethod
    def _write_temp(path: Path, data: bytes) -> Path:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return Path(name)

    def _atomic_write(self, path: Path, data: bytes) -> None:
        os.replace(self._write_temp(path, data), path)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as err:
            raise BlobNotFound(f"{self.bucket}/{key}") from err

    def stat(self, key: str) -> BlobInfo | None:
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not path.is_file():
            return None
        try:
            meta = json.loads(self._meta_path(key).read_text())
        except (FileNotFoundError, ValueError):
            meta = {}
        return BlobInfo(
            key=key,
            size=st.st_size,
            generation=str(st.st_mtime_ns),
            content_type=meta.get("content_type"),
            metadata=meta.get("metadata") or {},
            updated=st.st_mtime,
        )

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        # Walk only the folder the prefix names (e.g. "<id>/"), not the whole bucket.
        folder = self.root.joinpath(*prefix.split("/")[:-1]) if "/" in prefix else self.root
        if ".." in prefix.split("/") or not folder.is_dir():
            return
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(self.root).as_posix()
            if rel.startswith(META_DIR) or path.name.startswith(".tmp-") or not path.is_file():
                continue
            if rel.startswith(prefix):
                info = self.stat(rel)
                if info is not None:
                    yield info

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
        self._meta_path(key).unlink(missing_ok=True)
