"""`detectflow evaluate`: mAP of a model bundle on a split of a Pascal VOC dataset."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "trainval", "test", "all")  # as detectflow.datasets.voc
HELP = "measure a model bundle's mAP on a VOC dataset split (LiteRT, no TensorFlow)"
DESCRIPTION = """\
Run a model bundle on every image of a dataset split and score it: VOC mAP@0.5 (all-point)
and COCO mAP@[.5:.95] (pycocotools' method), per class, with precision and recall at each
class's best-F1 score threshold. The model runs exactly as it is served (LiteRT runtime,
the bundle's preprocessing and decoding), so the numbers are the deployed model's.

Class names in the data must match the model's (the report uses the model's order); images
of other classes are reported and their boxes left out. Annotation defects are reported on
stderr and never stop the run.

output:
  a table on stdout (class, images, instances, P, R, mAP50, mAP50-95), or with --json only
  the JSON report on stdout: map50, map50_95, map50_coco, map75, precision, recall,
  per_class{name: {ap50, ap50_95, n_instances, precision, recall, best_threshold, ...}},
  speed_ms. Progress and logs go to stderr.

exit status: 0 evaluated, 2 the model or the data could not be used.

examples:
  detectflow evaluate --model models/bccd --data ../shared/data/bccd --split test
  detectflow evaluate --model models/bccd --data ../shared/data/bccd --json > report.json
  detectflow evaluate --model runs/bccd/bundle --model-file model_float32.tflite \\
      --data ../shared/data/bccd --plots runs/bccd/plots
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, type=Path, metavar="BUNDLE_DIR",
                        help="model bundle folder (with manifest.json)")
    parser.add_argument("--model-file", metavar="FILE",
                        help="another export in the bundle, e.g. model_float32.tflite "
                        "(default: the manifest's model_file)")
    parser.add_argument("--data", required=True, type=Path, metavar="DIR",
                        help="Pascal VOC dataset (Annotations/ + JPEGImages/, or annotations/ "
                        "+ images/)")
    parser.add_argument("--split", default="test", choices=SPLITS,
                        help="which images to score (default: %(default)s)")
    parser.add_argument("--classes", nargs="+", metavar="NAME",
                        help="the data's names for the model's classes, in the model's order "
                        "(default: the model's class names)")
    parser.add_argument("--score-threshold", type=float, default=0.001,
                        help="keep detections from this score up; mAP needs the whole curve, "
                        "so keep it low (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1,
                        help="LiteRT interpreter threads (default: %(default)s)")
    parser.add_argument("--plots", type=Path, metavar="DIR",
                        help="also write DIR/pr_curves.png (needs matplotlib)")
    parser.add_argument("--json", action="store_true",
                        help="print only the JSON report on stdout")


def _fail(message: str) -> int:
    sys.stderr.write(f"detectflow evaluate: error: {message}\n")
    return 2


def run(args: argparse.Namespace) -> int:
    from detectflow.datasets.voc import DatasetError, format_issue_report, issue_counts, load_voc
    from detectflow.evaluation.bundle import run_detector
    from detectflow.evaluation.metrics import evaluate_detections
    from detectflow.model import Detector

    try:
        detector = Detector.load(args.model, model_file=args.model_file,
                                 num_threads=args.threads)
    except (OSError, ValueError, RuntimeError) as err:  # missing file, bad manifest or model
        return _fail(f"cannot load the model bundle {args.model}: {err}")
    classes = args.classes or detector.classes
    if len(classes) != len(detector.classes):
        return _fail(f"--classes names {len(classes)} classes; the model has "
                     f"{len(detector.classes)} ({', '.join(detector.classes)})")
    try:
        dataset = load_voc(args.data, classes=classes)
    except DatasetError as err:
        return _fail(str(err))
    if dataset.issues:
        log.warning("annotation issues (data fixed or skipped):\n%s",
                    format_issue_report(dataset.issues))
    items = dataset.split(args.split)
    if not items:
        return _fail(f"split {args.split!r} of {args.data} has no images "
                     f"(splits from {dataset.split_source})")
    run_result = run_detector(detector, items, args.score_threshold)
    report = evaluate_detections(run_result.ground_truths, run_result.predictions, classes)
    plot = _write_plot(report, args.plots) if args.plots else None
    if args.json:
        payload: dict[str, Any] = {
            "model": str(args.model),
            "model_file": detector.model_path.name,
            "data": str(args.data),
            "split": args.split,
            "score_threshold": args.score_threshold,
            **report.to_dict(),
            "speed_ms": run_result.median_ms(),
            "failed_images": run_result.failed,
            "annotation_issues": issue_counts(dataset.issues),
            "plots": [str(plot)] if plot else [],
        }
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        sys.stdout.write(_human_report(report.format_table(), run_result.median_ms(), plot))
    return 0


def _write_plot(report: Any, folder: Path) -> Path | None:
    try:
        from detectflow.evaluation.plots import plot_pr_curves

        return plot_pr_curves(report, folder / "pr_curves.png")
    except ImportError:
        log.error("--plots needs matplotlib: pip install 'detectflow[train]'")
        return None


def _human_report(table: str, speed: dict[str, float], plot: Path | None) -> str:
    lines = [table]
    if speed:
        lines.append("Speed: " + ", ".join(f"{v:.1f} ms {k}" for k, v in speed.items())
                     + " per image (median)")
    if plot:
        lines.append(f"PR curves: {plot}")
    return "\n".join(lines) + "\n"
