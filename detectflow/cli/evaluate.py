"""`detectflow evaluate`: a model bundle's mAP on a dataset split, and what to act on."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from detectflow.datasets import Annotation, Dataset
    from detectflow.evaluation.bundle import DetectorRun
    from detectflow.evaluation.diagnosis import Diagnosis
    from detectflow.model import Detector

log = logging.getLogger(__name__)

HELP = "measure a model bundle's mAP on a dataset split (LiteRT, no TensorFlow)"
DESCRIPTION = """\
Run a model bundle on every image of a dataset split (Pascal VOC, COCO JSON or YOLO, found
from the files) and score it: VOC mAP@0.5 (all-point) and COCO mAP@[.5:.95] (pycocotools'
method), per class and by object size (COCO small/medium/large areas), precision and recall
at each class's F1-optimal score threshold, the F1-optimal threshold for all classes, and the
confusion matrix (with background) at the bundle's serving threshold. The model runs exactly
as it is served (LiteRT runtime, the bundle's preprocessing and decoding), and detections
are scored from the same cut-off as training and export use, so the figures match the
manifest's.

Class names in the data must match the model's (the report uses the model's order); boxes
of other classes are reported and left out. Annotation defects are reported on stderr and
never stop the run.

--calibrate re-evaluates the bundle on the validation split it was trained with (carved from
its training split as the trainer does, from the manifest's training settings; never the test
split) and reports the F1-optimal score threshold there; --write-manifest also stores it as
the bundle's serving threshold (decoding.score_threshold, the default of `predict` and `up`)
with per-class thresholds under metrics.calibration.

output:
  a table on stdout (class, images, instances, P, R, mAP50, mAP50-95), AP by size, the
  thresholds and the confusion matrix; or with --json only the JSON report on stdout: map50,
  map50_95, map50_coco, map75, precision, recall, by_size, per_class{name: {ap50, ap50_95,
  n_instances, precision, recall, best_threshold, by_size, ...}}, calibration,
  confusion_matrix, serving_threshold, speed_ms. Progress and logs go to stderr.
  --plots DIR writes pr_curves.png, f1_curves.png, confusion_matrix.png/.json and
  predictions.png (the images with the most errors, predictions against ground truth).

exit status: 0 evaluated, 2 the model or the data could not be used.

examples:
  detectflow evaluate --model models/bccd --data ../shared/data/bccd --split test
  detectflow evaluate --model models/bccd --data ../shared/data/bccd --json > report.json
  detectflow evaluate --model runs/bccd/bundle --model-file model_float32.tflite \\
      --data ../shared/data/bccd --plots runs/bccd/plots
  detectflow evaluate --model models/bccd --data ../shared/data/bccd --calibrate \\
      --write-manifest
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from detectflow.datasets.splits import SPLITS
    from detectflow.evaluation.metrics import EVAL_SCORE_THRESHOLD

    parser.add_argument("--model", required=True, type=Path, metavar="BUNDLE_DIR",
                        help="model bundle folder (with manifest.json)")
    parser.add_argument("--model-file", metavar="FILE",
                        help="another export in the bundle, e.g. model_float32.tflite "
                        "(default: the manifest's model_file)")
    parser.add_argument("--data", required=True, type=Path, metavar="PATH",
                        help="dataset: Pascal VOC folder, COCO folder or .json, YOLO folder "
                        "or data.yaml")
    parser.add_argument("--split", choices=SPLITS,
                        help="which images to score (default: test; with --calibrate, the "
                        "bundle's validation split)")
    parser.add_argument("--classes", nargs="+", metavar="NAME",
                        help="the data's names for the model's classes, in the model's order "
                        "(default: the model's class names)")
    parser.add_argument("--score-threshold", type=float, default=EVAL_SCORE_THRESHOLD,
                        help="keep detections from this score up; mAP needs the whole curve, "
                        "and training and export use the default too (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1,
                        help="LiteRT interpreter threads (default: %(default)s)")
    parser.add_argument("--plots", type=Path, metavar="DIR",
                        help="also write the plots and confusion_matrix.json into DIR")
    parser.add_argument("--calibrate", action="store_true",
                        help="find the F1-optimal serving threshold on the bundle's "
                        "validation split")
    parser.add_argument("--write-manifest", action="store_true",
                        help="with --calibrate: store the threshold in the bundle's "
                        "manifest.json")
    parser.add_argument("--json", action="store_true",
                        help="print only the JSON report on stdout")


