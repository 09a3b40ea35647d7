"""trainer/export.py's evaluation steps on the committed bundle: the serving threshold comes
from the validation split only, and the bundle gets the diagnosis files `evaluate` writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detectflow.datasets import load_dataset
from detectflow.evaluation.bundle import run_detector
from detectflow.evaluation.thresholds import calibrate
from detectflow.model import Detector, Manifest

pytestmark = pytest.mark.tensorflow  # trainer.export imports TensorFlow


def test_export_calibrates_on_validation_and_writes_the_diagnosis(
    bccd_bundle: Path, samples_dir: Path, tmp_path: Path
) -> None:
    from trainer.export import calibrate_threshold, write_plots

    detector = Detector.load(bccd_bundle)
    items = load_dataset(samples_dir, classes=detector.classes).split("test")
    splits = {"val": items[:2], "test": items[2:]}
    runs = {name: run_detector(detector, split, progress=False) for name, split in splits.items()}
    manifest = Manifest.read(bccd_bundle)
    manifest.metrics.pop("calibration", None)
    manifest.decoding.score_threshold = 0.3

    calibrate_threshold(manifest, runs["val"], len(splits["val"]))
    write_plots(manifest, tmp_path, tmp_path / "run", splits, runs)

    on_val = calibrate(runs["val"].report(detector.classes))
    on_test = calibrate(runs["test"].report(detector.classes))
    assert on_val is not None and on_test is not None
    assert on_val.score_threshold != on_test.score_threshold  # so the check below can tell
    assert manifest.decoding.score_threshold == round(on_val.score_threshold, 3)
    calibration = manifest.metrics["calibration"]
    assert (calibration["split"], calibration["n_images"]) == ("val", 2)
    assert set(calibration["per_class"]) == set(detector.classes)
    assert manifest.plots == ["pr_curves.png", "val_pr_curves.png", "val_f1_curves.png",
                              "val_confusion_matrix.png", "val_predictions.png"]
    for name in [*manifest.plots, "val_confusion_matrix.json"]:
        assert (tmp_path / name).stat().st_size > 0
    confusion = json.loads((tmp_path / "val_confusion_matrix.json").read_text())
    assert confusion["split"] == "val"
    assert confusion["score_threshold"] == manifest.decoding.score_threshold
    assert manifest.metrics["evaluation"]["confusion_matrix"]["matrix"] == confusion["matrix"]
