"""Heatmap and ltrb targets (numpy only: no TensorFlow import, fast)."""

from __future__ import annotations

import numpy as np
import pytest

from detectflow.model.decode import decode_centernet
from detectflow.model.manifest import Decoding
from trainer.targets import make_targets


def boxes(*rows: tuple[float, float, float, float]) -> np.ndarray:
    return np.array(rows, dtype=np.float32).reshape(-1, 4)


def test_heatmap_peaks_at_each_box_centre_cell() -> None:
    b = boxes((10, 10, 30, 50), (60, 20, 100, 40))
    heatmap, ltrb = make_targets(b, np.array([0, 1]), (32, 32), 2, stride=4, ltrb_unit_px=16.0)
    assert heatmap.shape == (32, 32, 2) and ltrb.shape == (32, 32, 5)
    assert heatmap[7, 5, 0] == 1.0  # centre (20, 30) / 4 -> cell (y=7, x=5)
    assert heatmap[7, 20, 1] == 1.0  # centre (80, 30) / 4 -> cell (y=7, x=20)
    assert (heatmap == 1.0).sum() == 2
    # cell (7, 5) has its centre at (22, 30): 12 px to the left edge, 20 up, 8 right, 20 down
    np.testing.assert_allclose(ltrb[7, 5, :4], np.array([12, 20, 8, 20]) / 16.0)
    assert ltrb[7, 5, 4] > 0 and ltrb[0, 0, 4] == 0


def test_small_object_wins_the_cells_it_shares_with_a_large_one() -> None:
    big, small = (0, 0, 120, 120), (56, 56, 64, 64)
    _, ltrb = make_targets(boxes(big, small), np.array([0, 0]), (32, 32), 1, stride=4,
                           ltrb_unit_px=16.0)
    np.testing.assert_allclose(ltrb[15, 15, :4], np.array([6, 6, 2, 2]) / 16.0)  # the small one


@pytest.mark.parametrize("stride", [4, 8])
def test_targets_decode_back_to_the_boxes(stride: int) -> None:
    """Perfect predictions (the targets themselves) decode to the ground truth."""
    truth = boxes((12, 8, 44, 40), (70, 60, 120, 100))
    size = (128 // stride, 128 // stride)
    heatmap, ltrb = make_targets(truth, np.array([0, 1]), size, 2, stride=stride,
                                 ltrb_unit_px=16.0)
    spec = Decoding(stride=stride, ltrb_unit_px=16.0, score_threshold=0.5)
    raw = decode_centernet(heatmap, ltrb[..., :4], spec)
    order = np.argsort(raw.class_ids)
    np.testing.assert_allclose(raw.boxes_xyxy[order], truth, atol=1e-4)
