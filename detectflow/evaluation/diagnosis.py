"""What an evaluation tells a user to do next, as data and as files.

`diagnose` adds to a run's mAP report the F1-optimal thresholds (`thresholds`) and the
confusion matrix at the serving threshold (`confusion`); `write_files` leaves it as files:

  pr_curves.png          precision/recall per class at IoU 0.5
  f1_curves.png          F1 against score threshold, the F1-optimal one marked
  confusion_matrix.png   with a background row/column; its counts in confusion_matrix.json
  predictions.png        the images with the most errors, predictions against ground truth

`detectflow evaluate --plots DIR` and the trainer's export (in the bundle, on the validation
split) both write them through here. AP by object size is part of the report itself
(`EvalReport.by_size`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detectflow.datasets.dataset import Annotation
from detectflow.evaluation.bundle import DetectorRun
from detectflow.evaluation.confusion import ConfusionMatrix, confusion_matrix
from detectflow.evaluation.metrics import EvalReport
from detectflow.evaluation.thresholds import Calibration, calibrate

FILES = ("pr_curves.png", "f1_curves.png", "confusion_matrix.png", "confusion_matrix.json",
         "predictions.png")


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class Diagnosis:
    """A run's report, its F1-optimal thresholds, and its confusion at `serving_threshold`."""

    split: str
    report: EvalReport
    calibration: Calibration | None
    confusion: ConfusionMatrix

    @property
    def serving_threshold(self) -> float:
        return self.confusion.score_threshold

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: `calibration` (None when nothing was detected) and `confusion_matrix`."""
        return {
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
            "confusion_matrix": self.confusion.to_dict(),
        }


def diagnose(
    run: DetectorRun, classes: Sequence[str], serving_threshold: float, split: str = "",
    report: EvalReport | None = None,
) -> Diagnosis:
    """Score `run` (unless its `report` is given) and add thresholds and the confusion
    matrix at `serving_threshold`."""
    report = report or run.report(classes)
    return Diagnosis(
        split=split,
        report=report,
        calibration=calibrate(report),
        confusion=confusion_matrix(run.ground_truths, run.predictions, classes,
                                   serving_threshold),
    )


def write_files(
    folder: str | Path, diagnosis: Diagnosis, items: Sequence[Annotation], run: DetectorRun,
    prefix: str = "",
) -> list[Path]:
    """Write `FILES` (names prefixed with `prefix`) into `folder`; returns their paths."""
    from detectflow.evaluation.gallery import prediction_grid
    from detectflow.evaluation.plots import (
        plot_confusion_matrix,
        plot_f1_curves,
        plot_pr_curves,
    )

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    split = diagnosis.split
    json_path = out / f"{prefix}confusion_matrix.json"
    json_path.write_text(json.dumps({"split": split, **diagnosis.confusion.to_dict()}, indent=1)
                         + "\n")
    return [
        plot_pr_curves(diagnosis.report, out / f"{prefix}pr_curves.png"),
        plot_f1_curves(diagnosis.report, diagnosis.calibration, out / f"{prefix}f1_curves.png",
                       split),
        plot_confusion_matrix(diagnosis.confusion, out / f"{prefix}confusion_matrix.png", split),
        json_path,
        prediction_grid(items, run.predictions, diagnosis.report.classes,
                        diagnosis.serving_threshold, out / f"{prefix}predictions.png",
                        split=split),
    ]
