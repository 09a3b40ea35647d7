"""F1-optimal thresholds: what they promise (precision/recall of the boxes kept at them),
the smoothing that keeps one lucky detection from choosing them, and the tie rule."""

from __future__ import annotations

import numpy as np
import pytest

from detectflow.evaluation.metrics import GroundTruth, Predictions, evaluate_detections
from detectflow.evaluation.thresholds import GRID, F1Curves, best_point, calibrate, smooth


def _scored_set(seed: int, n_images: int = 30) -> tuple[list[GroundTruth], list[Predictions]]:
    """Two classes; true boxes score higher than false ones on average, with overlap."""
    rng = np.random.default_rng(seed)
    gts, preds = [], []
    for _ in range(n_images):
        n = int(rng.integers(1, 6))
        xy = rng.uniform(0, 200, size=(n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(10, 60, size=(n, 2))], axis=1)
        classes = rng.integers(0, 2, n)
        gts.append(GroundTruth(boxes, classes))
        found = rng.random(n) < 0.85
        fp_xy = rng.uniform(0, 200, size=(3, 2))
        fp = np.concatenate([fp_xy, fp_xy + 20], axis=1)
        preds.append(Predictions(
            np.concatenate([boxes[found], fp]),
            np.concatenate([rng.uniform(0.3, 0.9, found.sum()), rng.uniform(0.01, 0.5, 3)]),
            np.concatenate([classes[found], rng.integers(0, 2, 3)]),
        ))
    return gts, preds


@pytest.mark.parametrize("seed", [0, 1])
def test_reported_precision_and_recall_are_those_of_the_boxes_kept(seed: int) -> None:
    gts, preds = _scored_set(seed)
    classes = ["a", "b"]

    calibration = calibrate(evaluate_detections(gts, preds, classes))
    assert calibration is not None
    threshold = calibration.score_threshold
    kept = []
    for p in preds:
        boxes, scores, ids = p.arrays()
        keep = scores >= threshold
        kept.append(Predictions(boxes[keep], scores[keep], ids[keep]))
    served = evaluate_detections(gts, kept, classes)

    # what serving at the threshold yields: each class's precision and recall after its
    # last kept detection, averaged over classes
    precision = np.mean([served.pr_curves[c].precision[-1] for c in classes])
    recall = np.mean([served.pr_curves[c].recall[-1] for c in classes])
    assert calibration.overall.precision == pytest.approx(precision)
    assert calibration.overall.recall == pytest.approx(recall)
    assert 0.3 <= threshold <= 0.6  # between the false boxes' scores and the true ones'
    for name in classes:
        point = calibration.per_class[name]
        assert point is not None and 0.0 < point.f1 <= 1.0


def test_a_narrow_spike_loses_to_a_broad_plateau_and_ties_go_to_the_highest() -> None:
    # F1 0.95 only between 0.800 and 0.805 (one lucky detection on a small split), 0.9 from
    # 0.30 to 0.60. With precision = recall = x, F1 is x.
    values = np.zeros(len(GRID))
    values[(GRID >= 0.30) & (GRID <= 0.60)] = 0.9
    values[(GRID >= 0.800) & (GRID <= 0.805)] = 0.95
    curve = F1Curves(precision=values, recall=values)

    point = best_point([curve])

    assert point is not None
    # the smoothed plateau is flat from 0.35 to 0.55; the highest threshold on it wins
    assert point.threshold == pytest.approx(0.55)
    assert point.f1 == pytest.approx(0.9)
    assert GRID[np.argmax(curve.f1)] == pytest.approx(0.80)  # unsmoothed would take the spike


def test_smoothing_keeps_constants_and_spreads_a_spike() -> None:
    flat = np.full(len(GRID), 0.5)
    spike = np.zeros(len(GRID))
    spike[500] = 1.0

    assert np.allclose(smooth(flat), 0.5)
    smoothed = smooth(spike)
    assert smoothed.max() == pytest.approx(1 / 101)  # a 0.1-wide window: 101 grid points
    assert smoothed.sum() == pytest.approx(1.0)


def test_nothing_detected_gives_no_calibration() -> None:
    gts = [GroundTruth([[0, 0, 10, 10]], [0])]
    report = evaluate_detections(gts, [Predictions(np.zeros((0, 4)), [], [])], ["a"])

    assert calibrate(report) is None
    assert report.per_class[0].best is None


def test_calibration_json_names_the_method_and_each_class() -> None:
    gts, preds = _scored_set(3)

    calibration = calibrate(evaluate_detections(gts, preds, ["a", "b", "absent"]))

    assert calibration is not None
    data = calibration.to_dict()
    assert set(data) == {"score_threshold", "precision", "recall", "f1", "per_class", "method"}
    assert data["per_class"]["absent"] is None  # no ground truth, no detections
    assert "Ultralytics" in data["method"]
