"""The embedded pipeline (local folders + in-process bus): uploads, dropped files, crashes,
dead letters, several workers."""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

import pytest

from detectflow.launcher.embedded import EmbeddedPipeline
from detectflow.layout import image_id_for_upload, new_image_id, upload_key, work_key
from detectflow.model import Manifest
from detectflow.model.registry import publish_bundle
from detectflow.pipeline import image_status
from detectflow.pipeline.events import PreparedNotice
from detectflow.records import SourceObject
from detectflow.settings import Settings, load_settings
from detectflow.storage import Buckets
from detectflow.topology import RetryPolicy, Topology, default_topology


@pytest.fixture
def settings(tmp_path: Path, model_bundle: Path) -> Settings:
    return load_settings(storage="local", bus="memory", data_dir=tmp_path / "data",
                         model_name=Manifest.read(model_bundle).name,
                         model_cache_dir=tmp_path / "cache", model_check_seconds=0)


@pytest.fixture
def buckets(settings: Settings, model_bundle: Path) -> Buckets:
    b = Buckets.local(settings.data_dir)
    publish_bundle(b.models, model_bundle)
    return b


def fast_retries() -> Topology:
    topology = default_topology("local")
    fast = RetryPolicy(minimum_backoff_seconds=0.01, maximum_backoff_seconds=0.05)
    return dataclasses.replace(topology, subscriptions=tuple(
        dataclasses.replace(s, retry=fast) for s in topology.subscriptions))


def wait_for(predicate: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting")


def sample_bytes(samples_dir: Path) -> list[tuple[str, bytes]]:
    return [(p.name, p.read_bytes()) for p in sorted((samples_dir / "JPEGImages").glob("*.jpg"))]


def test_uploads_through_the_store_get_results(buckets: Buckets, settings: Settings,
                                               samples_dir: Path) -> None:
    with EmbeddedPipeline(buckets, settings, watch=False) as pipeline:
        ids = []
        for name, data in sample_bytes(samples_dir):
            image_id = new_image_id()
            pipeline.buckets.uploads.put(upload_key(image_id, name), data, "image/jpeg")
            ids.append(image_id)
        assert pipeline.wait_idle(30)
        for image_id in ids:
            status, record = image_status(pipeline.buckets, image_id)
            assert status == "done", record
    assert len(list(buckets.results.list())) == len(ids)
    assert list(buckets.work.list()) == []


def test_files_dropped_into_the_uploads_folder_are_processed_once_complete(
        buckets: Buckets, settings: Settings, samples_dir: Path) -> None:
    name, data = sample_bytes(samples_dir)[0]
    folder = Path(settings.data_dir) / "uploads"
    with EmbeddedPipeline(buckets, settings, settle_seconds=0.5) as pipeline:
        target = folder / "copied in slowly.jpg"
        with open(target, "wb") as handle:  # a slow copy: half now, half later
            handle.write(data[: len(data) // 2])
            handle.flush()
            time.sleep(0.05)
            handle.write(data[len(data) // 2:])
        (folder / "sub dir").mkdir()
        shutil.copy(samples_dir / "JPEGImages" / name, folder / "sub dir" / "b.jpg")
        (folder / ".hidden.jpg.part").write_bytes(b"partial download")
        wait_for(lambda: len(list(buckets.results.list())) >= 2)
        assert pipeline.wait_idle(30)
        records = [image_status(buckets, info.key[:-5])[1] for info in buckets.results.list()]
    assert sorted(r.source.name for r in records if r) == ["copied in slowly.jpg",
                                                           "sub dir/b.jpg"]
    assert all(r is not None and r.status == "done" for r in records)


def test_restart_after_a_crash_finishes_every_upload_once(
        buckets: Buckets, settings: Settings, samples_dir: Path) -> None:
    samples = sample_bytes(samples_dir) * 5
    first = EmbeddedPipeline(buckets, settings, watch=False).start()
    ids = []
    for name, data in samples:
        image_id = new_image_id()
        first.buckets.uploads.put(upload_key(image_id, name), data, "image/jpeg")
        ids.append(image_id)
    first.stop()  # "crash": queued messages are gone with the process
    unfinished = [i for i in ids if image_status(buckets, i)[0] not in ("done", "failed")]
    assert unfinished, "the crash came too late to leave work undone"

    with EmbeddedPipeline(buckets, settings, settle_seconds=0.05) as second:
        wait_for(lambda: all(image_status(buckets, i)[0] == "done" for i in ids), 60)
        assert second.wait_idle(30)
    assert sorted(info.key for info in buckets.results.list()) == sorted(f"{i}.json"
                                                                         for i in ids)


def test_poison_message_is_dead_lettered_into_an_error_record(
        buckets: Buckets, settings: Settings) -> None:
    image_id = new_image_id()
    key = upload_key(image_id, "poison.jpg")
    buckets.uploads.put(key, b"\xff\xd8 some upload")
    buckets.work.put(work_key(image_id), b"not an npz at all")
    notice = PreparedNotice(image_id=image_id, work_key=work_key(image_id),
                            source=SourceObject(bucket=buckets.uploads.bucket, name=key))
    with EmbeddedPipeline(buckets, settings, watch=False, topology=fast_retries()) as pipeline:
        pipeline.bus.publish(settings.prepared_topic, *notice.to_message())
        assert pipeline.wait_idle(30)
    status, record = image_status(buckets, image_id)
    assert status == "failed" and record is not None and record.error is not None
    assert record.error.code == "processing_failed"
    assert "failed 5 times in the infer stage" in record.error.message


def test_two_workers_per_stage_lose_and_duplicate_nothing(
        buckets: Buckets, settings: Settings, samples_dir: Path) -> None:
    samples = sample_bytes(samples_dir) * 6
    with EmbeddedPipeline(buckets, settings, workers=2, watch=False) as pipeline:
        ids = []
        for name, data in samples:
            image_id = new_image_id()
            pipeline.buckets.uploads.put(upload_key(image_id, name), data, "image/jpeg")
            ids.append(image_id)
        assert pipeline.wait_idle(60)
    results = {info.key for info in buckets.results.list()}
    assert results == {f"{i}.json" for i in ids}
    assert all(image_status(buckets, i)[0] == "done" for i in ids)


def test_dropped_file_id_is_stable_per_generation(buckets: Buckets, settings: Settings,
                                                  samples_dir: Path) -> None:
    """A rewritten file is a new image (new generation); an unchanged one is not redone."""
    _, data = sample_bytes(samples_dir)[0]
    with EmbeddedPipeline(buckets, settings, settle_seconds=0.05):
        info = buckets.uploads.put("same-name.jpg", data)
        wait_for(lambda: len(list(buckets.results.list())) == 1)
        time.sleep(0.3)  # several scans: no second result for the same generation
        assert len(list(buckets.results.list())) == 1
        first_id = image_id_for_upload("same-name.jpg", info.generation)
        assert image_status(buckets, first_id)[0] == "done"
        buckets.uploads.put("same-name.jpg", data)  # overwritten: a new generation
        wait_for(lambda: len(list(buckets.results.list())) == 2)
