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


GAUSSIAN_CUTOFF = 1e-4  # values below this are 0: a Gaussian reaches it at 4.29 sigma
CUTOFF_SIGMAS = float(np.sqrt(-2.0 * np.log(GAUSSIAN_CUTOFF)))


def _gaussian_window(
    height: int, width: int, center: tuple[int, int], sigma: tuple[float, float]
) -> tuple[tuple[slice, slice], npt.NDArray[np.float32]]:
    """A Gaussian peaked (= 1) at `center` (row, col), computed only over the window of the
    (height, width) grid where it is >= GAUSSIAN_CUTOFF: (the window's slices, its values)."""
    cy, cx = center
    sy, sx = max(sigma[0], 1e-3), max(sigma[1], 1e-3)
    ry, rx = int(np.ceil(CUTOFF_SIGMAS * sy)), int(np.ceil(CUTOFF_SIGMAS * sx))
    y0, y1 = max(0, cy - ry), min(height, cy + ry + 1)
    x0, x1 = max(0, cx - rx), min(width, cx + rx + 1)
    ys = np.arange(y0, y1, dtype=np.float32)[:, None] - cy
    xs = np.arange(x0, x1, dtype=np.float32)[None, :] - cx
    g = np.exp(-(xs**2) / (2 * sx**2) - (ys**2) / (2 * sy**2)).astype(np.float32)
    g[g < GAUSSIAN_CUTOFF] = 0.0
    g[cy - y0, cx - x0] = 1.0
    return (slice(y0, y1), slice(x0, x1)), g


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
        window, g = _gaussian_window(out_h, out_w, (cy, cx), sigma)
        c = int(class_ids[i])
        heatmap[(*window, c)] = np.maximum(heatmap[(*window, c)], g)

        reg_sigma = (REGRESSION_BETA * h_cells / 6, REGRESSION_BETA * w_cells / 6)
        window, region = _gaussian_window(out_h, out_w, (cy, cx), reg_sigma)
        mask = region > 0
        # Weight: normalized within the object, times log(area) so large boxes are not drowned
        # by the many cells of small ones, nor small ones by large ones (TTFNet).
        weight = region[mask] / region[mask].sum() * np.log(max(float(areas[i]), 2.0))
        ys, xs = np.nonzero(mask)
        ys, xs = ys + window[0].start, xs + window[1].start
        cx_px, cy_px = centres_x[xs], centres_y[ys]
        edges = np.stack([cx_px - x0, cy_px - y0, x1 - cx_px, y1 - cy_px], axis=-1)
        # A cell centre just outside a thin box would get a negative distance: clamp to 0.
        ltrb_target[ys, xs, :4] = np.maximum(edges, 0.0) / np.float32(ltrb_unit_px)
        ltrb_target[ys, xs, 4] = weight
    return heatmap, ltrb_target
