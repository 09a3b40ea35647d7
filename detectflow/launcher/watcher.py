"""Upload notifications for the embedded pipeline, GCS-style.

On Google Cloud (and fake-gcs-server) the bucket itself publishes OBJECT_FINALIZE messages.
A local folder cannot, so:
  * `NotifyingBlobStore` wraps the uploads store and publishes on every `put` (API uploads);
  * `UploadsWatcher` polls the uploads folder for files dropped there by other means (cp,
    a file manager, rsync) and publishes once each file has stopped changing; its first
    scan also re-finds uploads that never got a result (the process died mid-way).
Both go through one `UploadNotifier`, which publishes each (key, generation) once.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from detectflow.bus import EventBus
from detectflow.pipeline.events import StorageObject, storage_notification
from detectflow.storage import BlobInfo, BlobStore
from detectflow.storage.local import META_DIR

log = logging.getLogger(__name__)


class UploadNotifier:
    def __init__(self, bus: EventBus, topic: str, bucket: str) -> None:
        self.bus = bus
        self.topic = topic
        self.bucket = bucket
        self._sent: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def seen(self, key: str, generation: str) -> bool:
        with self._lock:
            return (key, generation) in self._sent

    def mark_seen(self, key: str, generation: str) -> None:
        with self._lock:
            self._sent.add((key, generation))

    def notify(self, info: BlobInfo) -> bool:
        """Publish an OBJECT_FINALIZE notification unless this version was published before."""
        with self._lock:
            if (info.key, info.generation) in self._sent:
                return False
            self._sent.add((info.key, info.generation))
        obj = StorageObject(bucket=self.bucket, name=info.key, generation=info.generation,
                            content_type=info.content_type, size=info.size,
                            metadata=info.metadata, time_created=info.updated)
        self.bus.publish(self.topic, *storage_notification(obj))
        return True


class NotifyingBlobStore:
    """A BlobStore that announces every object written to it (the uploads bucket)."""

    def __init__(self, inner: BlobStore, notifier: UploadNotifier) -> None:
        self.inner = inner
        self.notifier = notifier
        self.bucket = inner.bucket

    def put(self, key: str, data: bytes, content_type: str | None = None,
            metadata: dict[str, str] | None = None, if_absent: bool = False) -> BlobInfo:
        info = self.inner.put(key, data, content_type, metadata, if_absent)
        self.notifier.notify(info)
        return info

    def get(self, key: str) -> bytes:
        return self.inner.get(key)

    def stat(self, key: str) -> BlobInfo | None:
        return self.inner.stat(key)

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)


class UploadsWatcher:
    """Polls a local uploads folder (portable; no inotify needed) every `interval` seconds."""

    def __init__(self, store: BlobStore, root: Path, notifier: UploadNotifier,
                 is_done: Callable[[str, str], bool], interval: float = 0.5) -> None:
        self.store = store
        self.root = root
        self.notifier = notifier
        self.is_done = is_done  # (key, generation) -> has a result already
        self.interval = interval
        self._pending: dict[str, tuple[str, int]] = {}  # key -> (generation, size) last seen
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="uploads-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.scan()
            except Exception:  # keep watching; a vanished file mid-scan is normal
                log.warning("uploads scan failed", exc_info=True)
            self._stop.wait(self.interval)

    def scan(self) -> int:
        """One pass; returns how many uploads were announced."""
        announced = 0
        current = dict(self._files())
        for key, (generation, size) in current.items():
            if self.notifier.seen(key, generation):
                continue
            if self._pending.get(key) != (generation, size):
                self._pending[key] = (generation, size)  # changed: wait until it settles
                continue
            if self.is_done(key, generation):
                self.notifier.mark_seen(key, generation)
                continue
            info = self.store.stat(key)
            if info is not None and self.notifier.notify(info):
                log.info("upload found in folder", extra={"key": key})
                announced += 1
        for key in set(self._pending) - set(current):
            del self._pending[key]
        return announced

    def _files(self) -> Iterator[tuple[str, tuple[str, int]]]:
        for folder, dirs, files in os.walk(self.root):
            # Skip our metadata sidecars and hidden/temporary files (partial downloads).
            dirs[:] = [d for d in dirs if not d.startswith(".") and d != META_DIR]
            for name in files:
                if name.startswith(".") or name.endswith((".part", ".crdownload", "~")):
                    continue
                path = Path(folder) / name
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue
                yield path.relative_to(self.root).as_posix(), (str(st.st_mtime_ns), st.st_size)
