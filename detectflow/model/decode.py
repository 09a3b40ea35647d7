"""Turn the network's dense outputs into boxes, in numpy (outside the TFLite graph).

Keeping peak-finding and NMS out of the graph is what keeps int8 conversion reliable
(NMS ops are a known conversion trap) and lets the same decoder serve every export.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from detectflow.boxes import batched_nms
from detectflow.model.manifest import Decoding


@dataclass(frozen=True, slots=True)
class RawDetections:
    """Decoded boxes in model-input pixels (`xyxy`), before mapping to the original image."""

    boxes_xyxy: npt.NDArray[np.float32]
    scores: npt.NDArray[np.float32]
    class_ids: npt.NDArray[np.int64]


def max_filter_3x3(heatmap: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """3x3 max over the two spatial axes of an (H, W, C) array (edge-padded)."""
    padded = np.pad(heatmap, ((1, 1), (1, 1), (0, 0)), mode="edge")
    rows = np.maximum(np.maximum(padded[:-2], padded[1:-1]), padded[2:])
    return np.maximum(np.maximum(rows[:, :-2], rows[:, 1:-1]), rows[:, 2:])


def grid_centers(height: int, width: int, stride: int) -> npt.NDArray[np.float32]:
    """(H, W, 2) centres (x, y) of each output cell, in input pixels."""
    ys, xs = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return ((np.stack([xs, ys], axis=-1) + 0.5) * stride).astype(np.float32)


def ltrb_to_boxes(
    ltrb: npt.NDArray[np.float32], stride: int, unit_px: float
) -> npt.NDArray[np.float32]:
    """(H, W, 4) distances to left/top/right/bottom edges (in `unit_px`) -> (H, W, 4) xyxy."""
    centers = grid_centers(ltrb.shape[0], ltrb.shape[1], stride)
    dist = np.maximum(ltrb, 0.0) * np.float32(unit_px)
    return np.concatenate([centers - dist[..., :2], centers + dist[..., 2:]], axis=-1)


def voted_boxes(
    boxes: npt.NDArray[np.float32],
    heatmap: npt.NDArray[np.float32],
    peaks: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]],
    radius: int,
) -> npt.NDArray[np.float32]:
    """Each peak's box as the mean of the boxes its neighbours predict, weighted by their
    heatmap score for the peak's class: the (2 radius + 1)^2 cells around it (inside the map).

    Every cell near an object's centre was trained to regress the whole box (TTFNet), so the
    neighbours are extra votes on the same box; averaging them cuts the peak cell's own error
    (measured on validation splits: docs/benchmarks.md, "Box voting").
    """
    ys, xs, cls = peaks
    height, width = heatmap.shape[:2]
    steps = np.arange(-radius, radius + 1)
    rows = ys[:, None, None] + steps[None, :, None]  # (N, k, 1)
    cols = xs[:, None, None] + steps[None, None, :]  # (N, 1, k)
    inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    rows, cols = np.clip(rows, 0, height - 1), np.clip(cols, 0, width - 1)
    weights = heatmap[rows, cols, cls[:, None, None]] * inside  # (N, k, k)
    votes = boxes[rows, cols]  # (N, k, k, 4)
    total = (votes * weights[..., None]).sum(axis=(1, 2))
    return (total / np.maximum(weights.sum(axis=(1, 2)), 1e-12)[:, None]).astype(np.float32)


def decode_centernet(
    heatmap: npt.NDArray[np.float32],
    ltrb: npt.NDArray[np.float32],
    spec: Decoding,
    score_threshold: float | None = None,
) -> RawDetections:
    """heatmap (H, W, C) in [0, 1] and ltrb (H, W, 4) for ONE image -> detections."""
    threshold = spec.score_threshold if score_threshold is None else score_threshold
    peaks = (heatmap == max_filter_3x3(heatmap)) & (heatmap >= threshold)
    ys, xs, cls = np.nonzero(peaks)
    scores = heatmap[ys, xs, cls].astype(np.float32)
    if scores.size > spec.max_detections * 4:  # cap NMS work on noisy maps
        top = np.argpartition(-scores, spec.max_detections * 4)[: spec.max_detections * 4]
        ys, xs, cls, scores = ys[top], xs[top], cls[top], scores[top]
    box_map = ltrb_to_boxes(ltrb, spec.stride, spec.ltrb_unit_px)
    if spec.box_vote_radius > 0 and ys.size:
        boxes = voted_boxes(box_map, heatmap, (ys, xs, cls), spec.box_vote_radius)
    else:
        boxes = box_map[ys, xs]
    class_ids = cls.astype(np.int64)
    keep = batched_nms(boxes, scores, class_ids, spec.nms_iou)[: spec.max_detections]
    return RawDetections(boxes[keep], scores[keep], class_ids[keep])
