"""Detection metrics: VOC mAP@0.5 and COCO mAP@[.5:.95], per class. numpy only.

Conventions (each the reference implementation's own, so numbers compare with published ones):

- Boxes are `xyxy` pixels; IoU has no "+1 pixel" term (continuous coordinates, as pycocotools).
- `map50` is PASCAL VOC (2010+ devkit) AP at IoU 0.5: detections of a class sorted by score
  over the whole split; each goes to the ground truth (GT) of its image and class with the
  highest IoU; IoU > 0.5 with an unmatched GT is a true positive, with an already-matched GT a
  false positive (duplicate), with a `difficult` GT neither. Area under the all-point
  interpolated precision/recall curve. No cap on detections per image.
- `map50_95` is COCO AP as pycocotools' COCOeval computes it for bbox, area "all": at most 100
  detections per image and class, IoU thresholds .50:.05:.95, each detection matched greedily
  (by score) to the best still-unmatched GT with IoU >= t, precision made monotone and read at
  101 recall points. `difficult` GTs act like pycocotools' ignored GTs. `map50_coco` and
  `map75` are the same computation at one threshold.
- AP by object size (`by_size`) is COCO's mAP@[.5:.95] over `AREA_RANGES` (small < 32²,
  medium 32²-96², large > 96² pixels of box area, in the original image), as pycocotools
  computes `APs/APm/APl`: GTs outside the range are ignored, and so are unmatched detections
  outside it.
- A class without any (non-difficult) GT has no AP: `None` in `to_dict`, left out of the means
  (pycocotools marks it -1 and leaves it out too); likewise per size range.
- Precision, recall and F1 per class are read at the class's F1-optimal score threshold
  (`thresholds`).
- Detections are scored from `EVAL_SCORE_THRESHOLD` up, everywhere a model is evaluated
  (training, export, `detectflow evaluate`), so the mAP in a bundle's manifest and the one
  `evaluate` prints agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from detectflow.detection import Detection
from detectflow.evaluation.thresholds import F1Point, class_point

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

VOC_IOU = 0.5
# Built exactly as pycocotools builds them, so the floats compare equal.
COCO_IOUS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1)
COCO_RECALLS = np.linspace(0.0, 1.0, int(np.round((1.0 - 0.0) / 0.01)) + 1)
COCO_MAX_DETS = 100
# pycocotools' areaRng, in squared pixels; bounds are inclusive on both sides, as there.
AREA_RANGES: dict[str, tuple[float, float]] = {
    "small": (0.0, 32.0**2),
    "medium": (32.0**2, 96.0**2),
    "large": (96.0**2, 1e5**2),
}
ALL_AREAS = (0.0, 1e5**2)
# The one score cut-off for evaluation. Low, so the precision/recall curve is complete; at
# 0.01 rather than COCO-style 0.001 because the 100-detections-per-image cap binds first on
# the models here (bundled BCCD model, test split: mAP@0.5 0.88851 at 0.01, 0.88864 at 0.001)
# and the trainer's validation decodes fewer peaks.
EVAL_SCORE_THRESHOLD = 0.01


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class GroundTruth:
    """The annotated boxes of one image: (N, 4) `xyxy` pixels, (N,) class ids, (N,) difficult."""

    boxes_xyxy: npt.ArrayLike
    class_ids: npt.ArrayLike
    difficult: npt.ArrayLike | None = None

    def arrays(self) -> tuple[FloatArray, IntArray, BoolArray]:
        boxes = np.asarray(self.boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        class_ids = np.asarray(self.class_ids, dtype=np.int64).reshape(-1)
        difficult = (
            np.zeros(len(class_ids), dtype=np.bool_)
            if self.difficult is None
            else np.asarray(self.difficult, dtype=np.bool_).reshape(-1)
        )
        return boxes, class_ids, difficult


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class Predictions:
    """The detections of one image: (M, 4) `xyxy` pixels, (M,) scores, (M,) class ids."""

    boxes_xyxy: npt.ArrayLike
    scores: npt.ArrayLike
    class_ids: npt.ArrayLike

    @classmethod
    def from_detections(cls, detections: Sequence[Detection]) -> Predictions:
        return cls(
            boxes_xyxy=np.asarray([d.box_xyxy for d in detections], dtype=np.float64),
            scores=np.asarray([d.score for d in detections], dtype=np.float64),
            class_ids=np.asarray([d.class_id for d in detections], dtype=np.int64),
        )

    def arrays(self) -> tuple[FloatArray, FloatArray, IntArray]:
        boxes = np.asarray(self.boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        class_ids = np.asarray(self.class_ids, dtype=np.int64).reshape(-1)
        return boxes, scores, class_ids


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class PrCurve:
    """Precision/recall after each detection (sorted by score) at IoU 0.5, for plotting."""

    recall: FloatArray
    precision: FloatArray
    scores: FloatArray


@dataclass(frozen=True)
class ClassMetrics:
    name: str
    n_images: int  # images with at least one GT box of the class
    n_instances: int  # non-difficult GT boxes
    ap50: float | None  # VOC, all-point
    ap50_95: float | None  # COCO
    ap50_coco: float | None
    ap75: float | None
    precision: float  # at the score threshold with the best F1 (IoU 0.5)
    recall: float
    f1: float
    best_threshold: float | None
    by_size: dict[str, SizeMetrics] = field(default_factory=dict)

    @property
    def best(self) -> F1Point | None:
        """The F1-optimal threshold with its precision, recall and F1 (None: no detections)."""
        if self.best_threshold is None:
            return None
        return F1Point(self.best_threshold, self.precision, self.recall, self.f1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_images": self.n_images,
            "n_instances": self.n_instances,
            "ap50": _round(self.ap50),
            "ap50_95": _round(self.ap50_95),
            "ap50_coco": _round(self.ap50_coco),
            "ap75": _round(self.ap75),
            "precision": _round(self.precision),
            "recall": _round(self.recall),
            "f1": _round(self.f1),
            "best_threshold": _round(self.best_threshold),
            "by_size": {k: v.to_dict() for k, v in self.by_size.items()},
        }


@dataclass(frozen=True)
class SizeMetrics:
    """COCO mAP@[.5:.95] of the GT boxes whose area falls in one of `AREA_RANGES`."""

    n_instances: int
    ap50_95: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"n_instances": self.n_instances, "ap50_95": _round(self.ap50_95)}


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class EvalReport:
    classes: list[str]
    per_class: list[ClassMetrics]
    n_images: int
    pr_curves: dict[str, PrCurve] = field(repr=False)

    @property
    def n_instances(self) -> int:
        return sum(c.n_instances for c in self.per_class)

    @property
    def map50(self) -> float | None:
        return _mean([c.ap50 for c in self.per_class])

    @property
    def map50_95(self) -> float | None:
        return _mean([c.ap50_95 for c in self.per_class])

    @property
    def map50_coco(self) -> float | None:
        return _mean([c.ap50_coco for c in self.per_class])

    @property
    def map75(self) -> float | None:
        return _mean([c.ap75 for c in self.per_class])

    def by_size(self) -> dict[str, SizeMetrics]:
        """Per size range: instances of all classes, mean AP over classes that have some."""
        return {
            size: SizeMetrics(
                n_instances=sum(c.by_size[size].n_instances for c in self.per_class),
                ap50_95=_mean([c.by_size[size].ap50_95 for c in self.per_class]),
            )
            for size in AREA_RANGES
        }

    @property
    def precision(self) -> float | None:
        """Mean over classes with GT of each class's precision at its best-F1 threshold."""
        return _mean([c.precision for c in self.per_class if c.ap50 is not None])

    @property
    def recall(self) -> float | None:
        return _mean([c.recall for c in self.per_class if c.ap50 is not None])

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (no curves): `map50`, `map50_95`, `per_class`, ..."""
        return {
            "map50": _round(self.map50),
            "map50_95": _round(self.map50_95),
            "map50_coco": _round(self.map50_coco),
            "map75": _round(self.map75),
            "precision": _round(self.precision),
            "recall": _round(self.recall),
            "n_images": self.n_images,
            "n_instances": self.n_instances,
            "by_size": {k: v.to_dict() for k, v in self.by_size().items()},
            "classes": list(self.classes),
            "per_class": {c.name: c.to_dict() for c in self.per_class},
        }

    def format_table(self) -> str:
        """A table like Ultralytics' `val` output: one row for all classes, one per class."""
        header = f"{'Class':>12} {'Images':>8} {'Instances':>10} {'P':>7} {'R':>7} " \
                 f"{'mAP50':>7} {'mAP50-95':>9}"
        rows = [header, _row("all", self.n_images, self.n_instances, self.precision,
                             self.recall, self.map50, self.map50_95)]
        rows += [
            _row(c.name, c.n_images, c.n_instances, c.precision, c.recall, c.ap50, c.ap50_95)
            for c in self.per_class
        ]
        return "\n".join(rows)


