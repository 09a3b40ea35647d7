"""Upload notifications for the embedded pipeline, GCS-style.

On Google Cloud (and fake-gcs-server) the bucket itself publishes OBJECT_FINALIZE messages.
A local folder cannot, so:
  * `NotifyingBlobStore` wraps the uploads store and publishes on every `put` (API uploads);
  * `UploadsWatcher` listens for file-system events (inotify on Linux, through `watchfiles`)
    in the uploads folder and publishes a file dropped there by other means (cp, a file
    manager, rsync) once it has stopped changing. Idle, it costs nothing however many files
    the folder holds: no polling, no stat of stored files. What happened while nothing was
    listening (the process was down) is found by reconcile's scan at start-up.
Both go through one `UploadNotifier`, which publishes each (key, generation) once.

The watcher listens to the folder itself and to folders people made in it, not to the
`<image id>/` folders the API writes (one per upload: watching them would cost one kernel
watch each, and nothing is dropped there by hand).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from detectflow.bus import EventBus
from detectflow.layout import is_image_id
from detectflow.pipeline.events import StorageObject, storage_notification
from detectflow.storage import BlobInfo, BlobStore
from detectflow.storage.local import META_DIR

log = logging.getLogger(__name__)

TEMPORARY_SUFFIXES = (".part", ".crdownload", "~")


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

    def notify(self, info: BlobInfo, again: bool = False) -> bool:
        """Publish an OBJECT_FINALIZE notification unless this version was published before
        (`again`: publish anyway, for reconcile's re-drive)."""
        with self._lock:
            if (info.key, info.generation) in self._sent and not again:
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


def ignored_name(name: str) -> bool:
    """Hidden and temporary files (partial downloads, editors' backups, our own temp files)."""
    return name.startswith(".") or name.endswith(TEMPORARY_SUFFIXES)


def watched_folder(name: str) -> bool:
    """Folders people make; not hidden ones, our metadata, or the API's `<id>/` folders."""
    return not name.startswith(".") and name != META_DIR and not is_image_id(name)


class UploadsWatcher:
    """Publishes files dropped into `root` (and folders people made in it) once their size and
    modification time have not changed for `settle_seconds`."""

    def __init__(self, store: BlobStore, root: Path, notifier: UploadNotifier,
                 settle_seconds: float = 0.5) -> None:
        self.store = store
        self.root = root
        self.notifier = notifier
        self.settle_seconds = settle_seconds
        self._pending: dict[str, tuple[str, int, float]] = {}  # key -> (gen, size, since)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()  # set once the first watch is in place

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
                self._watch_until_a_folder_appears()
            except Exception:  # keep watching; a folder vanishing mid-setup is normal
                log.warning("uploads watch failed; restarting it", exc_info=True)
                self._stop.wait(1.0)

    def _watch_until_a_folder_appears(self) -> None:
        """One watch over the current folders; returns when a new folder needs watching."""
        import watchfiles

        folders = list(self._folders())
        tick_ms = max(50, int(self.settle_seconds * 500))
        for changes in watchfiles.watch(
                *folders, watch_filter=None, stop_event=self._stop, recursive=False,
                rust_timeout=tick_ms, yield_on_timeout=True, debounce=tick_ms, step=50,
                raise_interrupt=False):
            self.ready.set()
            new_folder = False
            for _change, path in changes:
                new_folder |= self._saw(Path(path))
            self._announce_settled()
            if new_folder:
                return
        self.ready.set()

    def _folders(self) -> Iterator[Path]:
        yield self.root
        for folder, dirs, _files in os.walk(self.root):
            dirs[:] = [d for d in dirs if watched_folder(d)]
            for name in dirs:
                yield Path(folder) / name

    def _saw(self, path: Path) -> bool:
        """Note a changed path; True when it is a new folder to watch (its files, written
        before the watch covered it, are noted too)."""
        if any(ignored_name(part) for part in path.relative_to(self.root).parts):
            return False
        if path.is_dir():
            if not watched_folder(path.name):
                return False
            for folder, dirs, files in os.walk(path):
                dirs[:] = [d for d in dirs if watched_folder(d)]
                for name in files:
                    self._note(Path(folder) / name)
            return True
        self._note(path)
        return False

    def _note(self, path: Path) -> None:
        if ignored_name(path.name):
            return
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return
        key = path.relative_to(self.root).as_posix()
        generation = str(st.st_mtime_ns)
        if not self.notifier.seen(key, generation):
            self._pending[key] = (generation, st.st_size, time.monotonic())

    def _announce_settled(self) -> None:
        now = time.monotonic()
        for key, (generation, size, since) in list(self._pending.items()):
            if now - since < self.settle_seconds:
                continue
            del self._pending[key]
            info = self.store.stat(key)
            if info is None:
                continue  # gone again (a temporary file under another name)
            if (info.generation, info.size) != (generation, size):
                self._pending[key] = (info.generation, info.size, now)  # still being written
                continue
            if self.notifier.notify(info):
                log.info("upload found in folder", extra={"key": key})
