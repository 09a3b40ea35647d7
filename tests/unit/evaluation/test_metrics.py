"""Detection metrics: a hand-computed VOC case, and COCO mAP cross-checked with pycocotools."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from detectflow.detection import Detection
from detectflow.evaluation.metrics import GroundTruth, Predictions, evaluate_detections, iou_matrix


def _hand_case(difficult_second: bool) -> tuple[list[GroundTruth], list[Predictions]]:
    """Two images, one class. Sorted by score the detections are TP, FP (duplicate), FP, TP, TP."""
    gts = [
        GroundTruth([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 0], [False, difficult_second]),
        GroundTruth([[0, 0, 10, 10]], [0]),
    ]
    preds = [
        Predictions([[0, 0, 10, 10], [1, 0, 10, 10], [20, 20, 30, 30]], [0.9, 0.8, 0.5], [0, 0, 0]),
        Predictions([[50, 50, 60, 60], [0, 0, 10, 9]], [0.7, 0.6], [0, 0]),
    ]
    return gts, preds


def test_voc_ap_matches_the_hand_computed_all_point_value() -> None:
    report = evaluate_detections(*_hand_case(difficult_second=False), classes=["cell"])

    # recall 1/3 1/3 1/3 2/3 1, precision 1 .5 .33 .5 .6 -> envelope 1 .6 .6 .6 .6
    # AP = 1/3 * 1 + 1/3 * .6 + 1/3 * .6 = 11/15
    assert report.map50 == pytest.approx(11 / 15)
    # COCO AP@.5 reads the same envelope at 101 recall points: 34 at 1.0, 67 at 0.6.
    assert report.map50_coco == pytest.approx((34 + 67 * 0.6) / 101)
    cls = report.per_class[0]
    # F1 is best (.75) from the lowest true positive's score 0.5 down; smoothed over a 0.1
    # window, that plateau ends half a window lower, and the highest threshold on it wins.
    assert (cls.precision, cls.recall, cls.f1) == pytest.approx((0.6, 1.0, 0.75))
    assert cls.best_threshold == pytest.approx(0.45)
    assert cls.n_instances == 3 and cls.n_images == 2
    curve = report.pr_curves["cell"]
    np.testing.assert_allclose(curve.recall, [1 / 3, 1 / 3, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(curve.precision, [1, 1 / 2, 1 / 3, 1 / 2, 3 / 5])


def test_voc_ignores_detections_of_difficult_boxes() -> None:
    report = evaluate_detections(*_hand_case(difficult_second=True), classes=["cell"])

    # The detection on the difficult box counts neither way: recall .5 .5 .5 1,
    # precision 1 .5 .33 .5 -> AP = .5 * 1 + .5 * .5
    assert report.map50 == pytest.approx(0.75)
    assert report.per_class[0].n_instances == 2
    # COCO treats the difficult box like pycocotools' ignored boxes: same curve, read at 101
    # recall points (51 at precision 1, 50 at .5).
    assert report.map50_coco == pytest.approx((51 + 50 * 0.5) / 101)


def test_perfect_detections_score_one_and_misses_score_zero() -> None:
    gts = [GroundTruth([[10, 10, 50, 40], [60, 5, 90, 30]], [0, 1])]
    perfect = evaluate_detections(
        gts, [Predictions([[10, 10, 50, 40], [60, 5, 90, 30]], [0.9, 0.8], [0, 1])], ["a", "b"]
    )
    nothing = evaluate_detections(gts, [Predictions(np.zeros((0, 4)), [], [])], ["a", "b"])

    assert (perfect.map50, perfect.map50_95) == pytest.approx((1.0, 1.0))
    assert (nothing.map50, nothing.map50_95) == (0.0, 0.0)
    assert nothing.per_class[0].best_threshold is None


def test_class_without_ground_truth_has_no_ap_and_is_left_out_of_the_mean() -> None:
    gts = [GroundTruth([[10, 10, 50, 40]], [0])]
    preds = [Predictions([[10, 10, 50, 40], [0, 0, 5, 5]], [0.9, 0.9], [0, 1])]

    report = evaluate_detections(gts, preds, ["a", "b"])
    data = report.to_dict()

    assert data["per_class"]["b"]["ap50"] is None
    assert data["map50"] == 1.0
    json.dumps(data, allow_nan=False)  # strict JSON: no NaN anywhere
    assert {"map50", "map50_95", "per_class"} <= set(data)


def test_report_table_has_an_all_row_and_one_row_per_class() -> None:
    report = evaluate_detections(*_hand_case(difficult_second=False), classes=["cell"])

    lines = report.format_table().splitlines()

    assert lines[0].split() == ["Class", "Images", "Instances", "P", "R", "mAP50", "mAP50-95"]
    assert lines[1].split()[:3] == ["all", "2", "3"]
    assert lines[2].split()[0] == "cell"
    assert float(lines[1].split()[5]) == pytest.approx(11 / 15, abs=5e-4)


def test_predictions_from_detections() -> None:
    detections = [Detection("b", 1, 0.5, (1.0, 2.0, 3.0, 4.0))]

    boxes, scores, class_ids = Predictions.from_detections(detections).arrays()

    assert boxes.tolist() == [[1, 2, 3, 4]] and scores.tolist() == [0.5]
    assert class_ids.tolist() == [1]
    assert Predictions.from_detections([]).arrays()[0].shape == (0, 4)


def test_mismatched_image_counts_are_rejected() -> None:
    with pytest.raises(ValueError, match="one entry per image"):
        evaluate_detections([GroundTruth(np.zeros((0, 4)), [])], [], ["a"])


def test_iou_matrix_float64_edges() -> None:
    ious = iou_matrix(np.array([[0.0, 0, 10, 10]]), np.array([[5.0, 0, 15, 10], [20, 20, 20, 30]]))

    np.testing.assert_allclose(ious, [[50 / 150, 0.0]])


# --- cross-check with pycocotools -----------------------------------------------------------


def _random_dataset(
    seed: int, n_images: int = 40, n_classes: int = 4
) -> tuple[list[GroundTruth], list[Predictions]]:
    """GT boxes of classes 0..n-2 (the last class has none), and detections that are jittered
    copies (IoU spread over .3-1), duplicates, misses, false positives, and one image with 130
    detections of a class, past the per-image cap of 100. Better boxes score higher, mostly."""
    rng = np.random.default_rng(seed)
    gts: list[GroundTruth] = []
    preds: list[Predictions] = []
    for image in range(n_images):
        crowded = image == 3  # 130 confident false positives bury its true detections
        n_gt = int(rng.integers(2 if crowded else 0, 9))
        xy = rng.uniform(0, 300, size=(n_gt, 2))
        wh = rng.uniform(4, 150, size=(n_gt, 2))  # small, medium and large (COCO areas)
        gt_boxes = np.concatenate([xy, xy + wh], axis=1)
        gt_classes = np.zeros(n_gt, np.int64) if crowded else rng.integers(0, n_classes - 1, n_gt)
        gts.append(GroundTruth(gt_boxes, gt_classes))
        boxes, scores, classes = [], [], []
        for box, cls in zip(gt_boxes, gt_classes, strict=True):
            for _ in range(int(rng.choice([0, 1, 1, 1, 2]))):  # misses and duplicates
                size = box[2:] - box[:2]
                spread = rng.uniform(0.0, 0.2)
                jitter = rng.normal(0, spread, size=4) * np.concatenate([size, size])
                boxes.append(box + jitter)
                scores.append(float(np.clip(1.0 - 2 * spread + rng.normal(0, 0.15), 0, 1)))
                classes.append(int(cls))
        n_fp = 130 if crowded else int(rng.integers(0, 6))
        for _ in range(n_fp):
            xy0 = rng.uniform(0, 300, size=2)
            boxes.append(np.concatenate([xy0, xy0 + rng.uniform(4, 90, size=2)]))
            scores.append(float(rng.uniform(0.9, 1.0) if crowded else rng.uniform(0.0, 0.9)))
            classes.append(0 if crowded else int(rng.integers(0, n_classes)))
        preds.append(Predictions(np.asarray(boxes).reshape(-1, 4), scores, classes))
    return gts, preds


def _pycocotools_eval(
    gts: list[GroundTruth], preds: list[Predictions], n_classes: int
) -> tuple[np.ndarray, list[list[float | None]]]:
    """COCO stats, and per class the AP over areas all, small, medium, large (None: no GT)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations, results = [], [], []
    for image_id, (gt, pred) in enumerate(zip(gts, preds, strict=True), start=1):
        images.append({"id": image_id, "width": 400, "height": 400})
        boxes, class_ids, _ = gt.arrays()
        for box, cls in zip(boxes, class_ids, strict=True):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append({  # ids start at 1: pycocotools treats id 0 as "unmatched"
                "id": len(annotations) + 1, "image_id": image_id, "category_id": int(cls) + 1,
                "bbox": [box[0], box[1], w, h], "area": w * h, "iscrowd": 0,
            })
        boxes, scores, class_ids = pred.arrays()
        for box, score, cls in zip(boxes, scores, class_ids, strict=True):
            results.append({
                "image_id": image_id, "category_id": int(cls) + 1, "score": float(score),
                "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
            })
    coco_gt = COCO()
    coco_gt.dataset = {
        "images": images, "annotations": annotations,
        "categories": [{"id": c + 1, "name": str(c)} for c in range(n_classes)],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt.createIndex()
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(results), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    precision = evaluator.eval["precision"][:, :, :, :, -1]  # T, R, K, A at 100 dets
    per_class: list[list[float | None]] = []
    for k in range(n_classes):
        areas = [precision[:, :, k, a] for a in range(4)]
        per_class.append([float(v[v > -1].mean()) if (v > -1).any() else None for v in areas])
    return evaluator.stats, per_class


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_coco_map_agrees_with_pycocotools(seed: int) -> None:
    gts, preds = _random_dataset(seed)
    classes = ["a", "b", "c", "no_gt"]

    report = evaluate_detections(gts, preds, classes)
    stats, per_class = _pycocotools_eval(gts, preds, len(classes))

    assert 0.2 < report.map50_95 < 0.9  # the data is neither trivial nor hopeless
    uncapped = evaluate_detections(gts, preds, classes, max_detections=1000)
    assert uncapped.per_class[0].ap50_95 != report.per_class[0].ap50_95  # the cap is exercised
    assert report.map50_95 == pytest.approx(stats[0], abs=1e-3)
    assert report.map50_coco == pytest.approx(stats[1], abs=1e-3)
    assert report.map75 == pytest.approx(stats[2], abs=1e-3)
    by_size = report.by_size()
    for size, stat in zip(("small", "medium", "large"), stats[3:6], strict=True):
        assert by_size[size].n_instances > 0
        assert by_size[size].ap50_95 == pytest.approx(stat, abs=1e-3), size
    for ours, theirs in zip(report.per_class, per_class, strict=True):
        by_class_size = [ours.by_size[size].ap50_95 for size in ("small", "medium", "large")]
        for mine, reference in zip([ours.ap50_95, *by_class_size], theirs, strict=True):
            assert (mine is None) == (reference is None)
            if reference is not None:
                assert mine == pytest.approx(reference, abs=1e-3)
