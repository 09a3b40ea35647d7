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
def _rescale(image: Pixels, boxes: Boxes, scale: float) -> tuple[Pixels, Boxes]:
    if abs(scale - 1.0) < 1e-3:
        return image, boxes
    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resized = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
    factor = np.array([size[0] / w, size[1] / h, size[0] / w, size[1] / h], dtype=np.float32)
    return resized, boxes * factor


def _random_crop(
    image: Pixels, boxes: Boxes, labels: Labels, crop: int, rng: np.random.Generator
) -> Sample:
    h, w = image.shape[:2]
    canvas = np.full((max(h, crop), max(w, crop), 3), PAD_VALUE, dtype=np.uint8)
    canvas[:h, :w] = image
    y0 = int(rng.integers(0, max(h - crop, 0) + 1))
    x0 = int(rng.integers(0, max(w - crop, 0) + 1))
    patch = canvas[y0 : y0 + crop, x0 : x0 + crop]
    shifted = boxes - np.array([x0, y0, x0, y0], dtype=np.float32)
    kept, labels = clip_boxes(shifted, labels, crop, crop)
    return patch, kept, labels


def scale_and_shift(
    image: Pixels, boxes: Boxes, labels: Labels, out_size: tuple[int, int], scale: float,
    shift: tuple[float, float],
) -> Sample:
    """Affine warp: the image's centre goes to the output's centre + `shift` (pixels), scaled
    by `scale`; the rest is grey. out_size is (width, height)."""
    out_w, out_h = out_size
    src_cx, src_cy = image.shape[1] / 2, image.shape[0] / 2
    dst_cx, dst_cy = out_w / 2 + shift[0], out_h / 2 + shift[1]
    # Pillow maps each OUTPUT pixel back to the input: src = (dst - dst_c) / scale + src_c.
    inverse = (1 / scale, 0.0, src_cx - dst_cx / scale, 0.0, 1 / scale, src_cy - dst_cy / scale)
    warped = Image.fromarray(image).transform(
        (out_w, out_h), Image.Transform.AFFINE, inverse, Image.Resampling.BILINEAR,
        fillcolor=(PAD_VALUE,) * 3,
    )
    offset = np.array([src_cx, src_cy, src_cx, src_cy], dtype=np.float32)
    target = np.array([dst_cx, dst_cy, dst_cx, dst_cy], dtype=np.float32)
    moved = (boxes - offset) * np.float32(scale) + target
    kept, labels = clip_boxes(moved, labels, out_w, out_h)
    return np.asarray(warped), kept, labels


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
    if amount <= 0:
        return image
    x = image.astype(np.float32)
    grey = x.mean(axis=2, keepdims=True)
    saturation, contrast, brightness = rng.uniform(1 - amount, 1 + amount, size=3)
    x = grey + (x - grey) * saturation
    x = x.mean() + (x - x.mean()) * contrast
    x = x * brightness
    return np.clip(x, 0, 255).astype(np.uint8)


# Samples --------------------------------------------------------------------------------------
def augment(
    image: Pixels, boxes: Boxes, labels: Labels, config: AugmentConfig,
    rng: np.random.Generator,
) -> Sample:
    """Crop mode: one random training view (crop x crop x 3 uint8, boxes in crop pixels)."""
    assert config.crop is not None, "crop mode needs AugmentConfig.crop"
    image, boxes = _rescale(image, boxes, float(rng.uniform(config.scale_min, config.scale_max)))
    image, boxes, labels = _random_crop(image, boxes, labels, config.crop, rng)
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
