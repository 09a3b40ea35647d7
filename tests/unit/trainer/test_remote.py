"""The trainer's gs:// folders and `--publish`, against fake-gcs-server (no TensorFlow), and
`--publish` to a local folder. Only the tests that talk to fake-gcs-server carry the
`emulators` marker."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from detectflow.model import Manifest
from detectflow.model.registry import latest_version
from detectflow.storage import GcsBlobStore, LocalBlobStore
from detectflow.storage.gcs import make_gcs_client
from detectflow.storage.uri import download_folder, publish_to, upload_folder


@pytest.fixture
def gcs(gcs_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_url)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "test-project")
    for bucket in ("data", "models"):
        GcsBlobStore(make_gcs_client("test-project", gcs_url), bucket).create_bucket()
    return gcs_url


@pytest.mark.emulators
def test_dataset_round_trips_through_a_bucket(gcs: str, voc_root: Path, tmp_path: Path) -> None:
    written = upload_folder(voc_root, "gs://data/datasets/shapes")
    local = download_folder("gs://data/datasets/shapes", tmp_path / "copy")
    originals = sorted(p.relative_to(voc_root) for p in voc_root.rglob("*") if p.is_file())
    copies = sorted(p.relative_to(local) for p in local.rglob("*") if p.is_file())
    assert written == len(originals) > 10 and copies == originals
    sample = originals[0]
    assert (local / sample).read_bytes() == (voc_root / sample).read_bytes()


@pytest.mark.emulators
def test_download_of_an_empty_prefix_is_a_clear_error(gcs: str, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing found under gs://data/missing"):
        download_folder("gs://data/missing", tmp_path / "x")


@pytest.mark.emulators
def test_publish_bundle_to_models_bucket(gcs: str, bccd_bundle: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(bccd_bundle, bundle)
    manifest = Manifest.read(bundle)
    manifest.version = f"test-{os.getpid()}"
    manifest.write(bundle)
    where = publish_to(bundle, "gs://models")
    assert where == f"gs://models/bccd/{manifest.version}/"
    store = GcsBlobStore(make_gcs_client("test-project", gcs), "models")
    assert latest_version(store, "bccd") == manifest.version
    shipped = store.get(f"bccd/{manifest.version}/model.tflite")
    assert shipped == (bundle / "model.tflite").read_bytes()


def test_publish_to_a_local_models_folder(bccd_bundle: Path, tmp_path: Path) -> None:
    where = publish_to(bccd_bundle, str(tmp_path / "models"))
    version = Manifest.read(bccd_bundle).version
    assert where.endswith(f"/bccd/{version}/")
    assert latest_version(LocalBlobStore(tmp_path / "models"), "bccd") == version
