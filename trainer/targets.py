"""Training targets for the CenterNet/TTFNet head, in numpy (built per image on the CPU).

For each object: an elliptical Gaussian on its class heatmap, peaked (=1) at the output cell
that holds the box centre; and, on the cells under the Gaussian's core, the box itself as the
regression target, weighted by the Gaussian (TTFNet) so centre cells count most.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

GAUSSIAN_ALPHA = 0.54  # TTFNet: Gaussian extent relative to the box size
REGRESSION_BETA = 0.54  # region of cells that regress the box (same rule, its own extent)
BOX_TARGET_CHANNELS = 5  # x0, y0, x1, y1 (input pixels) + weight


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
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """boxes in input pixels -> heatmap (H, W, C) and box target (H, W, 5) for (H, W)=output."""
    out_h, out_w = output_size
    heatmap = np.zeros((out_h, out_w, num_classes), dtype=np.float32)
    box_target = np.zeros((out_h, out_w, BOX_TARGET_CHANNELS), dtype=np.float32)
    if len(boxes_xyxy) == 0:
        return heatmap, box_target
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
        box_target[mask, :4] = (x0, y0, x1, y1)
        box_target[mask, 4] = weight
    return heatmap, box_target
