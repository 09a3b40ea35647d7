"""Training-time augmentation in numpy + Pillow, box-aware: one training sample at a time.

Two ways to make a sample, chosen per dataset by the plan (trainer/plan.py):

- **crop** (`crop` set): one letterboxed image, scale jitter, a random square crop. For many
  small objects per image (cells): small, fast steps that still hold many objects.
- **full** (`crop` None): the whole model input. With probability `mosaic`, a 2x2 mosaic of
  four images around a random centre (YOLO's mosaic); then a random scale and shift (an
  affine warp); with probability `mixup`, blended with a second such sample. Objects as large
  as the frame stay whole, and a small dataset shows each object at many scales and contexts.

Both then flip (and turn, for data with no "up") and jitter colour. Boxes are `xyxy` pixels of
the sample. A box pushed partly out of view keeps its label only if at least
MIN_VISIBLE_FRACTION of it stays in view and both visible sides are at least MIN_SIDE_PX;
it is clipped to the part in view.

Why not albumentations: its last MIT release (2.0.8) is unmaintained (the successor is AGPL),
and this is ~200 lines of numpy/Pillow with the exact box rules above, seeded per batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from detectflow.imaging import PAD_VALUE

MIN_VISIBLE_FRACTION = 0.25  # a box cut by the sample's edge keeps its label if this much shows
MIN_SIDE_PX = 2.0
MIXUP_BETA = 32.0  # mixing ratio ~ Beta(32, 32): close to an even blend (YOLOv5)

Boxes = npt.NDArray[np.float32]
Labels = npt.NDArray[np.int64]
Pixels = npt.NDArray[np.uint8]
Sample = tuple[Pixels, Boxes, Labels]
SampleSource = Callable[[int], Sample]  # index -> (image content, boxes, labels)


@dataclass(frozen=True)
class AugmentConfig:
    crop: int | None = 256  # square training crop (multiple of 32); None: the whole input
    scale_min: float = 0.75
    scale_max: float = 1.25
    translate: float = 0.1  # full mode: random shift, as a fraction of the sample's sides
    mosaic: float = 0.0  # full mode: probability that a sample is a 2x2 mosaic
    mixup: float = 0.0  # full mode: probability to blend with a second sample
    plain_tail: float = 0.1  # last fraction of training without mosaic/mixup (close_mosaic)
    flip_horizontal: bool = True
    flip_vertical: bool = False  # on for data without an "up" (cells, aerial, microscopy)
    rotate90: bool = False  # same: 90° turns (transposes)
    colour: float = 0.15  # brightness/contrast/saturation jitter amplitude

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Boxes ----------------------------------------------------------------------------------------
def _area(boxes: Boxes) -> npt.NDArray[np.float32]:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def clip_boxes(boxes: Boxes, labels: Labels, width: float, height: float) -> tuple[Boxes, Labels]:
    """Clip `xyxy` boxes to the sample; drop those left mostly (or too thinly) out of view."""
    limits = np.array([width, height, width, height], dtype=np.float32)
    clipped = np.clip(boxes, 0.0, limits)
    visible = _area(clipped) / np.maximum(_area(boxes), 1e-6)
    keep = (
        (visible >= MIN_VISIBLE_FRACTION)
        & (clipped[:, 2] - clipped[:, 0] >= MIN_SIDE_PX)
        & (clipped[:, 3] - clipped[:, 1] >= MIN_SIDE_PX)
    )
    return clipped[keep].astype(np.float32), labels[keep]


# Geometry -------------------------------------------------------------------------------------
def place_scaled(
    image: Pixels, out_size: tuple[int, int], scale: tuple[float, float],
    origin: tuple[float, float],
) -> Pixels:
    """`image` scaled by `scale` (x, y) with its top-left corner at `origin` (output pixels;
    may lie outside), on a grey canvas of `out_size` (width, height).

    Only the part in view is resampled, by Pillow's resize from a source box: 2-2.5x faster
    than an affine `transform` of the whole output, the slowest step of a training sample.
    """
    out_w, out_h = out_size
    h, w = image.shape[:2]
    (sx, sy), (ox, oy) = scale, origin
    canvas = np.full((out_h, out_w, 3), PAD_VALUE, dtype=np.uint8)
    u0, v0 = max(0, round(ox)), max(0, round(oy))
    u1, v1 = min(out_w, round(ox + w * sx)), min(out_h, round(oy + h * sy))
    if u1 <= u0 or v1 <= v0:
        return canvas
    box = (max(0.0, (u0 - ox) / sx), max(0.0, (v0 - oy) / sy),
           min(float(w), (u1 - ox) / sx), min(float(h), (v1 - oy) / sy))
    patch = Image.fromarray(image).resize((u1 - u0, v1 - v0), Image.Resampling.BILINEAR, box=box)
    canvas[v0:v1, u0:u1] = np.asarray(patch)
    return canvas


def _random_crop(
    image: Pixels, boxes: Boxes, labels: Labels, crop: int, scale: float,
    rng: np.random.Generator,
) -> Sample:
    """A random `crop` x `crop` window of the image scaled by `scale` (grey where the scaled
    image is smaller than the crop). Only the window is resampled."""
    h, w = image.shape[:2]
    scaled_w, scaled_h = max(1, round(w * scale)), max(1, round(h * scale))
    x0 = int(rng.integers(0, max(scaled_w - crop, 0) + 1))
    y0 = int(rng.integers(0, max(scaled_h - crop, 0) + 1))
    fx, fy = scaled_w / w, scaled_h / h
    patch = place_scaled(image, (crop, crop), (fx, fy), (-x0, -y0))
    factor = np.array([fx, fy, fx, fy], dtype=np.float32)
    shifted = boxes * factor - np.array([x0, y0, x0, y0], dtype=np.float32)
    kept, labels = clip_boxes(shifted, labels, crop, crop)
    return patch, kept, labels


def scale_and_shift(
    image: Pixels, boxes: Boxes, labels: Labels, out_size: tuple[int, int], scale: float,
    shift: tuple[float, float],
) -> Sample:
    """The image's centre goes to the output's centre + `shift` (pixels), scaled by `scale`;
    the rest is grey. out_size is (width, height)."""
    out_w, out_h = out_size
    src_cx, src_cy = image.shape[1] / 2, image.shape[0] / 2
    dst_cx, dst_cy = out_w / 2 + shift[0], out_h / 2 + shift[1]
    origin = (dst_cx - src_cx * scale, dst_cy - src_cy * scale)
    warped = place_scaled(image, out_size, (scale, scale), origin)
    offset = np.array([src_cx, src_cy, src_cx, src_cy], dtype=np.float32)
    target = np.array([dst_cx, dst_cy, dst_cx, dst_cy], dtype=np.float32)
    moved = (boxes - offset) * np.float32(scale) + target
    kept, labels = clip_boxes(moved, labels, out_w, out_h)
    return warped, kept, labels


def mosaic(sources: list[Sample], out_size: tuple[int, int], rng: np.random.Generator) -> Sample:
    """Four images in a 2x2 canvas (twice the output size) around a random centre: image 0 ends
    at the centre from the top-left, 1 from the top-right, 2 bottom-left, 3 bottom-right."""
    out_w, out_h = out_size
    canvas = np.full((2 * out_h, 2 * out_w, 3), PAD_VALUE, dtype=np.uint8)
    cx = int(rng.uniform(0.5, 1.5) * out_w)
    cy = int(rng.uniform(0.5, 1.5) * out_h)
    all_boxes, all_labels = [], []
    for quadrant, (image, boxes, labels) in enumerate(sources):
        h, w = image.shape[:2]
        right, below = quadrant % 2 == 1, quadrant >= 2
        x0, y0 = (cx if right else cx - w), (cy if below else cy - h)
        # Paste the part of the image that falls inside the canvas.
        cx0, cy0 = max(x0, 0), max(y0, 0)
        cx1, cy1 = min(x0 + w, 2 * out_w), min(y0 + h, 2 * out_h)
        if cx1 > cx0 and cy1 > cy0:
            canvas[cy0:cy1, cx0:cx1] = image[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
        offset = np.array([x0, y0, x0, y0], dtype=np.float32)
        # Clip to this image's visible tile (the others cover the rest of the canvas).
        tile = np.array([cx0, cy0, cx1, cy1], dtype=np.float32)
        moved = np.clip(boxes + offset, tile[[0, 1, 0, 1]], tile[[2, 3, 2, 3]])
        keep = _area(moved) / np.maximum(_area(boxes), 1e-6) >= MIN_VISIBLE_FRACTION
        all_boxes.append(moved[keep])
        all_labels.append(labels[keep])
    return canvas, np.concatenate(all_boxes).astype(np.float32), np.concatenate(all_labels)


def flip_turn(
    image: Pixels, boxes: Boxes, config: AugmentConfig, rng: np.random.Generator,
    turn: bool = True,
) -> tuple[Pixels, Boxes]:
    """Random horizontal/vertical flips; with `turn`, a random transpose (a 90° turn + flip)."""
    h, w = image.shape[:2]
    if config.flip_horizontal and rng.random() < 0.5:
        image = image[:, ::-1]
        boxes = np.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], 1)
    if config.flip_vertical and rng.random() < 0.5:
        image = image[::-1]
        boxes = np.stack([boxes[:, 0], h - boxes[:, 3], boxes[:, 2], h - boxes[:, 1]], 1)
    if turn and config.rotate90 and rng.random() < 0.5:
        image = image.transpose(1, 0, 2)
        boxes = boxes[:, [1, 0, 3, 2]]
    return np.ascontiguousarray(image), boxes.astype(np.float32).reshape(-1, 4)


def colour_jitter(image: Pixels, amount: float, rng: np.random.Generator) -> Pixels:
    """Random saturation, contrast (around the image's mean) and brightness, each a factor in
    [1 - amount, 1 + amount]. All three are linear in RGB, so together they are one 3x4 colour
    matrix, which Pillow applies in C (~10x faster than the float arithmetic in numpy)."""
    if amount <= 0:
        return image
    saturation, contrast, brightness = rng.uniform(1 - amount, 1 + amount, size=3)
    # saturation: x -> grey + s (x - grey), grey = the pixel's channel mean
    mixing = saturation * np.eye(3) + (1 - saturation) / 3 * np.ones((3, 3))
    mean = float(image[::4, ::4].mean())  # the image's mean, from every 16th pixel
    # then contrast and brightness: x -> b (c (x - mean) + mean)
    matrix = brightness * contrast * mixing
    offset = brightness * (1 - contrast) * mean
    coefficients = tuple(float(v) for row in matrix for v in (*row, offset))
    return np.asarray(Image.fromarray(image).convert("RGB", coefficients))


# Samples --------------------------------------------------------------------------------------
def augment(
    image: Pixels, boxes: Boxes, labels: Labels, config: AugmentConfig,
    rng: np.random.Generator,
) -> Sample:
    """Crop mode: one random training view (crop x crop x 3 uint8, boxes in crop pixels)."""
    assert config.crop is not None, "crop mode needs AugmentConfig.crop"
    scale = float(rng.uniform(config.scale_min, config.scale_max))
    image, boxes, labels = _random_crop(image, boxes, labels, config.crop, scale, rng)
    image, boxes = flip_turn(image, boxes, config, rng)
    return colour_jitter(image, config.colour, rng), boxes, labels


def full_sample(
    source: SampleSource, index: int, count: int, out_size: tuple[int, int],
    config: AugmentConfig, rng: np.random.Generator, strong: bool = True,
) -> Sample:
    """Full mode: a whole-input training sample (out_size = (width, height) of the model input)
    built from image `index` of `count` (and, for a mosaic or mixup, random others)."""
    image, boxes, labels = _geometric(source, index, count, out_size, config, rng, strong)
    if strong and config.mixup > 0 and rng.random() < config.mixup:
        other = int(rng.integers(0, count))
        image2, boxes2, labels2 = _geometric(source, other, count, out_size, config, rng, strong)
        ratio = float(rng.beta(MIXUP_BETA, MIXUP_BETA))
        image = (image * ratio + image2 * (1 - ratio)).astype(np.uint8)
        boxes = np.concatenate([boxes, boxes2])
        labels = np.concatenate([labels, labels2])
    image, boxes = flip_turn(image, boxes, config, rng, turn=False)
    return colour_jitter(image, config.colour, rng), boxes, labels


def _geometric(
    source: SampleSource, index: int, count: int, out_size: tuple[int, int],
    config: AugmentConfig, rng: np.random.Generator, strong: bool,
) -> Sample:
    def turned(i: int) -> Sample:
        image, boxes, labels = source(i)
        if config.rotate90 and rng.random() < 0.5:  # before placement: any canvas shape works
            return np.ascontiguousarray(image.transpose(1, 0, 2)), boxes[:, [1, 0, 3, 2]], labels
        return image, boxes, labels

    if strong and config.mosaic > 0 and rng.random() < config.mosaic:
        picks = [index, *(int(i) for i in rng.integers(0, count, size=3))]
        image, boxes, labels = mosaic([turned(i) for i in picks], out_size, rng)
    else:
        image, boxes, labels = turned(index)
    scale = float(rng.uniform(config.scale_min, config.scale_max))
    limit = np.array(out_size, dtype=np.float32) * config.translate
    shift = rng.uniform(-limit, limit)
    return scale_and_shift(image, boxes, labels, out_size, scale, (shift[0], shift[1]))
