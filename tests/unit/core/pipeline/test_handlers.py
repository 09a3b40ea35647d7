"""The stage handlers on local buckets, called directly: results, idempotency, error records."""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from support.matching import assert_matches, iou

from detectflow.bus import Message
from detectflow.bus.base import DEAD_LETTER_DELIVERY_COUNT
from detectflow.imaging import DEFAULT_LIMITS, ImageLimits
from detectflow.layout import image_id_for_upload, new_image_id, result_key, upload_key, work_key
from detectflow.model import Detector
from detectflow.model.registry import ModelNotFound, ModelRegistry, publish_bundle
from detectflow.pipeline import image_status
from detectflow.pipeline.events import PreparedNotice, StorageObject, storage_notification
from detectflow.pipeline.handlers import PipelineHandlers
from detectflow.pipeline.outcomes import failure_note_key
from detectflow.pipeline.prepare import fit_to_input, prepare_image
from detectflow.pipeline.status import read_result
from detectflow.storage import Buckets

SAMPLE = "BloodImage_00011"


class RecordingBus:
    def __init__(self) -> None:
        self.published: list[tuple[str, Message]] = []
        self._lock = threading.Lock()

    def publish(self, topic: str, data: bytes, attributes: dict[str, str] | None = None) -> str:
        with self._lock:
            self.published.append((topic, Message(data=data, attributes=attributes or {})))
            return str(len(self.published))

    def on(self, topic: str) -> list[Message]:
        return [m for t, m in self.published if t == topic]


@pytest.fixture
def buckets(tmp_path: Path, model_bundle: Path) -> Buckets:
    b = Buckets.local(tmp_path / "data")
    publish_bundle(b.models, model_bundle)
    return b


@pytest.fixture
def bus() -> RecordingBus:
    return RecordingBus()


@pytest.fixture
def handlers(buckets: Buckets, bus: RecordingBus, model_bundle: Path,
             tmp_path: Path) -> PipelineHandlers:
    name = Detector.load(model_bundle).manifest.name
    registry = ModelRegistry(buckets.models, name, tmp_path / "cache", check_seconds=0)
    return PipelineHandlers(buckets, bus, registry, "prepared", "results",
                            ImageLimits(max_bytes=5_000_000))


def upload(buckets: Buckets, data: bytes, filename: str = "cells.jpg") -> StorageObject:
    image_id = new_image_id()
    info = buckets.uploads.put(upload_key(image_id, filename), data, "image/jpeg")
    return StorageObject(bucket=buckets.uploads.bucket, name=info.key,
                         generation=info.generation, content_type="image/jpeg", size=info.size)


def as_message(obj: StorageObject) -> Message:
    data, attributes = storage_notification(obj)
    return Message(data=data, attributes=attributes)


def run_both_stages(handlers: PipelineHandlers, bus: RecordingBus, obj: StorageObject) -> str:
    assert handlers.preprocess_message(as_message(obj)) == "prepared"
    return handlers.infer_message(bus.on("prepared")[-1])


def ground_truth(samples_dir: Path, stem: str) -> list[tuple[str, tuple[float, ...]]]:
    root = ET.parse(samples_dir / "Annotations" / f"{stem}.xml").getroot()
    boxes = []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        assert bb is not None
        boxes.append((str(obj.findtext("name")), tuple(
            float(bb.findtext(k) or 0) for k in ("xmin", "ymin", "xmax", "ymax"))))
    return boxes


def test_a_score_threshold_setting_overrides_the_manifests(
        buckets: Buckets, bus: RecordingBus, model_bundle: Path, samples_dir: Path,
        tmp_path: Path) -> None:
    """The same image with the manifest's threshold and with a stricter one set for the
    pipeline: the stricter run keeps exactly the detections that reach it."""
    data = (samples_dir / "JPEGImages" / f"{SAMPLE}.jpg").read_bytes()
    manifest = Detector.load(model_bundle).manifest
    strict = min(0.95, manifest.decoding.score_threshold + 0.3)
    scores = {}
    for name, threshold in (("manifest", None), ("setting", strict)):
        registry = ModelRegistry(buckets.models, manifest.name, tmp_path / name, check_seconds=0)
        handlers = PipelineHandlers(buckets, bus, registry, "prepared", "results",
                                    DEFAULT_LIMITS, score_threshold=threshold)
        obj = upload(buckets, data)
        assert run_both_stages(handlers, bus, obj) == "done"
        record = read_result(buckets, image_id_for_upload(obj.name, obj.generation))
        assert record is not None
        scores[name] = sorted(d.score for d in record.detections)
    assert min(scores["manifest"]) >= manifest.decoding.score_threshold
    assert any(s < strict for s in scores["manifest"]), "nothing between the two thresholds"
    assert scores["setting"] == [s for s in scores["manifest"] if s >= strict]


