"""Confusion matrix of a detector at its serving threshold, with a background class.

What a user acts on: which classes are mistaken for which, which are missed (predicted as
background) and which are hallucinated (background predicted as a class). Layout as
Ultralytics' `confusion_matrix.png`: `matrix[predicted][true]`, the last row and column
being background.

Per image, detections scoring >= the threshold are matched one-to-one to ground truth (GT)
at IoU > `iou_threshold`, greedily by IoU: first pairs of the same class (so a correct box
is never displaced by a better-overlapping wrong one), then across classes. A matched pair
counts at [predicted class][GT class]; an unmatched detection at [class][background], an
unmatched GT at [background][class]. Difficult GTs (VOC `difficult`, COCO `iscrowd`) count
neither way, nor do detections matched to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from detectflow.evaluation.metrics import (
    VOC_IOU,
    FloatArray,
    GroundTruth,
    IntArray,
    Predictions,
    iou_matrix,
)

BACKGROUND = "background"


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class ImageMatch:
    """One image at a threshold: matched (detection, GT) index pairs and what is left."""

    pairs: list[tuple[int, int]]
    false_detections: list[int]  # detections matched to nothing
    missed: list[int]  # non-difficult GTs matched to nothing
    detection_classes: IntArray
    gt_classes: IntArray

    @property
    def true_positives(self) -> int:
        return sum(int(self.detection_classes[d] == self.gt_classes[g]) for d, g in self.pairs)

    @property
    def errors(self) -> int:
        """Wrong-class matches, false detections and misses."""
        wrong = len(self.pairs) - self.true_positives
        return wrong + len(self.false_detections) + len(self.missed)


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class ConfusionMatrix:
    classes: list[str]
    matrix: IntArray  # (C + 1, C + 1): [predicted][true], last = background
    score_threshold: float
    iou_threshold: float

    @property
    def labels(self) -> list[str]:
        return [*self.classes, BACKGROUND]

    def column_normalized(self) -> FloatArray:
        """Each true class's column as fractions (how its GTs ended up)."""
        totals = self.matrix.sum(axis=0, keepdims=True)
        return np.where(totals > 0, self.matrix / np.maximum(totals, 1), 0.0)

    def format_table(self) -> str:
        """The counts as text, rows predicted, columns true."""
        width = max(10, *(len(label) + 1 for label in self.labels))
        lines = [f"Confusion matrix at score >= {self.score_threshold:.3f} "
                 "(rows: predicted, columns: true):",
                 " " * width + "".join(f"{label[:width - 1]:>{width}}" for label in self.labels)]
        for label, row in zip(self.labels, self.matrix.tolist(), strict=True):
            lines.append(f"{label[:width - 1]:>{width}}" + "".join(f"{n:>{width}}" for n in row))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": self.labels,
            "axes": "matrix[predicted][true]; the last row/column is background "
                    "(row: missed ground truth; column: detections of nothing)",
            "matrix": self.matrix.tolist(),
            "score_threshold": round(self.score_threshold, 4),
            "iou_threshold": self.iou_threshold,
        }


def match_image(
    gt: GroundTruth, pred: Predictions, score_threshold: float,
    iou_threshold: float = VOC_IOU,
) -> ImageMatch:
    """One-to-one matches of one image (see the module docstring)."""
    gt_boxes, gt_classes, difficult = gt.arrays()
    boxes, scores, classes = pred.arrays()
    keep = scores >= score_threshold
    boxes, classes = boxes[keep], classes[keep]
    ious = (iou_matrix(boxes, gt_boxes) if len(boxes) and len(gt_boxes)
            else np.zeros((len(boxes), len(gt_boxes))))
    same = classes[:, None] == gt_classes[None, :]
    pairs = _greedy(np.where(same, ious, 0.0), iou_threshold, set(), set())
    pairs += _greedy(ious, iou_threshold, {d for d, _ in pairs}, {g for _, g in pairs})
    matched_dets = {d for d, _ in pairs}  # pairs with a difficult GT: counted neither way
    matched_gts = {g for _, g in pairs}
    return ImageMatch(
        pairs=sorted((d, g) for d, g in pairs if not difficult[g]),
        false_detections=[d for d in range(len(boxes)) if d not in matched_dets],
        missed=[g for g in range(len(gt_boxes)) if g not in matched_gts and not difficult[g]],
        detection_classes=classes,
        gt_classes=gt_classes,
    )


def _greedy(
    ious: FloatArray, iou_threshold: float, used_dets: set[int], used_gts: set[int]
) -> list[tuple[int, int]]:
    """Pairs above the threshold, highest IoU first, each detection and GT used once."""
    dets, gts = np.nonzero(ious > iou_threshold)
    order = np.argsort(-ious[dets, gts], kind="stable")
    used_d, used_g = set(used_dets), set(used_gts)
    pairs = []
    for d, g in zip(dets[order].tolist(), gts[order].tolist(), strict=True):
        if d not in used_d and g not in used_g:
            pairs.append((d, g))
            used_d.add(d)
            used_g.add(g)
    return pairs


def confusion_matrix(
    ground_truths: Sequence[GroundTruth],
    predictions: Sequence[Predictions],
    classes: Sequence[str],
    score_threshold: float,
    iou_threshold: float = VOC_IOU,
) -> ConfusionMatrix:
    """Count every image's matches into one matrix (same image order in both lists)."""
    n = len(classes)
    matrix = np.zeros((n + 1, n + 1), dtype=np.int64)
    for gt, pred in zip(ground_truths, predictions, strict=True):
        match = match_image(gt, pred, score_threshold, iou_threshold)
        for d, g in match.pairs:
            matrix[match.detection_classes[d], match.gt_classes[g]] += 1
        for d in match.false_detections:
            matrix[match.detection_classes[d], n] += 1
        for g in match.missed:
            matrix[n, match.gt_classes[g]] += 1
    return ConfusionMatrix(list(classes), matrix, score_threshold, iou_threshold)

