"""Training-time augmentation in numpy: scale jitter + random crop, flips, 90° turns, colour.

Works on one letterboxed uint8 image and its `xyxy` boxes (input pixels) at a time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from detectflow.imaging import PAD_VALUE

MIN_VISIBLE_FRACTION = 0.35  # a cropped-off box keeps its label only if this much stays in view
MIN_SIDE_PX = 2.0


@dataclass(frozen=True)
class AugmentConfig:
    crop: int = 256  # square training crop (multiple of 32)
    scale_min: float = 0.75
    scale_max: float = 1.25
    flip_horizontal: bool = True
    flip_vertical: bool = False  # on for data without an "up" (cells, aerial, microscopy)
    rotate90: bool = False  # same: 90° turns (transposes)
    colour: float = 0.15  # brightness/contrast/saturation jitter amplitude

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Boxes = npt.NDArray[np.float32]
Pixels = npt.NDArray[np.uint8]


def _rescale(image: Pixels, boxes: Boxes, scale: float) -> tuple[Pixels, Boxes]:
    if abs(scale - 1.0) < 1e-3:
        return image, boxes
    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resized = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
    factor = np.array([size[0] / w, size[1] / h, size[0] / w, size[1] / h], dtype=np.float32)
    return resized, boxes * factor


def _random_crop(
    image: Pixels, boxes: Boxes, labels: npt.NDArray[np.int64], crop: int,
    rng: np.random.Generator,
) -> tuple[Pixels, Boxes, npt.NDArray[np.int64]]:
    h, w = image.shape[:2]
    canvas = np.full((max(h, crop), max(w, crop), 3), PAD_VALUE, dtype=np.uint8)
    canvas[:h, :w] = image
    y0 = int(rng.integers(0, max(h - crop, 0) + 1))
    x0 = int(rng.integers(0, max(w - crop, 0) + 1))
    patch = canvas[y0 : y0 + crop, x0 : x0 + crop]
    shifted = boxes - np.array([x0, y0, x0, y0], dtype=np.float32)
    clipped = np.clip(shifted, 0.0, float(crop))
    area = lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])  # noqa: E731
    visible = area(clipped) / np.maximum(area(shifted), 1e-6)
    keep = (
        (visible >= MIN_VISIBLE_FRACTION)
        & (clipped[:, 2] - clipped[:, 0] >= MIN_SIDE_PX)
        & (clipped[:, 3] - clipped[:, 1] >= MIN_SIDE_PX)
    )
    return patch, clipped[keep], labels[keep]


def _flip_turn(
    image: Pixels, boxes: Boxes, config: AugmentConfig, rng: np.random.Generator
) -> tuple[Pixels, Boxes]:
    size = image.shape[0]  # square crop
    if config.flip_horizontal and rng.random() < 0.5:
        image = image[:, ::-1]
        boxes = np.stack([size - boxes[:, 2], boxes[:, 1], size - boxes[:, 0], boxes[:, 3]], 1)
    if config.flip_vertical and rng.random() < 0.5:
        image = image[::-1]
        boxes = np.stack([boxes[:, 0], size - boxes[:, 3], boxes[:, 2], size - boxes[:, 1]], 1)
    if config.rotate90 and rng.random() < 0.5:
        image = image.transpose(1, 0, 2)
        boxes = boxes[:, [1, 0, 3, 2]]
    return np.ascontiguousarray(image), boxes.astype(np.float32)


def _colour(image: Pixels, amount: float, rng: np.random.Generator) -> Pixels:
    if amount <= 0:
        return image
    x = image.astype(np.float32)
    grey = x.mean(axis=2, keepdims=True)
    saturation, contrast, brightness = rng.uniform(1 - amount, 1 + amount, size=3)
    x = grey + (x - grey) * saturation
    x = x.mean() + (x - x.mean()) * contrast
    x = x * brightness
    return np.clip(x, 0, 255).astype(np.uint8)


def augment(
    image: Pixels,
    boxes: Boxes,
    labels: npt.NDArray[np.int64],
    config: AugmentConfig,
    rng: np.random.Generator,
) -> tuple[Pixels, Boxes, npt.NDArray[np.int64]]:
    """One random training view: (crop x crop x 3 uint8, boxes in crop pixels, labels)."""
    image, boxes = _rescale(image, boxes, float(rng.uniform(config.scale_min, config.scale_max)))
    image, boxes, labels = _random_crop(image, boxes, labels, config.crop, rng)
    image, boxes = _flip_turn(image, boxes, config, rng)
    return _colour(image, config.colour, rng), boxes, labels