def test_upload_to_result_with_correct_boxes(handlers: PipelineHandlers, bus: RecordingBus,
                                             buckets: Buckets, model_bundle: Path,
                                             samples_dir: Path) -> None:
    data = (samples_dir / "JPEGImages" / f"{SAMPLE}.jpg").read_bytes()
    obj = upload(buckets, data)
    assert run_both_stages(handlers, bus, obj) == "done"
    image_id = image_id_for_upload(obj.name, obj.generation)
    status, record = image_status(buckets, image_id)
    assert status == "done" and record is not None
    assert record.image is not None and (record.image.width, record.image.height) == (640, 480)
    assert record.model is not None and record.source.filename == "cells.jpg"
    for stage in ("decode_ms", "resize_ms", "inference_ms", "postprocess_ms"):
        assert record.timings_ms[stage] >= 0
    assert_matches(record.detections, Detector.load(model_bundle).detect(data))
    # And against the annotations: the big white cell(s) of this test image are found.
    truth = [box for label, box in ground_truth(samples_dir, SAMPLE) if label == "WBC"]
    found = [d for d in record.detections if d.label == "WBC" and d.score >= 0.3]
    for box in truth:
        assert max(iou(box, d.box_xyxy) for d in found) >= 0.5
    # The notice went out and the work object is gone.
    assert [m.attributes["image_id"] for m in bus.on("results")] == [image_id]
    assert buckets.work.stat(work_key(image_id)) is None


def test_status_moves_queued_processing_done(handlers: PipelineHandlers, bus: RecordingBus,
                                             buckets: Buckets, samples_dir: Path) -> None:
    obj = upload(buckets, (samples_dir / "JPEGImages" / f"{SAMPLE}.jpg").read_bytes())
    image_id = image_id_for_upload(obj.name, obj.generation)
    assert image_status(buckets, image_id) == ("queued", None)
    handlers.preprocess_message(as_message(obj))
    assert image_status(buckets, image_id) == ("processing", None)
    handlers.infer_message(bus.on("prepared")[-1])
    assert image_status(buckets, image_id)[0] == "done"
    assert image_status(buckets, new_image_id()) == ("not_found", None)
    with pytest.raises(ValueError):
        image_status(buckets, "../../etc/passwd")