class UsageError(Exception):
    """Something the user asked for cannot be done; the message says why."""


def _fail(message: str) -> int:
    sys.stderr.write(f"detectflow evaluate: error: {message}\n")
    return 2


def run(args: argparse.Namespace) -> int:
    from detectflow.datasets import DatasetError, format_issue_report, load_dataset
    from detectflow.model import Detector

    try:
        _check_flags(args)
        detector = Detector.load(args.model, model_file=args.model_file,
                                 num_threads=args.threads)
    except UsageError as err:
        return _fail(str(err))
    except (OSError, ValueError, RuntimeError) as err:  # missing file, bad manifest or model
        return _fail(f"cannot load the model bundle {args.model}: {err}")
    if args.write_manifest and detector.model_path.name != detector.manifest.model_file:
        return _fail(f"--write-manifest calibrates the served model "
                     f"({detector.manifest.model_file}); drop --model-file")
    classes = args.classes or detector.classes
    if len(classes) != len(detector.classes):
        return _fail(f"--classes names {len(classes)} classes; the model has "
                     f"{len(detector.classes)} ({', '.join(detector.classes)})")
    try:
        dataset = load_dataset(args.data, classes=classes)
        split, items = _split_items(args, dataset, detector)
    except (DatasetError, UsageError) as err:
        return _fail(str(err))
    if dataset.issues:
        log.warning("annotation issues (data fixed or skipped):\n%s",
                    format_issue_report(dataset.issues))
    return _evaluate(args, detector, dataset, split, items)


def _check_flags(args: argparse.Namespace) -> None:
    if args.write_manifest and not args.calibrate:
        raise UsageError("--write-manifest stores a calibration: add --calibrate")
    if args.calibrate and args.split == "test":
        raise UsageError("--calibrate never uses the test split (its figures would no longer "
                         "be an unbiased report); leave --split out to use the validation split")


def _split_items(
    args: argparse.Namespace, dataset: Dataset, detector: Detector
) -> tuple[str, list[Annotation]]:
    if args.calibrate and args.split is None:
        return "val", _training_validation(dataset, detector)
    split = args.split or "test"
    items = dataset.split(split)
    if not items:
        raise UsageError(f"split {split!r} of {args.data} has no images "
                         f"(splits from {dataset.split_source})")
    test_ids = {a.image_id for a in dataset.split("test")}
    if args.calibrate and any(a.image_id in test_ids for a in items):
        raise UsageError(f"split {split!r} holds test images; --calibrate never uses the test "
                         "split (its figures would no longer be an unbiased report)")
    return split, items


def _training_validation(dataset: Dataset, detector: Detector) -> list[Annotation]:
    """The validation images of the bundle's training run, chosen as export chose them."""
    from detectflow.datasets import validation_items

    training = detector.manifest.training
    items = validation_items(dataset, training.get("train_split") or "trainval",
                             training.get("val_split"), float(training.get("val_fraction", 0.15)))
    calibrated = detector.manifest.metrics.get("calibration") or {}
    expected = calibrated.get("n_images", detector.manifest.data.get("val_images"))
    if expected is not None and len(items) != expected:
        raise UsageError(
            f"the bundle was validated on {expected} images, but this data gives "
            f"{len(items)}: not the data it was trained on (or a different version). Name a "
            "split with --split to calibrate on it instead."
        )
    if not items:
        raise UsageError("the validation split is empty; name one with --split")
    return items


