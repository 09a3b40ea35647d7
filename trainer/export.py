"""A trained run -> a model bundle: every TFLite export, evaluated, plus manifest and plots.

Exports (each evaluated with the LiteRT runtime, the same path that serves it):
  float32   plain conversion
  float16   float16 weights
  int8      post-training full-integer quantization; representative data = train images
  qat       quantization-aware fine-tuning with tfmot (tf_keras, in a subprocess) -> int8
The bundle's `model.tflite` is the integer export with the best validation score (never test).
Its serving threshold (`decoding.score_threshold`) is the F1-optimal score on the validation
split (`detectflow.evaluation.thresholds`), with per-class thresholds in
`metrics.calibration`. Plots: `pr_curves.png` on test (or val), and the validation split's
F1 curves, confusion matrix (PNG + JSON) and a grid of its images with the most errors
(`val_*`), the files `detectflow evaluate --plots` writes.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from detectflow.datasets import Annotation, load_dataset, validation_items
from detectflow.evaluation.bundle import DetectorRun, run_detector
from detectflow.evaluation.diagnosis import diagnose, write_files
from detectflow.evaluation.plots import plot_pr_curves
from detectflow.evaluation.thresholds import calibrate
from detectflow.model import Detector, Manifest
from detectflow.model.manifest import ExportMetrics, InputSpec
from trainer.batches import normalize
from trainer.config import TrainConfig
from trainer.data import TrainingData, load_training_data
from trainer.qat import WEIGHTS_FILE
from trainer.tflite import convert, export_saved_model, output_positions
from trainer.train import decoding_spec, fitness
from trainer.weights import WEIGHTS_NPZ, save_weights

log = logging.getLogger(__name__)

EXPORTS = ("float32", "float16", "int8", "qat")
FILE_NAMES = {
    "float32": "model_float32.tflite",
    "float16": "model_float16.tflite",
    "int8": "model_int8_ptq.tflite",
    "qat": "model_int8_qat.tflite",
}
INTEGER_EXPORTS = ("int8", "qat")
LATENCY_RUNS = 30


def load_float_model(run_dir: Path, config: TrainConfig, num_classes: int) -> Any:
    from trainer.model import build_detector

    shape = (config.input_height, config.input_width, 3)
    model = build_detector(config.model_config(num_classes), input_shape=shape)
    model.load_weights(run_dir / "best.weights.h5")
    return model


def representative_data(data: TrainingData, count: int) -> Any:
    picks = np.random.default_rng(0).permutation(len(data.train))[:count]

    def generate() -> Iterator[list[npt.NDArray[np.float32]]]:
        for i in picks:
            yield [normalize(data.train.images[i])[None]]

    return generate


def run_qat(run_dir: Path, out: Path, num_classes: int, config: TrainConfig, epochs: int) -> bytes:
    cmd = [sys.executable, "-m", "trainer.qat", "--run", str(run_dir), "--out", str(out),
           "--num-classes", str(num_classes),
           "--input-size", str(config.input_width), str(config.input_height),
           "--epochs", str(epochs)]
    log.info("quantization-aware training in a tf_keras subprocess", extra={"epochs": epochs})
    # Its progress goes to stderr: stdout belongs to the command's JSON summary.
    subprocess.run(cmd, check=True, env={**os.environ, "TF_USE_LEGACY_KERAS": "1"},
                   stdout=_stderr_fd())
    return out.read_bytes()


def _stderr_fd() -> int | None:
    try:
        return sys.__stderr__.fileno() if sys.__stderr__ else None
    except (OSError, ValueError):
        return None


def measure_latency(detector: Detector, pixels: npt.NDArray[np.uint8]) -> float:
    """Median ms of the interpreter call alone (decode and pre/post-processing excluded)."""
    detector.infer(pixels)  # warm-up
    times = [detector.infer(pixels)[2] for _ in range(LATENCY_RUNS)]
    return float(np.median(times))


def eval_splits(config: TrainConfig, classes: list[str]) -> dict[str, list[Annotation]]:
    """Validation (as carved for training) and test (reported, never used to choose)."""
    dataset = load_dataset(config.data, classes=classes)
    splits = {"val": validation_items(dataset, config.train_split, config.val_split,
                                      config.val_fraction)}
    test = dataset.split("test")
    if test:
        splits["test"] = test
    return splits


def base_manifest(config: TrainConfig, data: TrainingData, name: str, version: str) -> Manifest:
    return Manifest(
        name=name,
        version=version,
        classes=data.classes,
        input=InputSpec(width=config.input_width, height=config.input_height, dtype="uint8"),
        decoding=decoding_spec(config.stride),
        data=data.summary(),
        training=config.to_dict(),
    )


def export_run(
    run_dir: Path,
    bundle_dir: Path | None = None,
    formats: tuple[str, ...] = EXPORTS,
    name: str | None = None,
    version: str | None = None,
    qat_epochs: int = 8,
    representative_count: int = 100,
    slim: bool = False,
) -> Path:
    config = TrainConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
    data = load_training_data(config, run_dir)
    model = load_float_model(run_dir, config, len(data.classes))
    bundle = bundle_dir or run_dir / "bundle"
    bundle.mkdir(parents=True, exist_ok=True)
    version = version or datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    manifest = base_manifest(config, data, name or config.name, version)
    state_file = run_dir / "state.json"
    if state_file.is_file():
        state = json.loads(state_file.read_text())
        manifest.metrics["training_val"] = state["best_metrics"]
        manifest.metrics["training_run"] = {
            "minutes": round(state["minutes"], 2), "epochs": state["epochs_done"],
            "best_epoch": state["best_epoch"],
        }
    splits = eval_splits(config, data.classes)
    sample = normalize(data.val.images[0])
    outputs = model(sample[None], training=False)
    reference = {k: np.asarray(v)[0] for k, v in outputs.items()}
    reports: dict[str, dict[str, Any]] = {}
    runs: dict[str, dict[str, DetectorRun]] = {}
    saved_model = export_saved_model(model, config.input_height, config.input_width,
                                     Path(tempfile.mkdtemp(prefix="detectflow-export-")))
    for fmt in formats:
        path = bundle / FILE_NAMES[fmt]
        started = time.monotonic()
        if fmt == "qat":
            save_weights(model, run_dir / WEIGHTS_FILE)
            flatbuffer = run_qat(run_dir, path, len(data.classes), config, qat_epochs)
        else:
            rep = representative_data(data, representative_count) if fmt == "int8" else None
            flatbuffer = convert(saved_model, fmt, rep)
            path.write_bytes(flatbuffer)
        positions = output_positions(flatbuffer, sample, reference)
        manifest.exports[fmt] = ExportMetrics(file=path.name, size_bytes=len(flatbuffer),
                                              outputs=positions)
        reports[fmt], runs[fmt] = evaluate_export(manifest, bundle, fmt, splits, data)
        log.info("export done", extra={"format": fmt, "bytes": len(flatbuffer),
                                       "seconds": round(time.monotonic() - started, 1),
                                       **{k: v for k, v in reports[fmt].items() if k != "test"}})
    shutil.rmtree(saved_model, ignore_errors=True)
    # Float weights (float16) so a later run can start from this bundle (train --init-from).
    save_weights(model, bundle / WEIGHTS_NPZ, dtype="float16")
    choose_default(manifest, bundle)
    default_runs = runs[manifest.export]
    calibrate_threshold(manifest, default_runs["val"], len(splits["val"]))
    write_plots(manifest, bundle, run_dir, splits, default_runs)
    manifest.write(bundle)
    if slim:
        for fmt in formats:
            (bundle / FILE_NAMES[fmt]).unlink(missing_ok=True)
    return bundle


def evaluate_export(
    manifest: Manifest, bundle: Path, fmt: str, splits: dict[str, list[Annotation]],
    data: TrainingData,
) -> tuple[dict[str, Any], dict[str, DetectorRun]]:
    """Fill the export's metrics: val scores (for choosing), test scores (for reporting).

    Scored as `detectflow evaluate` scores a bundle (same code, same cut-off), so the
    manifest's figures are what `evaluate` reproduces. Returns the val summary and the runs.
    """
    export = manifest.exports[fmt]
    manifest.write(bundle)  # the Detector reads the manifest from the bundle folder
    detector = Detector.load(bundle, model_file=export.file)
    results: dict[str, Any] = {}
    runs: dict[str, DetectorRun] = {}
    for split, items in splits.items():
        runs[split] = run_detector(detector, items)
        results[split] = runs[split].report(detector.classes).to_dict()
    chosen = results.get("test", results["val"])
    export.map50 = chosen["map50"]
    export.map50_95 = chosen["map50_95"]
    export.per_class_ap50 = {k: v["ap50"] for k, v in chosen["per_class"].items()}
    export.latency_ms = measure_latency(detector, data.val.images[0])
    manifest.metrics.setdefault("exports", {})[fmt] = {
        split: {"map50": r["map50"], "map50_95": r["map50_95"]} for split, r in results.items()
    }
    manifest.metrics.setdefault("reports", {})[fmt] = results
    summary = {"val_map50": results["val"]["map50"], "val_map50_95": results["val"]["map50_95"]}
    return summary, runs


def choose_default(manifest: Manifest, bundle: Path) -> None:
    """model.tflite = the integer export with the best validation fitness."""
    scores = manifest.metrics.get("exports", {})
    candidates = [f for f in INTEGER_EXPORTS if f in manifest.exports] or list(manifest.exports)
    best = max(candidates, key=lambda f: fitness(scores[f]["val"]["map50"],
                                                  scores[f]["val"]["map50_95"]))
    shutil.copyfile(bundle / manifest.exports[best].file, bundle / "model.tflite")
    manifest.model_file = "model.tflite"
    manifest.export = best
    chosen = manifest.exports[best]
    manifest.exports["default"] = chosen.model_copy(update={"file": "model.tflite"})
    manifest.input.dtype = "uint8" if best in INTEGER_EXPORTS else "float32"
    manifest.decoding = manifest.decoding_for("model.tflite")
    log.info("bundle default model", extra={"export": best})


def calibrate_threshold(manifest: Manifest, val_run: DetectorRun, n_images: int) -> None:
    """Serve at the default export's F1-optimal score on the validation split (never test)."""
    calibration = calibrate(val_run.report(manifest.classes))
    if calibration is None:
        log.warning("nothing detected right on validation: serving threshold left at default",
                    extra={"score_threshold": manifest.decoding.score_threshold})
        return
    manifest.decoding.score_threshold = calibration.to_dict()["score_threshold"]
    manifest.metrics["calibration"] = {"split": "val", "n_images": n_images,
                                       "model_file": manifest.model_file,
                                       **calibration.to_dict()}
    log.info("serving threshold", extra={"score_threshold": manifest.decoding.score_threshold,
                                         "f1": round(calibration.overall.f1, 4)})


def write_plots(
    manifest: Manifest, bundle: Path, run_dir: Path, splits: dict[str, list[Annotation]],
    runs: dict[str, DetectorRun],
) -> None:
    """PR curves of the reported split; the validation split's diagnosis files (`val_*`)."""
    split = "test" if "test" in runs else "val"
    plot_pr_curves(runs[split].report(manifest.classes), bundle / "pr_curves.png")
    diagnosis = diagnose(runs["val"], manifest.classes, manifest.decoding.score_threshold, "val")
    files = write_files(bundle, diagnosis, splits["val"], runs["val"], prefix="val_")
    manifest.plots = ["pr_curves.png"] + [p.name for p in files if p.suffix == ".png"]
    manifest.metrics["evaluation"] = {
        "split": "val",
        "confusion_matrix": diagnosis.confusion.to_dict(),
        "files": [p.name for p in files],
    }
    curves = run_dir / "training_curves.png"
    if curves.is_file():
        shutil.copyfile(curves, bundle / curves.name)
        manifest.plots.append(curves.name)