def test_duplicate_deliveries_write_one_result(handlers: PipelineHandlers, bus: RecordingBus,
                                               buckets: Buckets, samples_dir: Path) -> None:
    obj = upload(buckets, (samples_dir / "JPEGImages" / f"{SAMPLE}.jpg").read_bytes())
    image_id = image_id_for_upload(obj.name, obj.generation)
    assert handlers.preprocess_message(as_message(obj)) == "prepared"
    assert handlers.preprocess_message(as_message(obj)) == "prepared"  # no result yet: redo
    notices = bus.on("prepared")
    assert len(notices) == 2
    # Both notices race through infer on four threads: exactly one writes the result.
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def deliver(message: Message) -> None:
        barrier.wait()
        outcomes.append(handlers.infer_message(message))

    threads = [threading.Thread(target=deliver, args=(m,)) for m in notices * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["done", "duplicate", "duplicate", "duplicate"]
    before = buckets.results.stat(result_key(image_id))
    assert handlers.preprocess_message(as_message(obj)) == "duplicate"  # a late redelivery
    assert buckets.results.stat(result_key(image_id)) == before  # never rewritten
    assert len(bus.on("results")) == 1


def test_bad_image_gets_an_error_record_at_once(handlers: PipelineHandlers, bus: RecordingBus,
                                                buckets: Buckets) -> None:
    obj = upload(buckets, b"this is a text file with a .jpg name", "notes.jpg")
    assert handlers.preprocess_message(as_message(obj)) == "failed"
    status, record = image_status(buckets, image_id_for_upload(obj.name, obj.generation))
    assert status == "failed" and record is not None and record.error is not None
    assert record.error.code == "not_an_image"
    assert "not an image" in record.error.message
    assert bus.on("prepared") == []


def test_oversized_upload_is_refused_without_download(handlers: PipelineHandlers,
                                                      buckets: Buckets) -> None:
    obj = upload(buckets, b"\xff\xd8" + b"\0" * 100)
    huge = StorageObject(bucket=obj.bucket, name=obj.name, generation=obj.generation,
                         size=50_000_000)
    assert handlers.preprocessor.handle(huge) == "failed"
    record = read_result(buckets, image_id_for_upload(obj.name, obj.generation))
    assert record is not None and record.error is not None
    assert record.error.code == "too_large"


def test_unexpected_error_retries_then_dead_letter_records_why(
        handlers: PipelineHandlers, bus: RecordingBus, buckets: Buckets,
        samples_dir: Path) -> None:
    obj = upload(buckets, (samples_dir / "JPEGImages" / f"{SAMPLE}.jpg").read_bytes())
    image_id = image_id_for_upload(obj.name, obj.generation)
    handlers.preprocess_message(as_message(obj))
    buckets.work.put(work_key(image_id), b"garbage, not an npz")  # poison
    notice = bus.on("prepared")[-1]
    for _ in range(3):
        with pytest.raises(ValueError, match="not a prepared image"):
            handlers.infer_message(notice)
    assert image_status(buckets, image_id)[0] == "processing"
    assert buckets.work.stat(failure_note_key(image_id)) is not None
    dead = Message(data=notice.data, attributes={**notice.attributes,
                                                 DEAD_LETTER_DELIVERY_COUNT: "5"})
    assert handlers.dead_letter_message(dead) == "failed"
    status, record = image_status(buckets, image_id)
    assert status == "failed" and record is not None and record.error is not None
    assert record.error.code == "processing_failed"
    assert "5 times in the infer stage" in record.error.message
    assert "not a prepared image" in record.error.message
    assert buckets.work.stat(failure_note_key(image_id)) is None  # tidied
    assert handlers.dead_letter_message(dead) == "duplicate"


def test_dead_lettered_upload_event_gets_an_error_record(handlers: PipelineHandlers,
                                                         buckets: Buckets) -> None:
    obj = upload(buckets, b"irrelevant")
    assert handlers.dead_letter_message(as_message(obj)) == "failed"
    record = read_result(buckets, image_id_for_upload(obj.name, obj.generation))
    assert record is not None and record.error is not None
    assert "preprocess stage" in record.error.message


def test_missing_work_object_is_prepared_again(handlers: PipelineHandlers, bus: RecordingBus,
                                               buckets: Buckets, samples_dir: Path) -> None:
    obj = upload(buckets, (samples_dir / "JPEGImages" / f"{SAMPLE}.jpg").read_bytes())
    handlers.preprocess_message(as_message(obj))
    notice = PreparedNotice.from_message(bus.on("prepared")[-1])
    buckets.work.delete(notice.work_key)  # e.g. removed by a lifecycle rule
    assert handlers.inferrer.handle(notice) == "done"


def test_upload_deleted_before_processing(handlers: PipelineHandlers, buckets: Buckets) -> None:
    obj = upload(buckets, b"whatever")
    buckets.uploads.delete(obj.name)
    assert handlers.preprocess_message(as_message(obj)) == "failed"
    record = read_result(buckets, image_id_for_upload(obj.name, obj.generation))
    assert record is not None and record.error is not None
    assert record.error.code == "upload_missing"


def test_events_that_are_not_ours_are_acknowledged(handlers: PipelineHandlers,
                                                   buckets: Buckets) -> None:
    other = StorageObject(bucket="someone-elses-bucket", name="x.jpg", generation="1")
    assert handlers.preprocess_message(as_message(other)) == "ignored"
    assert handlers.preprocess_message(Message(data=b"{not json")) == "ignored"
    assert handlers.infer_message(Message(data=b'{"hello": 1}')) == "ignored"
    assert list(buckets.results.list()) == []


def test_without_a_model_preprocess_raises_for_retry(buckets: Buckets, bus: RecordingBus,
                                                     tmp_path: Path) -> None:
    registry = ModelRegistry(buckets.models, "no-such-model", tmp_path / "c", check_seconds=0)
    handlers = PipelineHandlers(buckets, bus, registry, "prepared", "results", DEFAULT_LIMITS)
    obj = upload(buckets, b"\xff\xd8")
    with pytest.raises(ModelNotFound):
        handlers.preprocess_message(as_message(obj))
    assert list(buckets.results.list()) == []  # nothing recorded: it will be retried


def test_fit_to_input_when_the_model_changed_between_stages(samples_dir: Path) -> None:
    data = (samples_dir / "JPEGImages" / f"{SAMPLE}.jpg").read_bytes()
    small = prepare_image(data, (256, 256), DEFAULT_LIMITS)
    direct = prepare_image(data, (320, 320), DEFAULT_LIMITS)
    pixels, placement = fit_to_input(small.pixels, small.placement, (320, 320))
    assert placement == direct.placement
    content = (slice(0, 240), slice(0, 320))
    diff = np.abs(pixels[content].astype(int) - direct.pixels[content].astype(int))
    assert diff.mean() < 12  # same picture, resampled twice
    assert (pixels[240:] == 114).all()  # padding stays padding
