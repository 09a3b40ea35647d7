"""Reconcile and rebuild on the embedded backend (local folders, SQLite catalog, the real
model): uploads that never got an event end in a result, exactly those are re-driven, and a
catalog rebuilt from the buckets equals the one the pipeline kept."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from detectflow.catalog import CatalogRecord, upload_entry
from detectflow.catalog.rebuild import rebuild
from detectflow.catalog.sqlite import SqliteCatalog
from detectflow.launcher.embedded import EmbeddedPipeline
from detectflow.layout import image_id_for_upload, new_image_id, upload_key
from detectflow.model import Manifest
from detectflow.model.registry import publish_bundle
from detectflow.pipeline.status import image_status
from detectflow.settings import Settings, load_settings
from detectflow.storage import Buckets


@pytest.fixture
def settings(tmp_path: Path, model_bundle: Path) -> Settings:
    return load_settings(storage="local", bus="memory", data_dir=tmp_path / "data",
                         model_name=Manifest.read(model_bundle).name,
                         model_cache_dir=tmp_path / "cache")


@pytest.fixture
def buckets(settings: Settings, model_bundle: Path) -> Buckets:
    b = Buckets.local(settings.data_dir)
    publish_bundle(b.models, model_bundle)
    return b


def samples(samples_dir: Path) -> list[tuple[str, bytes]]:
    return [(p.name, p.read_bytes()) for p in sorted((samples_dir / "JPEGImages").glob("*.jpg"))]


def process(buckets: Buckets, settings: Settings, catalog: SqliteCatalog,
            files: list[tuple[str, bytes]]) -> list[str]:
    """Uploads through the pipeline (with its catalog), as the API would make them."""
    ids = []
    with EmbeddedPipeline(buckets, settings, watch=False, catalog=catalog) as pipeline:
        for name, data in files:
            image_id = new_image_id()
            catalog.put(upload_entry(image_id, upload_key(image_id, name), "queued",
                                     filename=name))
            pipeline.buckets.uploads.put(upload_key(image_id, name), data, "image/jpeg",
                                         metadata={"filename": name})
            ids.append(image_id)
        assert pipeline.wait_idle(60)
    return ids


def reconcile(settings: Settings, *args: str) -> dict[str, object]:
    env = {**os.environ, "DETECTFLOW_MODEL_CACHE_DIR": str(settings.model_cache_dir),
           "DETECTFLOW_MODEL_NAME": settings.model_name}
    done = subprocess.run(
        [sys.executable, "-m", "detectflow.cli", "reconcile", "--data-dir",
         str(settings.data_dir), "--json", *args], capture_output=True, text=True, env=env,
        timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, object] = json.loads(done.stdout)
    return report


def test_reconcile_redrives_exactly_the_uploads_without_a_result(
        buckets: Buckets, settings: Settings, samples_dir: Path) -> None:
    catalog = SqliteCatalog(settings.catalog_file)
    processed = process(buckets, settings, catalog, samples(samples_dir) * 3)
    # Uploads that never got an event: written straight into the folder, nothing listening.
    missing = []
    for i, (name, data) in enumerate(samples(samples_dir)):
        image_id = new_image_id()
        buckets.uploads.put(upload_key(image_id, f"late-{i}-{name}"), data, "image/jpeg")
        missing.append(image_id)
    info = buckets.uploads.put("copied in/by hand.jpg", samples(samples_dir)[0][1])
    missing.append(image_id_for_upload(info.key, info.generation))

    dry = reconcile(settings, "--older-than", "0", "--dry-run")
    assert dry["mode"] == "full" and dry["dry_run"] is True
    assert sorted(dry["redriven_ids"]) == sorted(missing)  # type: ignore[arg-type]
    assert dry["checked"] == len(processed) + len(missing)
    assert all(image_status(buckets, i)[0] == "queued" for i in missing[:-1])  # untouched

    young = reconcile(settings, "--older-than", "3600", "--dry-run")
    assert young["redriven"] == 0  # all of them are younger than an hour

    report = reconcile(settings, "--older-than", "0")
    assert sorted(report["redriven_ids"]) == sorted(missing)  # type: ignore[arg-type]
    assert report["finished"] is True
    assert sorted(report["catalogued_ids"]) == sorted(missing)  # type: ignore[arg-type]
    assert all(image_status(buckets, i)[0] == "done" for i in processed + missing)
    assert len(list(buckets.results.list())) == len(processed) + len(missing)
    assert all((r := catalog.get(i)) is not None and r.status == "done"
               for i in processed + missing)

    again = reconcile(settings, "--older-than", "0")
    assert again["redriven"] == 0 and again["repaired"] == 0


def test_stuck_pass_redrives_old_pending_records_and_repairs_finished_ones(
        buckets: Buckets, settings: Settings, samples_dir: Path) -> None:
    catalog = SqliteCatalog(settings.catalog_file)
    (finished,) = process(buckets, settings, catalog, samples(samples_dir)[:1])
    long_ago = time.time() - 3600
    # A record left `processing` although its result exists (a crash between the writes)...
    stale = catalog.get(finished)
    assert stale is not None
    catalog.delete(finished)
    catalog.put(dataclasses.replace(stale, status="processing", detection_count=None,
                                    class_counts={}, updated=long_ago))
    # ...and an upload whose event was lost, queued for an hour.
    lost = new_image_id()
    key = upload_key(lost, "lost.jpg")
    buckets.uploads.put(key, samples(samples_dir)[1][1], "image/jpeg")
    catalog.put(upload_entry(lost, key, "queued", now=long_ago))
    # A fresh queued record is left alone (it may be on its way).
    fresh = new_image_id()
    catalog.put(upload_entry(fresh, upload_key(fresh, "fresh.jpg"), "queued"))

    report = reconcile(settings, "--stuck", "--older-than", "600")
    assert report["mode"] == "stuck" and report["checked"] == 2
    assert report["redriven_ids"] == [lost]
    assert report["repaired_ids"] == [finished]
    assert image_status(buckets, lost)[0] == "done"
    record: CatalogRecord | None = catalog.get(finished)
    assert record is not None and record.status == "done" and record.class_counts


def test_rebuilt_catalog_equals_the_live_one(buckets: Buckets, settings: Settings,
                                             samples_dir: Path, tmp_path: Path) -> None:
    live = SqliteCatalog(settings.catalog_file)
    files = samples(samples_dir) * 2 + [("text.jpg", b"not an image at all")]
    process(buckets, settings, live, files)
    with EmbeddedPipeline(buckets, settings, settle_seconds=0.05, catalog=live) as pipeline:
        dropped = Path(settings.data_dir) / "uploads" / "dropped in.jpg"
        dropped.write_bytes(samples(samples_dir)[2][1])
        deadline = time.monotonic() + 30
        while len(list(buckets.results.list())) < len(files) + 1:
            assert time.monotonic() < deadline, "the dropped file was never processed"
            time.sleep(0.05)
        assert pipeline.wait_idle(30)

    rebuilt = SqliteCatalog(tmp_path / "rebuilt.sqlite3")
    report = rebuild(buckets, rebuilt)
    assert report.added == len(files) + 1 and report.removed == 0
    live_records = {r.image_id: r for r in live.scan()}
    rebuilt_records = {r.image_id: r for r in rebuilt.scan()}
    assert live_records.keys() == rebuilt_records.keys()
    different = [i for i in live_records if not live_records[i].same_content(rebuilt_records[i])]
    assert not different, [(live_records[i], rebuilt_records[i]) for i in different[:2]]
    assert {r.status for r in live_records.values()} == {"done", "failed"}
    assert live.stats().images_by_status == rebuilt.stats().images_by_status
    assert live.stats().detections_by_class == rebuilt.stats().detections_by_class
    # Rebuilding the live catalog in place changes nothing.
    assert rebuild(buckets, live).unchanged == len(files) + 1