def _row(name: str, images: int, instances: int, *values: float | None) -> str:
    cells = " ".join(f"{'-' if v is None else f'{v:.3f}':>7}" for v in values[:-1])
    last = values[-1]
    return f"{name[:12]:>12} {images:>8} {instances:>10} {cells} " \
           f"{'-' if last is None else f'{last:.3f}':>9}"


def _round(value: float | None, digits: int = 5) -> float | None:
    return None if value is None else round(float(value), digits)


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def evaluate_detections(
    ground_truths: Sequence[GroundTruth],
    predictions: Sequence[Predictions],
    classes: Sequence[str],
    max_detections: int = COCO_MAX_DETS,
) -> EvalReport:
    """Score detections against ground truth, image by image (same order in both lists)."""
    if len(ground_truths) != len(predictions):
        raise ValueError(
            f"{len(ground_truths)} ground truths but {len(predictions)} predictions: "
            "give one entry per image, in the same order."
        )
    gts = [g.arrays() for g in ground_truths]
    preds = [p.arrays() for p in predictions]
    per_class: list[ClassMetrics] = []
    curves: dict[str, PrCurve] = {}
    for class_id, name in enumerate(classes):
        images = [_ImageClass.select(gt, pred, class_id) for gt, pred in zip(gts, preds,
                                                                              strict=True)]
        metrics, curve = _evaluate_class(name, images, max_detections)
        per_class.append(metrics)
        curves[name] = curve
    return EvalReport(list(classes), per_class, len(ground_truths), curves)


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class _ImageClass:
    """One image's GT and detections of one class; detections sorted by score (stable)."""

    gt_boxes: FloatArray
    gt_difficult: BoolArray
    dt_boxes: FloatArray
    dt_scores: FloatArray

    @classmethod
    def select(
        cls,
        gt: tuple[FloatArray, IntArray, BoolArray],
        pred: tuple[FloatArray, FloatArray, IntArray],
        class_id: int,
    ) -> _ImageClass:
        gt_mask = gt[1] == class_id
        dt_mask = pred[2] == class_id
        order = np.argsort(-pred[1][dt_mask], kind="stable")
        return cls(gt[0][gt_mask], gt[2][gt_mask], pred[0][dt_mask][order],
                   pred[1][dt_mask][order])


