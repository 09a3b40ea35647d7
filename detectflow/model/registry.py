"""Model bundles in the models bucket: publish, resolve, download, cache, hot-swap.

Layout (see detectflow/layout.py):  <name>/<version>/manifest.json, <name>/<version>/<files>,
and <name>/LATEST, a tiny text object naming the version to serve. Publishing writes the
manifest after every other file and LATEST last, so a reader that sees LATEST finds a complete
bundle. A running instance notices a new LATEST by comparing the object's generation (one
metadata request, at most every `check_seconds`), downloads the bundle once and swaps the
Detector in; requests already running keep the one they started with.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from detectflow.model.detector import Detector
from detectflow.model.manifest import MANIFEST_NAME, Manifest
from detectflow.storage.base import BlobNotFound, BlobStore

log = logging.getLogger(__name__)

LATEST = "LATEST"


class ModelNotFound(LookupError):
    """No (complete) bundle of that name/version in the models bucket."""


class VersionExists(ValueError):
    """Publishing would overwrite a bundle version: versions are immutable."""


def latest_key(name: str) -> str:
    return f"{name}/{LATEST}"


def bundle_prefix(name: str, version: str) -> str:
    return f"{name}/{version}/"


def publish_bundle(models: BlobStore, bundle_dir: str | Path, make_latest: bool = True,
                   overwrite: bool = False) -> Manifest:
    """Upload a bundle folder as `<name>/<version>/...` (name and version from its manifest)."""
    bundle = Path(bundle_dir)
    manifest = Manifest.read(bundle)
    prefix = bundle_prefix(manifest.name, manifest.version)
    if not overwrite and models.stat(prefix + MANIFEST_NAME) is not None:
        raise VersionExists(
            f"{manifest.name} {manifest.version} is already published; bump the version")
    files = sorted(p for p in bundle.rglob("*") if p.is_file() and p.name != MANIFEST_NAME)
    for path in [*files, bundle / MANIFEST_NAME]:  # manifest last: it marks completeness
        models.put(prefix + path.relative_to(bundle).as_posix(), path.read_bytes(),
                   content_type=_content_type(path))
    if make_latest:
        models.put(latest_key(manifest.name), manifest.version.encode(), "text/plain")
    log.info("model published", extra={"model_name": manifest.name,
                                       "model_version": manifest.version,
                                       "bucket": models.bucket, "files": len(files) + 1})
    return manifest


def latest_version(models: BlobStore, name: str) -> str | None:
    try:
        return models.get(latest_key(name)).decode().strip() or None
    except BlobNotFound:
        return None


def list_versions(models: BlobStore, name: str) -> list[str]:
    """Complete (manifest present) versions, oldest key first."""
    return [info.key.split("/")[1] for info in models.list(f"{name}/")
            if info.key.count("/") == 2 and info.key.endswith("/" + MANIFEST_NAME)]


def _content_type(path: Path) -> str:
    return {".json": "application/json", ".tflite": "application/octet-stream",
            ".png": "image/png", ".txt": "text/plain", ".md": "text/markdown"}.get(
        path.suffix, "application/octet-stream")


class ModelRegistry:
    """Serve one model name from a models bucket: lazy, cached, picks up new versions.

    Thread-safe. `manifest()` is cheap (only manifest.json is read); `detector()` downloads
    the bundle to `cache_dir/<name>/<version>/` and loads the LiteRT interpreter, once per
    version per process.
    """

    def __init__(self, models: BlobStore, name: str, cache_dir: str | Path,
                 version: str | None = None, check_seconds: float = 10.0,
                 num_threads: int = 1, per_thread: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.models = models
        self.name = name
        self.cache_dir = Path(cache_dir)
        self.pinned_version = version
        self.check_seconds = check_seconds
        self.num_threads = num_threads
        # One interpreter per thread lets threads infer in parallel (LiteRT releases the GIL
        # in invoke); the default shares one, serialized by the Detector's lock.
        self.per_thread = per_thread
        self._local = threading.local()
        self._clock = clock
        self._lock = threading.RLock()
        self._version: str | None = None
        self._latest_generation: str | None = None
        self._checked_at: float | None = None
        self._manifest: Manifest | None = None
        self._detector: Detector | None = None

    def version(self) -> str | None:
        """The version to serve now (pinned, or LATEST as last seen)."""
        with self._lock:
            if self.pinned_version:
                return self.pinned_version
            now = self._clock()
            if self._checked_at is None or now - self._checked_at >= self.check_seconds:
                self._checked_at = now
                self._refresh_latest()
            return self._version

    def _refresh_latest(self) -> None:
        info = self.models.stat(latest_key(self.name))
        if info is None:
            self._version, self._latest_generation = None, None
            return
        if info.generation == self._latest_generation and self._version is not None:
            return  # unchanged: one metadata request, no download
        version = latest_version(self.models, self.name)
        if version != self._version:
            log.info("model version found", extra={"model_name": self.name,
                                                   "model_version": version,
                                                   "previous_version": self._version})
        self._version, self._latest_generation = version, info.generation

    def manifest(self) -> Manifest | None:
        """The manifest of the version served now; None when nothing is published yet."""
        version = self.version()
        if version is None:
            return None
        with self._lock:
            if self._manifest is None or self._manifest.version != version:
                try:
                    data = self.models.get(bundle_prefix(self.name, version) + MANIFEST_NAME)
                except BlobNotFound:
                    return None
                self._manifest = Manifest.model_validate_json(data)
            return self._manifest

    def detector(self) -> Detector:
        """The Detector for the version served now (loaded once per version)."""
        version = self.version()
        if version is None:
            raise ModelNotFound(
                f"No model {self.name!r} in bucket {self.models.bucket!r}: publish one "
                f"(detectflow.model.registry.publish_bundle) or check DETECTFLOW_MODEL_NAME")
        current: Detector | None = (
            getattr(self._local, "detector", None) if self.per_thread else self._detector)
        if current is not None and current.manifest.version == version:
            return current
        with self._lock:
            path = self.download(version)
            if not self.per_thread and self._detector is not None and (
                    self._detector.manifest.version == version):
                return self._detector  # another thread loaded it meanwhile
            detector = Detector.load(path, num_threads=self.num_threads)
            if self.per_thread:
                self._local.detector = detector
            else:
                self._detector = detector
            return detector

    def download(self, version: str) -> Path:
        """Local copy of a bundle version (downloaded once; the rename makes it atomic)."""
        target = self.cache_dir / self.name / version
        if (target / MANIFEST_NAME).is_file():
            return target
        prefix = bundle_prefix(self.name, version)
        keys = [info.key for info in self.models.list(prefix)]
        if prefix + MANIFEST_NAME not in keys:
            raise ModelNotFound(f"{self.name} {version} is not (completely) published")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=target.parent))
        try:
            for key in keys:
                dest = staging / key[len(prefix):]
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(self.models.get(key))
            try:
                os.rename(staging, target)
            except OSError:
                if not (target / MANIFEST_NAME).is_file():  # lost a race to a complete copy?
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        log.info("model downloaded", extra={"model_name": self.name, "model_version": version,
                                            "path": str(target), "files": len(keys)})
        return target
