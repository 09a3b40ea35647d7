"""Box helpers. Every array here is `xyxy` in pixels unless a name says otherwise.

`xyxy` = (x_min, y_min, x_max, y_max), with x to the right and y down, in the pixel grid of
the image named by the caller (model input, or original image).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]


def box_area(boxes_xyxy: FloatArray) -> FloatArray:
    wh = np.clip(boxes_xyxy[..., 2:4] - boxes_xyxy[..., 0:2], 0.0, None)
    return (wh[..., 0] * wh[..., 1]).astype(np.float32)


def pairwise_iou(a_xyxy: FloatArray, b_xyxy: FloatArray) -> FloatArray:
    """IoU of every box in `a` (N,4) with every box in `b` (M,4) -> (N,M)."""
    top_left = np.maximum(a_xyxy[:, None, :2], b_xyxy[None, :, :2])
    bottom_right = np.minimum(a_xyxy[:, None, 2:], b_xyxy[None, :, 2:])
    inter_wh = np.clip(bottom_right - top_left, 0.0, None)
    inter = inter_wh[..., 0] * inter_wh[..., 1]
    union = box_area(a_xyxy)[:, None] + box_area(b_xyxy)[None, :] - inter
    return (inter / np.maximum(union, 1e-9)).astype(np.float32)


def nms(boxes_xyxy: FloatArray, scores: FloatArray, iou_threshold: float) -> npt.NDArray[np.int64]:
    """Greedy non-maximum suppression; returns kept indices, best score first."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        if order.size == 1:
            break
        ious = pairwise_iou(boxes_xyxy[best : best + 1], boxes_xyxy[order[1:]])[0]
        order = order[1:][ious <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(
    boxes_xyxy: FloatArray,
    scores: FloatArray,
    class_ids: npt.NDArray[np.int64],
    iou_threshold: float,
) -> npt.NDArray[np.int64]:
    """NMS within each class (boxes of different classes never suppress each other)."""
    if boxes_xyxy.size == 0:
        return np.zeros((0,), dtype=np.int64)
    # Offset each class into its own coordinate island: one NMS pass, no per-class loop.
    # The step is the coordinates' full span, not just their maximum: decoded boxes can
    # reach past the image's left/top edge (negative), and islands must never overlap.
    span = float(boxes_xyxy.max() - boxes_xyxy.min()) + 1.0
    offsets = class_ids.astype(np.float32)[:, None] * span
    return nms(boxes_xyxy + offsets, scores, iou_threshold)


def clip_boxes(boxes_xyxy: FloatArray, width: float, height: float) -> FloatArray:
    out = boxes_xyxy.copy()
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0.0, width)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0.0, height)
    return out