def _evaluate_class(
    name: str, images: list[_ImageClass], max_detections: int
) -> tuple[ClassMetrics, PrCurve]:
    n_positive = int(sum((~im.gt_difficult).sum() for im in images))
    n_images = sum(bool(len(im.gt_boxes)) for im in images)
    scores, labels = _voc_labels(images)
    ap50, curve, best = _voc_ap(scores, labels, n_positive)
    coco = _coco_ap(images, max_detections)
    by_size = {size: _size_metrics(images, max_detections, area)
               for size, area in AREA_RANGES.items()}
    metrics = ClassMetrics(
        name=name,
        n_images=n_images,
        n_instances=n_positive,
        ap50=ap50,
        ap50_95=None if coco is None else float(coco.mean()),
        ap50_coco=None if coco is None else float(coco[0]),
        ap75=None if coco is None else float(coco[5]),
        precision=0.0 if best is None else best.precision,
        recall=0.0 if best is None else best.recall,
        f1=0.0 if best is None else best.f1,
        best_threshold=None if best is None else best.threshold,
        by_size=by_size,
    )
    return metrics, curve


# --- VOC ------------------------------------------------------------------------------------

TP, FP, IGNORED = 1, 0, -1


def _voc_labels(images: list[_ImageClass]) -> tuple[FloatArray, npt.NDArray[np.int8]]:
    """Scores and TP/FP/IGNORED labels of every detection of the class, best score first."""
    scores = [im.dt_scores for im in images]
    labels = [_voc_match_image(im) for im in images]
    all_scores = np.concatenate(scores) if scores else np.zeros(0)
    all_labels = np.concatenate(labels) if labels else np.zeros(0, dtype=np.int8)
    order = np.argsort(-all_scores, kind="stable")
    return all_scores[order], all_labels[order]