def _evaluate(
    args: argparse.Namespace, detector: Detector, dataset: Dataset, split: str,
    items: list[Annotation],
) -> int:
    from detectflow.evaluation.bundle import run_detector
    from detectflow.evaluation.diagnosis import diagnose, write_files
    from detectflow.evaluation.thresholds import calibrate

    classes = args.classes or detector.classes
    run_result = run_detector(detector, items, args.score_threshold)
    report = run_result.report(classes)
    serving = detector.decoding.score_threshold
    if args.calibrate:
        calibration = calibrate(report)
        if calibration is None:
            return _fail(f"no detection on the {split} split is right: nothing to calibrate")
        serving = calibration.score_threshold
        if args.write_manifest:
            _write_calibration(args, calibration.to_dict(), split, len(items))
    diagnosis = diagnose(run_result, classes, serving, split, report)
    plots = write_files(args.plots, diagnosis, items, run_result) if args.plots else []
    if args.json:
        sys.stdout.write(json.dumps(_payload(args, detector, dataset, split, run_result,
                                             diagnosis, plots), indent=2) + "\n")
    else:
        sys.stdout.write(_human_report(diagnosis, detector, run_result, plots, args.calibrate))
    return 0


def _write_calibration(
    args: argparse.Namespace, calibration: dict[str, Any], split: str, n_images: int
) -> None:
    from detectflow.model import Manifest

    manifest = Manifest.read(args.model)
    manifest.decoding.score_threshold = calibration["score_threshold"]
    manifest.metrics["calibration"] = {"split": split, "n_images": n_images,
                                       "model_file": manifest.model_file, **calibration}
    path = manifest.write(args.model)
    log.info("serving threshold written", extra={"manifest": str(path),
                                                 "score_threshold": calibration[
                                                     "score_threshold"]})


def _payload(
    args: argparse.Namespace, detector: Detector, dataset: Dataset, split: str,
    run_result: DetectorRun, diagnosis: Diagnosis, plots: list[Path],
) -> dict[str, Any]:
    from detectflow.datasets import issue_counts

    return {
        "model": str(args.model),
        "model_file": detector.model_path.name,
        "data": str(args.data),
        "data_format": dataset.format,
        "split": split,
        "score_threshold": args.score_threshold,
        "serving_threshold": diagnosis.serving_threshold,
        **diagnosis.report.to_dict(),
        **diagnosis.to_dict(),
        "speed_ms": run_result.median_ms(),
        "failed_images": run_result.failed,
        "annotation_issues": issue_counts(dataset.issues),
        "plots": [str(p) for p in plots],
    }


def _human_report(
    diagnosis: Diagnosis, detector: Detector, run_result: DetectorRun, plots: list[Path],
    calibrated: bool,
) -> str:
    report = diagnosis.report
    sizes = ", ".join(
        f"{size} {'-' if m.ap50_95 is None else f'{m.ap50_95:.3f}'} ({m.n_instances})"
        for size, m in report.by_size().items()
    )
    lines = [report.format_table(), f"mAP50-95 by object size (instances): {sizes}"]
    lines.append(_threshold_line(diagnosis, detector, calibrated))
    lines += ["", diagnosis.confusion.format_table(), ""]
    speed = run_result.median_ms()
    if speed:
        lines.append("Speed: " + ", ".join(f"{v:.1f} ms {k}" for k, v in speed.items())
                     + " per image (median)")
    if plots:
        lines.append(f"Plots: {', '.join(str(p) for p in plots)}")
    return "\n".join(lines) + "\n"


def _threshold_line(diagnosis: Diagnosis, detector: Detector, calibrated: bool) -> str:
    calibration = diagnosis.calibration
    if calibration is None:
        return "F1-optimal score threshold: none (no detection is right)"
    found = (f"F1-optimal score threshold on {diagnosis.split or 'this split'}: "
             f"{calibration.score_threshold:.3f} (P {calibration.overall.precision:.3f}, "
             f"R {calibration.overall.recall:.3f}, F1 {calibration.overall.f1:.3f})")
    if calibrated:
        return found + "; the confusion matrix below uses it"
    return found + f"; the bundle serves at {detector.decoding.score_threshold:.3f}"
