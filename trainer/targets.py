"""Training targets for the CenterNet/TTFNet head, in numpy (built per image on the CPU).

For each object: an elliptical Gaussian on its class heatmap, peaked (=1) at the output cell
that holds the box centre; and, on the cells under the Gaussian's core, the distances from the
cell's centre to the box's left, top, right and bottom edges (`ltrb`, in units of
`ltrb_unit_px`, what the network's `ltrb` output predicts), weighted by the Gaussian (TTFNet)
so centre cells count most.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

GAUSSIAN_ALPHA = 0.54  # TTFNet: Gaussian extent relative to the box size
REGRESSION_BETA = 0.54  # region of cells that regress the box (same rule, its own extent)
LTRB_TARGET_CHANNELS = 5  # left, top, right, bottom (units of ltrb_unit_px) + weight


def _gaussian(
    height: int, width: int, center: tuple[int, int], sigma: tuple[float, float]
) -> npt.NDArray[np.float32]:
    cy, cx = center
    ys = np.arange(height, dtype=np.float32)[:, None] - cy
    xs = np.arange(width, dtype=np.float32)[None, :] - cx
    sy, sx = max(sigma[0], 1e-3), max(sigma[1], 1e-3)
    g = np.exp(-(xs**2) / (2 * sx**2) - (ys**2) / (2 * sy**2)).astype(np.float32)
    g[g < 1e-4] = 0.0
    return g


def make_targets(
    boxes_xyxy: npt.NDArray[np.float32],
    class_ids: npt.NDArray[np.int64],
    output_size: tuple[int, int],
    num_classes: int,
    stride: int,
    ltrb_unit_px: float,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """`xyxy` boxes in input pixels -> heatmap (H, W, C) and ltrb target (H, W, 5) for the
    output grid (H, W) = `output_size`."""
    out_h, out_w = output_size
    heatmap = np.zeros((out_h, out_w, num_classes), dtype=np.float32)
    ltrb_target = np.zeros((out_h, out_w, LTRB_TARGET_CHANNELS), dtype=np.float32)
    if len(boxes_xyxy) == 0:
        return heatmap, ltrb_target
    centres_x = (np.arange(out_w, dtype=np.float32) + 0.5) * stride
    centres_y = (np.arange(out_h, dtype=np.float32) + 0.5) * stride
    areas = (boxes_xyxy[:, 2] - boxes_xyxy[:, 0]) * (boxes_xyxy[:, 3] - boxes_xyxy[:, 1])
    # Largest first: where regions overlap, the smaller object (drawn later) owns the cell.
    for i in np.argsort(-areas):
        x0, y0, x1, y1 = boxes_xyxy[i]
        w_cells, h_cells = (x1 - x0) / stride, (y1 - y0) / stride
        cx = min(int((x0 + x1) / 2 / stride), out_w - 1)
        cy = min(int((y0 + y1) / 2 / stride), out_h - 1)
        sigma = (GAUSSIAN_ALPHA * h_cells / 6, GAUSSIAN_ALPHA * w_cells / 6)
        g = _gaussian(out_h, out_w, (cy, cx), sigma)
        g[cy, cx] = 1.0
        c = int(class_ids[i])
        heatmap[..., c] = np.maximum(heatmap[..., c], g)

        reg_sigma = (REGRESSION_BETA * h_cells / 6, REGRESSION_BETA * w_cells / 6)
        region = _gaussian(out_h, out_w, (cy, cx), reg_sigma)
        region[cy, cx] = 1.0
        mask = region > 0
        # Weight: normalized within the object, times log(area) so large boxes are not drowned
        # by the many cells of small ones, nor small ones by large ones (TTFNet).
        weight = region[mask] / region[mask].sum() * np.log(max(float(areas[i]), 2.0))
        ys, xs = np.nonzero(mask)
        cx_px, cy_px = centres_x[xs], centres_y[ys]
        edges = np.stack([cx_px - x0, cy_px - y0, x1 - cx_px, y1 - cy_px], axis=-1)
        # A cell centre just outside a thin box would get a negative distance: clamp to 0.
        ltrb_target[ys, xs, :4] = np.maximum(edges, 0.0) / np.float32(ltrb_unit_px)
        ltrb_target[ys, xs, 4] = weight
    return heatmap, ltrb_target
