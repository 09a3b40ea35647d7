"""detectflow.model.decode: CenterNet heatmap peaks and ltrb edge distances -> `xyxy` boxes in
model-input pixels, in numpy."""

from __future__ import annotations

import numpy as np

from detectflow.model.decode import decode_centernet, max_filter_3x3
from detectflow.model.manifest import Decoding


def test_decode_centernet_turns_peaks_and_edges_into_boxes() -> None:
    spec = Decoding(stride=4, ltrb_unit_px=16.0, score_threshold=0.3, nms_iou=0.6)
    heatmap = np.zeros((24, 32, 2), np.float32)
    ltrb = np.zeros((24, 32, 4), np.float32)
    heatmap[10, 20, 1] = 0.9  # cell centre (82, 42)
    heatmap[10, 19, 1] = 0.5  # a shoulder of the same peak: not a local maximum
    heatmap[3, 4, 0] = 0.2  # below the threshold
    ltrb[10, 20] = (1, 1, 2, 2)

    raw = decode_centernet(heatmap, ltrb, spec)

    assert raw.class_ids.tolist() == [1]
    np.testing.assert_allclose(raw.scores, [0.9])
    np.testing.assert_allclose(raw.boxes_xyxy, [[66, 26, 114, 74]])
    assert len(decode_centernet(heatmap, ltrb, spec, score_threshold=0.1).scores) == 2


def test_box_voting_averages_the_boxes_around_a_peak_by_their_scores() -> None:
    heatmap = np.zeros((8, 8, 1), np.float32)
    ltrb = np.zeros((8, 8, 4), np.float32)
    heatmap[0, 0, 0], heatmap[0, 1, 0] = 0.9, 0.45  # a peak in the corner and its shoulder
    ltrb[0, 0] = (1, 1, 1, 1)  # cell centre (2, 2): box (-14, -14, 18, 18)
    ltrb[0, 1] = (2, 1, 1, 1)  # cell centre (6, 2): box (-26, -14, 22, 18)
    ltrb[1:, :] = 50.0  # far-off boxes on cells scored 0 get no vote

    alone = decode_centernet(heatmap, ltrb, Decoding(stride=4, box_vote_radius=0))
    voted = decode_centernet(heatmap, ltrb, Decoding(stride=4, box_vote_radius=1))

    np.testing.assert_allclose(alone.boxes_xyxy, [[-14, -14, 18, 18]])
    # (0.9 * box0 + 0.45 * box1) / 1.35: only x_min and x_max differ
    np.testing.assert_allclose(voted.boxes_xyxy, [[-18, -14, 58 / 3, 18]], rtol=1e-5)
    np.testing.assert_allclose(voted.scores, [0.9])  # the score stays the peak's


def test_decode_centernet_caps_detections() -> None:
    spec = Decoding(max_detections=5, score_threshold=0.1)
    heatmap = np.zeros((20, 20, 1), np.float32)
    heatmap[::2, ::2, 0] = np.linspace(0.2, 0.9, 100).reshape(10, 10)
    ltrb = np.full((20, 20, 4), 0.1, np.float32)

    raw = decode_centernet(heatmap, ltrb, spec)

    assert len(raw.scores) == 5
    np.testing.assert_allclose(raw.scores, np.sort(raw.scores)[::-1])
    assert raw.scores.min() >= 0.85


def test_max_filter_3x3() -> None:
    grid = np.zeros((4, 4, 1), np.float32)
    grid[1, 2, 0] = 1.0

    out = max_filter_3x3(grid)[..., 0]

    assert out[0:3, 1:4].min() == 1.0 and out[3].max() == 0.0 and out[:, 0].max() == 0.0
