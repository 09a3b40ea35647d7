"""Confusion matrix with a background row/column: hand-counted cases."""

from __future__ import annotations

import json

import numpy as np

from detectflow.evaluation.confusion import confusion_matrix, match_image
from detectflow.evaluation.metrics import GroundTruth, Predictions


def test_hits_wrong_classes_false_detections_and_misses_land_in_their_cells() -> None:
    gts = [
        GroundTruth([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]], [0, 1, 1]),
        GroundTruth([[0, 0, 10, 10], [60, 60, 70, 70]], [0, 0], [False, True]),
    ]
    preds = [
        # a hit, a wrong class (b's box called a), a false box, one below the threshold
        Predictions([[0, 0, 10, 10], [20, 0, 30, 10], [90, 90, 99, 99], [40, 0, 50, 10]],
                    [0.9, 0.8, 0.7, 0.1], [0, 0, 1, 1]),
        # a hit, and a detection of the difficult box: counted neither way
        Predictions([[1, 0, 10, 10], [60, 60, 70, 70]], [0.9, 0.9], [0, 1]),
    ]

    matrix = confusion_matrix(gts, preds, ["a", "b"], score_threshold=0.5)

    # rows: predicted a, b, background; columns: true a, b, background
    np.testing.assert_array_equal(matrix.matrix, [[2, 1, 0],
                                                  [0, 0, 1],
                                                  [0, 1, 0]])
    data = json.loads(json.dumps(matrix.to_dict()))
    assert data["labels"] == ["a", "b", "background"] and data["score_threshold"] == 0.5
    shares = matrix.column_normalized()
    np.testing.assert_allclose(shares[:, 1], [0.5, 0.0, 0.5])


def test_a_right_class_box_is_matched_before_a_better_overlapping_wrong_one() -> None:
    gt = GroundTruth([[0, 0, 100, 100]], [0])
    pred = Predictions([[0, 0, 100, 100], [5, 5, 100, 100]], [0.6, 0.9], [1, 0])

    match = match_image(gt, pred, score_threshold=0.5)

    assert match.pairs == [(1, 0)] and match.true_positives == 1
    assert match.false_detections == [0] and match.missed == []
    assert match.errors == 1


def test_empty_images_count_nothing() -> None:
    matrix = confusion_matrix([GroundTruth(np.zeros((0, 4)), [])],
                              [Predictions(np.zeros((0, 4)), [], [])], ["a"], 0.3)

    assert matrix.matrix.sum() == 0
    assert matrix.column_normalized().sum() == 0