def _voc_match_image(im: _ImageClass) -> npt.NDArray[np.int8]:
    labels = np.full(len(im.dt_boxes), FP, dtype=np.int8)
    if not len(im.gt_boxes):
        return labels
    ious = iou_matrix(im.dt_boxes, im.gt_boxes)
    matched = np.zeros(len(im.gt_boxes), dtype=np.bool_)
    for d, best in enumerate(ious.argmax(axis=1)):  # dets are in score order
        if ious[d, best] <= VOC_IOU:
            continue
        if im.gt_difficult[best]:
            labels[d] = IGNORED
        elif not matched[best]:
            labels[d] = TP
            matched[best] = True
    return labels


def _voc_ap(
    scores: FloatArray, labels: npt.NDArray[np.int8], n_positive: int
) -> tuple[float | None, PrCurve, F1Point | None]:
    kept = labels != IGNORED
    scores, labels = scores[kept], labels[kept]
    tp = np.cumsum(labels == TP)
    fp = np.cumsum(labels == FP)
    recall = tp / max(n_positive, 1)
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    curve = PrCurve(recall=recall, precision=precision, scores=scores)
    if n_positive == 0:
        return None, curve, None
    return _all_point_ap(recall, precision), curve, class_point(recall, precision, scores)


def _all_point_ap(recall: FloatArray, precision: FloatArray) -> float:
    """Area under the PR curve with precision made monotone (VOC2010+ devkit `voc_ap`)."""
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


# --- COCO -----------------------------------------------------------------------------------


def _size_metrics(
    images: list[_ImageClass], max_detections: int, area: tuple[float, float]
) -> SizeMetrics:
    coco = _coco_ap(images, max_detections, area)
    n_instances = sum(int((~_ignored_gts(im, area)).sum()) for im in images)
    return SizeMetrics(n_instances, None if coco is None else float(coco.mean()))


def _ignored_gts(im: _ImageClass, area: tuple[float, float]) -> BoolArray:
    """GTs pycocotools ignores for an area range: difficult ones, and those outside it."""
    areas = _areas(im.gt_boxes)
    return im.gt_difficult | (areas < area[0]) | (areas > area[1])


def _areas(boxes: FloatArray) -> FloatArray:
    return np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0.0, None), axis=1)


