"""`detectflow evaluate` / `detectflow predict` end to end, and `evaluate_bundle`'s bookkeeping.

The end-to-end tests run the real CLI in a subprocess (stdout must hold nothing but the JSON)
on the committed BCCD bundle and the four committed BCCD test-split sample images.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detectflow.datasets.voc import Annotation, load_voc
from detectflow.detection import Detection
from detectflow.evaluation.bundle import evaluate_bundle, run_detector
from detectflow.evaluation.metrics import iou_matrix
from detectflow.imaging import ImageError
from detectflow.model.detector import Timings


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "detectflow.cli", *map(str, args)],
        capture_output=True, text=True, timeout=300, check=False,
    )


# --- evaluate_bundle with a stand-in detector (no model needed) ------------------------------


class EchoDetector:
    """Returns each image's own ground truth (or fails on chosen images)."""

    def __init__(self, items: list[Annotation], classes: list[str], broken: set[str]) -> None:
        self.classes = classes
        self.last_timings = Timings(inference_ms=1.0)
        self._by_path = {a.image_path: a for a in items}
        self._broken = broken

    def detect(self, image: Path, score_threshold: float | None = None) -> list[Detection]:
        item = self._by_path[image]
        if item.image_id in self._broken:
            raise ImageError("corrupt", "damaged")
        return [
            Detection(self.classes[int(c)], int(c), 0.9, tuple(float(v) for v in b))  # type: ignore[arg-type]
            for b, c in zip(item.boxes_xyxy, item.class_ids, strict=True)
        ]


def test_evaluate_bundle_scores_perfect_detections_as_one(voc_root: Path) -> None:
    dataset = load_voc(voc_root)
    items = dataset.split("all")

    report = evaluate_bundle(EchoDetector(items, dataset.classes, set()), items, progress=False)

    assert report.map50 == pytest.approx(1.0) and report.map50_95 == pytest.approx(1.0)
    assert report.n_images == 10


def test_an_unreadable_image_counts_as_no_detections(voc_root: Path) -> None:
    dataset = load_voc(voc_root)
    items = dataset.split("all")
    detector = EchoDetector(items, dataset.classes, {"img_00004"})

    run = run_detector(detector, items, progress=False)
    report = evaluate_bundle(detector, items, progress=False)

    assert run.failed == ["img_00004"]
    assert len(run.predictions) == 10 and len(run.inference_ms) == 9
    assert report.recall is not None and report.recall < 1.0
    assert run.median_ms()["inference"] == 1.0


def test_class_ids_beyond_the_model_classes_are_refused(voc_root: Path) -> None:
    dataset = load_voc(voc_root)
    items = dataset.split("all")

    with pytest.raises(ValueError, match=r"classes=detector\.classes"):
        evaluate_bundle(EchoDetector(items, ["circle"], set()), items, progress=False)


# --- errors that need no model ----------------------------------------------------------------


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_a_folder_that_is_not_a_bundle_is_a_clear_error(command: str, tmp_path: Path,
                                                       samples_dir: Path) -> None:
    extra = ["--data", samples_dir] if command == "evaluate" else [samples_dir]

    result = _cli(command, "--model", tmp_path, *extra)

    assert result.returncode == 2
    assert "cannot load the model bundle" in result.stderr and "manifest.json" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


# --- end to end on the committed BCCD bundle ---------------------------------------------------


def test_evaluate_json_is_the_only_stdout_and_scores_the_samples(
    bccd_bundle: Path, samples_dir: Path, tmp_path: Path
) -> None:
    result = _cli("evaluate", "--model", bccd_bundle, "--data", samples_dir, "--split", "test",
                  "--json", "--plots", tmp_path)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # nothing else on stdout
    manifest = json.loads((bccd_bundle / "manifest.json").read_text())
    assert set(report["per_class"]) == set(manifest["classes"])
    assert report["n_images"] == 4 and report["n_instances"] == 70
    assert report["per_class"]["RBC"]["n_instances"] == 56
    # Unseen BCCD test images: a trained model finds most cells.
    assert 0.5 < report["map50"] <= 1.0
    assert 0.0 < report["map50_95"] < report["map50"]
    assert report["speed_ms"]["inference"] > 0
    with Image.open(tmp_path / "pr_curves.png") as plot:
        assert plot.format == "PNG"


def test_evaluate_prints_a_table_by_default(bccd_bundle: Path, samples_dir: Path) -> None:
    result = _cli("evaluate", "--model", bccd_bundle, "--data", samples_dir)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["Class", "Images", "Instances", "P", "R", "mAP50", "mAP50-95"]
    assert lines[1].split()[:3] == ["all", "4", "70"]
    assert {line.split()[0] for line in lines[2:5]} == {"RBC", "WBC", "Platelets"}
    assert lines[-1].startswith("Speed:")


def test_predict_json_finds_the_white_cells_and_reports_bad_files(
    bccd_bundle: Path, samples_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "notes.jpg").write_text("not an image")
    dataset = load_voc(samples_dir)

    result = _cli("predict", "--model", bccd_bundle, samples_dir / "JPEGImages",
                  tmp_path / "notes.jpg", tmp_path / "missing.png", "--json")

    assert result.returncode == 1  # some inputs failed, the others ran
    entries = json.loads(result.stdout)
    assert [Path(e["image"]).name for e in entries[:4]] == [
        f"{a.image_id}.jpg" for a in dataset.split("test")
    ]
    assert entries[4]["error"]["code"] == "not_an_image"
    assert entries[5]["error"]["code"] == "not_found"
    for entry, truth in zip(entries[:4], dataset.split("test"), strict=True):
        assert (entry["width"], entry["height"]) == (640, 480)
        boxes = np.array([d["box"] for d in entry["detections"]]).reshape(-1, 4)
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 640).all()
        wbc_truth = truth.boxes_xyxy[truth.class_ids == dataset.classes.index("WBC")]
        wbc_found = np.array([d["box"] for d in entry["detections"] if d["label"] == "WBC"])
        assert len(wbc_found), f"no WBC found in {entry['image']}"
        # every white cell of the image is found
        assert (iou_matrix(wbc_truth.astype(float), wbc_found).max(axis=1) > 0.5).all()


def test_predict_save_dir_writes_annotated_copies(
    bccd_bundle: Path, samples_dir: Path, tmp_path: Path
) -> None:
    source = samples_dir / "JPEGImages" / "BloodImage_00031.jpg"

    result = _cli("predict", "--model", bccd_bundle, source, "--save-dir", tmp_path / "out")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{source}: 640x480, ")
    with Image.open(tmp_path / "out" / "BloodImage_00031.jpg") as drawn, Image.open(source) as src:
        assert drawn.size == src.size
        difference = np.abs(np.asarray(drawn, np.int16) - np.asarray(src, np.int16))
        assert (difference.max(axis=2) > 60).mean() > 0.01  # boxes and labels drawn on it
