"""`detectflow evaluate` / `detectflow predict` end to end, and `evaluate_bundle`'s bookkeeping.

The end-to-end tests run the real CLI in a subprocess (stdout must hold nothing but the JSON)
on the committed BCCD bundle and the four committed BCCD test-split sample images; the ones
that reproduce the bundle's manifest need the whole BCCD dataset (`BCCD_DATA`) and say so
when they skip.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.paths import REPO_ROOT
from support.synthetic import voc_to_coco, voc_to_yolo

from detectflow.datasets import Annotation, load_dataset
from detectflow.detection import Detection
from detectflow.evaluation.bundle import evaluate_bundle, run_detector
from detectflow.evaluation.metrics import iou_matrix
from detectflow.imaging import ImageError
from detectflow.model import Detector
from detectflow.model.detector import Timings

BCCD_DATA = REPO_ROOT.parent / "shared" / "data" / "bccd"  # the full dataset, outside the repo


def _bccd_data() -> Path:
    if not (BCCD_DATA / "Annotations").is_dir():
        pytest.skip(f"the full BCCD dataset is not at {BCCD_DATA}")
    return BCCD_DATA


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
    dataset = load_dataset(voc_root)
    items = dataset.split("all")

    report = evaluate_bundle(EchoDetector(items, dataset.classes, set()), items, progress=False)

    assert report.map50 == pytest.approx(1.0) and report.map50_95 == pytest.approx(1.0)
    assert report.n_images == 10


def test_an_unreadable_image_counts_as_no_detections(voc_root: Path) -> None:
    dataset = load_dataset(voc_root)
    items = dataset.split("all")
    detector = EchoDetector(items, dataset.classes, {"img_00004"})

    run = run_detector(detector, items, progress=False)
    report = evaluate_bundle(detector, items, progress=False)

    assert run.failed == ["img_00004"]
    assert len(run.predictions) == 10 and len(run.inference_ms) == 9
    assert report.recall is not None and report.recall < 1.0
    assert run.median_ms()["inference"] == 1.0


def test_class_ids_beyond_the_model_classes_are_refused(voc_root: Path) -> None:
    dataset = load_dataset(voc_root)
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
    assert report["data_format"] == "voc" and report["split"] == "test"
    assert sum(v["n_instances"] for v in report["by_size"].values()) == 70
    assert 0.0 < report["calibration"]["score_threshold"] < 1.0
    assert report["serving_threshold"] == manifest["decoding"]["score_threshold"]
    matrix = np.array(report["confusion_matrix"]["matrix"])
    assert report["confusion_matrix"]["labels"] == [*manifest["classes"], "background"]
    # every non-difficult box is either matched (columns of the classes) or missed
    assert matrix[:, :3].sum() == 70
    assert {Path(p).name for p in report["plots"]} == {
        "pr_curves.png", "f1_curves.png", "confusion_matrix.png", "confusion_matrix.json",
        "predictions.png"}
    for name in ("pr_curves.png", "f1_curves.png", "confusion_matrix.png", "predictions.png"):
        with Image.open(tmp_path / name) as plot:
            assert plot.format == "PNG"
    assert json.loads((tmp_path / "confusion_matrix.json").read_text())["matrix"] == (
        matrix.tolist())


def test_evaluate_reads_coco_and_yolo_to_the_same_map_as_voc(
    bccd_bundle: Path, samples_dir: Path, tmp_path: Path
) -> None:
    reports = {}
    for name, path in (("voc", samples_dir), ("coco", voc_to_coco(samples_dir, tmp_path / "c")),
                       ("yolo", voc_to_yolo(samples_dir, tmp_path / "y"))):
        result = _cli("evaluate", "--model", bccd_bundle, "--data", path, "--json")
        assert result.returncode == 0, result.stderr
        reports[name] = json.loads(result.stdout)

    assert [r["data_format"] for r in reports.values()] == ["voc", "coco", "yolo"]
    for name in ("coco", "yolo"):
        assert reports[name]["map50"] == reports["voc"]["map50"]
        assert reports[name]["map50_95"] == pytest.approx(reports["voc"]["map50_95"], abs=1e-4)
        assert reports[name]["per_class"]["RBC"]["n_instances"] == 56


def test_export_and_evaluate_score_a_bundle_the_same_way(
    bccd_bundle: Path, samples_dir: Path
) -> None:
    # trainer/export.py scores each export with evaluate_bundle and its default cut-off
    detector = Detector.load(bccd_bundle)
    items = load_dataset(samples_dir, classes=detector.classes).split("test")
    as_export = evaluate_bundle(detector, items, progress=False).to_dict()

    result = _cli("evaluate", "--model", bccd_bundle, "--data", samples_dir, "--json")

    report = json.loads(result.stdout)
    assert (report["map50"], report["map50_95"]) == (as_export["map50"], as_export["map50_95"])


def test_the_manifest_map_is_what_evaluate_reports_on_the_test_split(bccd_bundle: Path) -> None:
    data = _bccd_data()
    manifest = json.loads((bccd_bundle / "manifest.json").read_text())

    result = _cli("evaluate", "--model", bccd_bundle, "--data", data, "--split", "test", "--json")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    shipped = manifest["exports"]["default"]
    assert (report["map50"], report["map50_95"]) == (shipped["map50"], shipped["map50_95"])
    assert {k: v["ap50"] for k, v in report["per_class"].items()} == shipped["per_class_ap50"]


def test_the_shipped_serving_threshold_is_reproduced_by_calibrate(
    bccd_bundle: Path, tmp_path: Path
) -> None:
    data = _bccd_data()
    manifest = json.loads((bccd_bundle / "manifest.json").read_text())

    result = _cli("evaluate", "--model", bccd_bundle, "--data", data, "--calibrate", "--json")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["split"] == "val" and report["n_images"] == manifest["data"]["val_images"]
    # the very validation images export scored (its figures for the shipped export)
    at_export = manifest["metrics"]["exports"][manifest["export"]]["val"]
    assert (report["map50"], report["map50_95"]) == (at_export["map50"], at_export["map50_95"])
    calibration = manifest["metrics"]["calibration"]
    assert calibration["split"] == "val"
    assert report["calibration"]["score_threshold"] == calibration["score_threshold"]
    assert manifest["decoding"]["score_threshold"] == calibration["score_threshold"]
    assert report["calibration"]["per_class"] == calibration["per_class"]


def test_calibrate_writes_the_threshold_predict_then_uses(
    bccd_bundle: Path, samples_dir: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(bccd_bundle, bundle)
    data = tmp_path / "samples"
    shutil.copytree(samples_dir, data)
    (data / "ImageSets" / "Main" / "test.txt").rename(data / "ImageSets" / "Main" / "val.txt")

    result = _cli("evaluate", "--model", bundle, "--data", data, "--calibrate", "--split", "val",
                  "--write-manifest", "--json")

    assert result.returncode == 0, result.stderr
    threshold = json.loads(result.stdout)["calibration"]["score_threshold"]
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["decoding"]["score_threshold"] == threshold
    assert manifest["metrics"]["calibration"]["n_images"] == 4
    image = data / "JPEGImages" / "BloodImage_00031.jpg"
    served = json.loads(_cli("predict", "--model", bundle, image, "--json").stdout)[0]
    everything = json.loads(_cli("predict", "--model", bundle, image, "--json",
                                 "--score-threshold", "0.01").stdout)[0]
    scores = [d["score"] for d in everything["detections"]]
    assert len(served["detections"]) == sum(s >= threshold for s in scores)
    assert 0 < len(served["detections"]) < len(scores)


@pytest.mark.parametrize("args", [
    ["--write-manifest"],  # without --calibrate
    ["--calibrate", "--split", "test"],
    ["--calibrate", "--split", "all"],  # holds the test images
    ["--calibrate"],  # the samples are not the data the bundle was validated on
])
def test_calibrate_refuses_what_would_bias_the_threshold(
    args: list[str], bccd_bundle: Path, samples_dir: Path
) -> None:
    result = _cli("evaluate", "--model", bccd_bundle, "--data", samples_dir, *args)

    assert result.returncode == 2 and result.stdout == ""
    assert "error:" in result.stderr and "Traceback" not in result.stderr


def test_evaluate_prints_a_table_by_default(bccd_bundle: Path, samples_dir: Path) -> None:
    result = _cli("evaluate", "--model", bccd_bundle, "--data", samples_dir)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["Class", "Images", "Instances", "P", "R", "mAP50", "mAP50-95"]
    assert lines[1].split()[:3] == ["all", "4", "70"]
    assert {line.split()[0] for line in lines[2:5]} == {"RBC", "WBC", "Platelets"}
    assert lines[5].startswith("mAP50-95 by object size")
    assert lines[6].startswith("F1-optimal score threshold on test:")
    assert any(line.startswith("Confusion matrix at score >=") for line in lines)
    assert lines[-1].startswith("Speed:")


def test_predict_json_finds_the_white_cells_and_reports_bad_files(
    bccd_bundle: Path, samples_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "notes.jpg").write_text("not an image")
    dataset = load_dataset(samples_dir)

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


@pytest.mark.parametrize("label_format", ["voc", "coco", "yolo"])
def test_predict_save_labels_reads_back_as_the_predictions(
    label_format: str, bccd_bundle: Path, samples_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "labels"

    result = _cli("predict", "--model", bccd_bundle, samples_dir / "JPEGImages", "--json",
                  "--save-labels", out, "--format", label_format)

    assert result.returncode == 0, result.stderr
    predicted = {Path(e["image"]).stem: e["detections"] for e in json.loads(result.stdout)}
    classes = Detector.load(bccd_bundle).classes
    dataset = load_dataset(out, classes=classes)
    assert dataset.format == label_format and dataset.issues == []
    read = {a.image_id: a for a in dataset.split("all")}
    assert set(read) == set(predicted)
    # VOC keeps whole pixels; COCO two decimals; YOLO six decimals of the 640 px side
    tolerance = {"voc": 0.5, "coco": 0.01, "yolo": 0.01}[label_format]
    assert sum(len(d) for d in predicted.values()) > 40  # cells found in every image
    for stem, detections in predicted.items():
        assert len(detections) >= 5
        np.testing.assert_allclose(read[stem].boxes_xyxy, [d["box"] for d in detections],
                                   atol=tolerance)
        assert read[stem].class_ids.tolist() == [d["class_id"] for d in detections]
