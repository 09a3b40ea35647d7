"""detectflow.boxes: areas, IoU, (batched) NMS and clipping of `xyxy` boxes in pixels."""

from __future__ import annotations

import numpy as np

from detectflow.boxes import batched_nms, box_area, clip_boxes, nms, pairwise_iou


def test_area_and_iou() -> None:
    a = np.array([[0, 0, 10, 10], [5, 5, 15, 15]], np.float32)
    b = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [3, 3, 3, 9]], np.float32)

    np.testing.assert_allclose(box_area(b), [100, 100, 0])
    np.testing.assert_allclose(pairwise_iou(a, b), [[1, 0, 0], [25 / 175, 0, 0]], rtol=1e-6)


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.6, 0.9, 0.5], np.float32)

    assert nms(boxes, scores, 0.5).tolist() == [1, 2]
    assert nms(boxes, scores, 0.9).tolist() == [1, 0, 2]  # IoU .82 is below .9


def test_batched_nms_never_suppresses_across_classes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [-30, -30, -20, -20], [-11, -11, -1, -1]],
                     np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    class_ids = np.array([0, 1, 1, 1], np.int64)

    keep = batched_nms(boxes, scores, class_ids, 0.5)

    # Box 3 (class 1) sits exactly one "max + 1" step from box 0 (class 0): a per-class offset
    # of max + 1 would stack them and suppress it. All four must survive.
    assert sorted(keep.tolist()) == [0, 1, 2, 3]
    assert batched_nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                       np.zeros(0, np.int64), 0.5).shape == (0,)


def test_clip_boxes_returns_a_clipped_copy() -> None:
    boxes = np.array([[-5, -5, 50, 70]], np.float32)

    clipped = clip_boxes(boxes, 40, 60)

    assert clipped.tolist() == [[0, 0, 40, 60]] and boxes[0, 0] == -5
