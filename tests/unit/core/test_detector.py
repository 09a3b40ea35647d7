"""The bundled model through `Detector` (LiteRT): input encoding, accuracy on the committed
samples, and per-thread timings."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from detectflow.boxes import pairwise_iou
from detectflow.datasets.voc import load_voc
from detectflow.model import Detector


def test_input_lookup_table_matches_normalize_then_quantize(bccd_bundle: Path) -> None:
    detector = Detector.load(bccd_bundle)
    pixels = np.random.default_rng(0).integers(0, 256, (384, 512, 3), dtype=np.uint8)
    prep = detector.manifest.preprocessing
    scale, zero_point = detector._input["quantization"]
    normalized = pixels.astype(np.float32) * np.float32(prep.scale) + np.float32(prep.offset)
    expected = np.clip(np.round(normalized / scale + zero_point), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(detector._to_input_tensor(pixels), expected[None])


def test_bundled_model_finds_the_annotated_cells(bccd_bundle: Path, samples_dir: Path) -> None:
    """On the 4 committed BCCD test images, at the served (calibrated) score threshold, the
    detections match the annotated cells (IoU >= 0.5, same class) with F1 >= 0.7, and every WBC
    is found: an accuracy check that needs no dataset. (The misses are mostly RBCs in clumps;
    the threshold is F1-optimal on validation, so it trades some recall for precision.)"""
    detector = Detector.load(bccd_bundle)
    items = load_voc(samples_dir, classes=detector.classes).split("test")
    found = total = detected = 0
    for item in items:
        detections = detector.detect(item.image_path)
        detected += len(detections)
        for box, class_id in zip(item.boxes_xyxy, item.class_ids, strict=True):
            same = [d for d in detections if d.class_id == class_id]
            if same:
                ious = pairwise_iou(box[None], np.array([d.box_xyxy for d in same], np.float32))
                found += int(ious.max() >= 0.5)
            elif detector.classes[class_id] == "WBC":
                raise AssertionError(f"WBC missed in {item.image_path.name}")
            total += 1
    recall, precision = found / total, found / max(detected, 1)
    assert total == 70 and recall >= 0.6
    assert 2 * precision * recall / (precision + recall) >= 0.7


def test_last_timings_belong_to_the_calling_thread(bccd_bundle: Path, samples_dir: Path) -> None:
    detector = Detector.load(bccd_bundle)
    image = next((samples_dir / "JPEGImages").glob("*.jpg"))
    seen: dict[str, float] = {}

    def work(name: str) -> None:
        detector.detect(image)
        seen[name] = detector.last_timings.inference_ms

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 3 and all(ms > 0 for ms in seen.values())
    assert detector.last_timings.inference_ms == 0.0  # this thread never called it
