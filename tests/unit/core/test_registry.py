"""Model bundles in the models bucket: publish, resolve, cache, and hot-swap without restart."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from detectflow.model import Manifest
from detectflow.model.registry import (
    ModelNotFound,
    ModelRegistry,
    VersionExists,
    latest_key,
    latest_version,
    list_versions,
    publish_bundle,
)
from detectflow.storage import BlobStore, LocalBlobStore


def bundle_version(bundle: Path, version: str, dest: Path) -> Path:
    """A copy of `bundle` that calls itself `version`."""
    shutil.copytree(bundle, dest)
    manifest = Manifest.read(dest)
    manifest.model_copy(update={"version": version}).write(dest)
    return dest


class CountingStore:
    """A LocalBlobStore that counts requests, to show that checks for updates are cheap."""

    def __init__(self, inner: LocalBlobStore) -> None:
        self.inner = inner
        self.bucket = inner.bucket
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> object:
        self.calls[name] = self.calls.get(name, 0) + 1
        return getattr(self.inner, name)


def test_publish_writes_versioned_files_and_latest(model_bundle: Path, tmp_path: Path) -> None:
    models = LocalBlobStore(tmp_path / "models")
    manifest = publish_bundle(models, model_bundle)
    prefix = f"{manifest.name}/{manifest.version}/"
    keys = {info.key for info in models.list()}
    assert prefix + "manifest.json" in keys and prefix + manifest.model_file in keys
    assert latest_version(models, manifest.name) == manifest.version
    assert list_versions(models, manifest.name) == [manifest.version]
    with pytest.raises(VersionExists):
        publish_bundle(models, model_bundle)


def test_registry_loads_lazily_and_once(model_bundle: Path, tmp_path: Path) -> None:
    models = LocalBlobStore(tmp_path / "models")
    manifest = publish_bundle(models, model_bundle)
    registry = ModelRegistry(models, manifest.name, tmp_path / "cache", check_seconds=60)
    served = registry.manifest()
    assert served is not None and served.version == manifest.version
    assert not (tmp_path / "cache").exists()  # the manifest alone needs no download
    first = registry.detector()
    assert registry.detector() is first
    assert (tmp_path / "cache" / manifest.name / manifest.version / "manifest.json").is_file()


def test_new_version_is_picked_up_without_restart(model_bundle: Path, tmp_path: Path) -> None:
    models = LocalBlobStore(tmp_path / "models")
    v1 = publish_bundle(models, model_bundle)
    clock = [0.0]
    counting = CountingStore(models)
    registry = ModelRegistry(counting, v1.name, tmp_path / "cache",  # type: ignore[arg-type]
                             check_seconds=10, clock=lambda: clock[0])
    old = registry.detector()
    assert old.manifest.version == v1.version

    publish_bundle(models, bundle_version(model_bundle, "v2-test", tmp_path / "v2"))
    assert registry.detector() is old  # not checked again before check_seconds
    clock[0] += 10
    new = registry.detector()
    assert new.manifest.version == "v2-test" and new is not old
    assert registry.manifest() is not None and registry.manifest().version == "v2-test"
    # While LATEST is unchanged, a check is one metadata request (stat), no download.
    counting.calls.clear()
    clock[0] += 10
    assert registry.detector() is new
    assert counting.calls == {"stat": 1}


def test_pinned_version_ignores_latest(model_bundle: Path, tmp_path: Path) -> None:
    models = LocalBlobStore(tmp_path / "models")
    v1 = publish_bundle(models, model_bundle)
    publish_bundle(models, bundle_version(model_bundle, "v2-test", tmp_path / "v2"))
    registry = ModelRegistry(models, v1.name, tmp_path / "cache", version=v1.version)
    assert registry.detector().manifest.version == v1.version


def test_missing_or_incomplete_models_raise_model_not_found(model_bundle: Path,
                                                            tmp_path: Path) -> None:
    models = LocalBlobStore(tmp_path / "models")
    registry = ModelRegistry(models, "nothing", tmp_path / "cache", check_seconds=0)
    assert registry.manifest() is None
    with pytest.raises(ModelNotFound, match="publish"):
        registry.detector()
    # LATEST names a version whose upload never finished (no manifest.json).
    models.put("half/v9/model.tflite", b"\0" * 10)
    models.put(latest_key("half"), b"v9")
    with pytest.raises(ModelNotFound, match="not"):
        ModelRegistry(models, "half", tmp_path / "cache").detector()


def test_concurrent_first_use_downloads_once(model_bundle: Path, tmp_path: Path) -> None:
    models: BlobStore = LocalBlobStore(tmp_path / "models")
    manifest = publish_bundle(models, model_bundle)
    registry = ModelRegistry(models, manifest.name, tmp_path / "cache", per_thread=True)
    detectors = []
    barrier = threading.Barrier(4)

    def use() -> None:
        barrier.wait()
        detectors.append(registry.detector())

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(d) for d in detectors}) == 4  # one interpreter per thread
    cache = tmp_path / "cache" / manifest.name
    assert [p.name for p in cache.iterdir()] == [manifest.version]  # one complete copy