def _coco_ap(
    images: list[_ImageClass], max_detections: int,
    area: tuple[float, float] = ALL_AREAS,
) -> FloatArray | None:
    """AP at each of the 10 COCO IoU thresholds, or None when the class has no GT in `area`."""
    n_positive = sum(int((~_ignored_gts(im, area)).sum()) for im in images)
    if n_positive == 0:
        return None
    matches = [_coco_match_image(im, max_detections, area) for im in images]
    scores = np.concatenate([m[0] for m in matches])
    matched = np.concatenate([m[1] for m in matches], axis=1)
    ignored = np.concatenate([m[2] for m in matches], axis=1)
    order = np.argsort(-scores, kind="mergesort")
    matched, ignored = matched[:, order], ignored[:, order]
    tps = np.cumsum(matched & ~ignored, axis=1)
    fps = np.cumsum(~matched & ~ignored, axis=1)
    return np.array([
        _interpolated_ap(tps[t], fps[t], n_positive) for t in range(len(COCO_IOUS))
    ])


def _coco_match_image(
    im: _ImageClass, max_detections: int, area: tuple[float, float]
) -> tuple[FloatArray, BoolArray, BoolArray]:
    """Scores, matched (T, D) and ignored (T, D) of an image's top `max_detections`.

    Unmatched detections whose area is outside `area` are ignored, as pycocotools does.
    """
    boxes, scores = im.dt_boxes[:max_detections], im.dt_scores[:max_detections]
    n_t, n_d, n_g = len(COCO_IOUS), len(boxes), len(im.gt_boxes)
    matched = np.zeros((n_t, n_d), dtype=np.bool_)
    dt_areas = _areas(boxes)
    outside = (dt_areas < area[0]) | (dt_areas > area[1])
    ignored = np.repeat(outside[None, :], n_t, axis=0)
    if n_g == 0 or n_d == 0:
        return scores, matched, ignored
    ious = iou_matrix(boxes, im.gt_boxes)
    gt_ignored = _ignored_gts(im, area)
    thresholds = np.minimum(COCO_IOUS, 1 - 1e-10)[:, None]
    gt_taken = np.zeros((n_t, n_g), dtype=np.bool_)
    for d in range(n_d):
        candidates = ~gt_taken & (ious[d][None, :] >= thresholds)
        # pycocotools takes a regular GT when one matches, an ignored one only otherwise.
        regular = candidates & ~gt_ignored[None, :]
        candidates = np.where(regular.any(axis=1, keepdims=True), regular, candidates)
        values = np.where(candidates, ious[d][None, :], -1.0)
        best = n_g - 1 - np.argmax(values[:, ::-1], axis=1)  # ties: the last, as pycocotools
        found = values.max(axis=1) >= 0
        rows = np.nonzero(found)[0]
        matched[rows, d] = True
        ignored[rows, d] = gt_ignored[best[rows]]
        gt_taken[rows, best[rows]] = True
    return scores, matched, ignored


def _interpolated_ap(tp: IntArray, fp: IntArray, n_positive: int) -> float:
    """COCO's 101-point interpolated AP from cumulative TP/FP counts."""
    if not len(tp):
        return 0.0
    recall = tp / n_positive
    precision = tp / (tp + fp + np.spacing(1))
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    index = np.searchsorted(recall, COCO_RECALLS, side="left")
    sampled = np.where(index < len(precision), precision[np.minimum(index, len(precision) - 1)],
                       0.0)
    return float(sampled.mean())


def iou_matrix(a_xyxy: FloatArray, b_xyxy: FloatArray) -> FloatArray:
    """IoU of every box in `a` with every box in `b`, in float64.

    Not `detectflow.boxes.pairwise_iou` (float32): matching compares IoU with thresholds
    exactly, and float32 rounding would flip matches that sit on a threshold.
    """
    top_left = np.maximum(a_xyxy[:, None, :2], b_xyxy[None, :, :2])
    bottom_right = np.minimum(a_xyxy[:, None, 2:], b_xyxy[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0.0, None), axis=2)
    area_a = np.prod(np.clip(a_xyxy[:, 2:] - a_xyxy[:, :2], 0.0, None), axis=1)
    area_b = np.prod(np.clip(b_xyxy[:, 2:] - b_xyxy[:, :2], 0.0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
