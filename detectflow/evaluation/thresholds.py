"""F1-optimal score thresholds: per class, and one serving threshold for a model.

A detector's scores are not probabilities (CenterNet-style heatmap peaks run low on small
custom sets), so a fixed cut-off such as 0.3 can hide every box. The serving threshold is
instead the score that maximises F1 on the validation split, the way Ultralytics picks it
(`utils/metrics.py` `ap_per_class`):

- F1 of the detections scoring >= t is computed at `GRID` (1001 thresholds, 0.001 apart)
  from the IoU-0.5 matches that VOC AP uses (`metrics`);
- for a model, F1 is averaged over the classes that have ground truth;
- the curve is smoothed over a `SMOOTHING_WIDTH`-wide window of scores, so one lucky
  detection on a small validation split does not set the threshold; its maximum wins, the
  highest threshold among equal maxima (fewer boxes for the same F1);
- precision, recall and F1 are then read, unsmoothed, at that threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from detectflow.evaluation.metrics import EvalReport

FloatArray = npt.NDArray[np.float64]

GRID = np.linspace(0.0, 1.0, 1001)
SMOOTHING_WIDTH = 0.1  # as Ultralytics: smooth(f1, 0.1) over its 1000 confidence points
METHOD = (
    "score threshold with the highest F1 at IoU 0.5 (mean over classes with ground truth), "
    f"F1 smoothed over a {SMOOTHING_WIDTH} score window (Ultralytics' method)"
)


@dataclass(frozen=True)
class F1Point:
    """The chosen threshold and precision, recall and F1 of the detections scoring >= it."""

    threshold: float
    precision: float
    recall: float
    f1: float

    def to_dict(self) -> dict[str, float]:
        return {"threshold": round(self.threshold, 3), "precision": round(self.precision, 5),
                "recall": round(self.recall, 5), "f1": round(self.f1, 5)}


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class F1Curves:
    """Precision, recall and F1 of one class at every `GRID` threshold."""

    precision: FloatArray
    recall: FloatArray

    @property
    def f1(self) -> FloatArray:
        total = self.precision + self.recall
        return np.where(total > 0, 2 * self.precision * self.recall / np.where(total > 0, total,
                                                                              1.0), 0.0)

    @classmethod
    def from_ranked(
        cls, recall: FloatArray, precision: FloatArray, scores: FloatArray
    ) -> F1Curves:
        """From cumulative recall/precision after each detection, best score first."""
        kept = np.searchsorted(-scores, -GRID, side="right")  # detections scoring >= t
        last = np.maximum(kept - 1, 0)
        has = kept > 0
        return cls(
            precision=np.where(has, precision[last] if len(precision) else 0.0, 1.0),
            recall=np.where(has, recall[last] if len(recall) else 0.0, 0.0),
        )


@dataclass(frozen=True)
class Calibration:
    """The serving threshold (all classes) and each class's own F1-optimal threshold."""

    overall: F1Point
    per_class: dict[str, F1Point | None]

    @property
    def score_threshold(self) -> float:
        return self.overall.threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "score_threshold": round(self.overall.threshold, 3),
            **{k: v for k, v in self.overall.to_dict().items() if k != "threshold"},
            "per_class": {name: None if point is None else point.to_dict()
                          for name, point in self.per_class.items()},
            "method": METHOD,
        }


def smooth(values: FloatArray, width: float = SMOOTHING_WIDTH) -> FloatArray:
    """Box filter over `width` of the score range, edges padded with the end values."""
    taps = round(len(values) * width * 2) // 2 + 1  # odd
    pad = np.ones(taps // 2)
    padded = np.concatenate((pad * values[0], values, pad * values[-1]))
    return np.convolve(padded, np.ones(taps) / taps, mode="valid")


def best_point(curves: Sequence[F1Curves]) -> F1Point | None:
    """The F1-optimal threshold of the mean over `curves` (see the module docstring)."""
    if not curves:
        return None
    f1 = np.mean([c.f1 for c in curves], axis=0)
    smoothed = smooth(f1)
    best = np.flatnonzero(smoothed >= smoothed.max() - 1e-12)[-1]
    return F1Point(
        threshold=float(GRID[best]),
        precision=float(np.mean([c.precision[best] for c in curves])),
        recall=float(np.mean([c.recall[best] for c in curves])),
        f1=float(f1[best]),
    )


def class_point(
    recall: FloatArray, precision: FloatArray, scores: FloatArray
) -> F1Point | None:
    """One class's F1-optimal threshold; None when no detection is right (F1 0 throughout)."""
    if not len(scores):
        return None
    point = best_point([F1Curves.from_ranked(recall, precision, scores)])
    return point if point is not None and point.f1 > 0 else None


def calibrate(report: EvalReport) -> Calibration | None:
    """The serving threshold from a report (of the validation split); None: no detection
    was right."""
    curves = [
        F1Curves.from_ranked(curve.recall, curve.precision, curve.scores)
        for c in report.per_class
        if c.n_instances > 0
        for curve in (report.pr_curves[c.name],)
    ]
    if not any(len(report.pr_curves[c.name].scores) for c in report.per_class):
        return None
    overall = best_point(curves)
    if overall is None or overall.f1 == 0:
        return None
    per_class = {c.name: c.best for c in report.per_class}
    return Calibration(overall, per_class)
