"""Evaluate a model bundle (LiteRT, no TensorFlow) on annotated images.

The trainer calls `evaluate_bundle` on every TFLite export it writes, and `detectflow evaluate`
on any bundle: both score the very code path that serves the model (decode, letterbox, int8
quantize, LiteRT, numpy decoding), not the Keras model.

The items' `class_ids` must index the detector's class list: load the dataset with
`load_dataset(root, classes=detector.classes)`. Detections are kept from
`metrics.EVAL_SCORE_THRESHOLD` up, the one cut-off every evaluation uses.
"""

from __future__ import annotations

import logging
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tqdm import tqdm

from detectflow.datasets.dataset import Annotation
from detectflow.detection import Detection
from detectflow.evaluation.metrics import (
    EVAL_SCORE_THRESHOLD,
    EvalReport,
    GroundTruth,
    Predictions,
    evaluate_detections,
)
from detectflow.imaging import ImageError

log = logging.getLogger(__name__)


class _Timings(Protocol):
    preprocess_ms: float
    inference_ms: float
    postprocess_ms: float


class SupportsDetect(Protocol):
    """What evaluation needs from a detector (`detectflow.model.Detector` has it)."""

    @property
    def classes(self) -> list[str]: ...

    @property
    def last_timings(self) -> _Timings: ...

    def detect(self, image: Path, score_threshold: float | None = None) -> list[Detection]: ...


@dataclass
class DetectorRun:
    """Ground truth and predictions per image, plus per-image milliseconds per stage."""

    ground_truths: list[GroundTruth] = field(default_factory=list)
    predictions: list[Predictions] = field(default_factory=list)
    preprocess_ms: list[float] = field(default_factory=list)
    inference_ms: list[float] = field(default_factory=list)
    postprocess_ms: list[float] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def report(self, classes: Sequence[str]) -> EvalReport:
        """mAP and friends of this run (see `metrics`)."""
        return evaluate_detections(self.ground_truths, self.predictions, classes)

    def median_ms(self) -> dict[str, float]:
        stages = {"preprocess": self.preprocess_ms, "inference": self.inference_ms,
                  "postprocess": self.postprocess_ms}
        return {k: round(statistics.median(v), 3) for k, v in stages.items() if v}


def run_detector(
    detector: SupportsDetect,
    items: Sequence[Annotation],
    score_threshold: float = EVAL_SCORE_THRESHOLD,
    progress: bool = True,
) -> DetectorRun:
    """Detect on every item's image. An image that fails to decode counts as found nothing."""
    _check_class_ids(items, detector.classes)
    run = DetectorRun()
    for item in tqdm(items, desc="evaluate", unit="img", file=sys.stderr, disable=not progress,
                     leave=False):
        run.ground_truths.append(GroundTruth(item.boxes_xyxy, item.class_ids, item.difficult))
        try:
            detections = detector.detect(item.image_path, score_threshold=score_threshold)
        except (ImageError, OSError) as err:
            log.warning("image could not be read: scored as no detections",
                        extra={"image": str(item.image_path), "error": str(err)})
            run.failed.append(item.image_id)
            detections = []
        else:
            timings = detector.last_timings
            run.preprocess_ms.append(timings.preprocess_ms)
            run.inference_ms.append(timings.inference_ms)
            run.postprocess_ms.append(timings.postprocess_ms)
        run.predictions.append(Predictions.from_detections(detections))
    return run


def evaluate_bundle(
    detector: SupportsDetect,
    items: Sequence[Annotation],
    score_threshold: float = EVAL_SCORE_THRESHOLD,
    progress: bool = True,
) -> EvalReport:
    """VOC mAP@0.5 and COCO mAP@[.5:.95] of `detector` on `items` (see `metrics`)."""
    run = run_detector(detector, items, score_threshold, progress)
    return run.report(detector.classes)


def _check_class_ids(items: Sequence[Annotation], classes: Sequence[str]) -> None:
    top = max((int(i.class_ids.max()) for i in items if len(i.class_ids)), default=-1)
    if top >= len(classes):
        raise ValueError(
            f"annotations use class id {top} but the model has {len(classes)} classes "
            f"({', '.join(classes)}); load the data with classes=detector.classes"
        )
