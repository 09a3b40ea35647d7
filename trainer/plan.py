"""A training recipe fitted to the data: look at the labelled images, choose the settings.

`profile_dataset` measures what matters for a detector of this kind: image sizes and aspect,
object sizes relative to the image (per class: the smallest class decides the resolution),
objects per image, number of images and classes. `plan_training` turns that into the input
size, the output stride, the way samples are made (random crops for many small objects, whole
images with mosaic for large ones), augmentation strength and the time budget, with a
one-line reason for each choice. `detectflow train` prints the plan, stores it in the run's
config (and so in the bundle's manifest), and every choice can be overridden by a flag.

The rules, and the runs that set their thresholds, are in docs/benchmarks.md ("Training
recipe"). In short:
- resolution: the median object of the smallest class should span >= MIN_OBJECT_PX input
  pixels (a CenterNet peak needs a few output cells), never above the images' own size;
- stride 8 when even that class is large (>= STRIDE8_MIN_OBJECT_PX): half the neck and head
  work, and each output cell sees twice the context; stride 4 otherwise;
- crops when objects are small next to a crop and the input holds several crops: more
  objects per step for the same compute; whole images (mosaic) otherwise, so large objects
  are never cut by the crop;
- the budget: TIME_BUDGET_MINUTES of wall time (the cosine schedule anneals to it), at most
  MAX_EPOCHS passes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from trainer.augment import AugmentConfig
from trainer.config import TrainConfig
from trainer.data import split_items

if TYPE_CHECKING:
    from detectflow.datasets import Annotation

MIN_OBJECT_PX = 30.0  # median side of the smallest class's objects, in input pixels
STRIDE8_MIN_OBJECT_PX = 64.0
LONG_SIDES = (320, 384, 448, 512, 576, 640)  # candidate input long sides (multiples of 32)
CROP = 256
CROP_MAX_OBJECT_FRACTION = 0.7  # crops only if the large objects (p95) fit 70 % of a crop
TIME_BUDGET_MINUTES = 24.0
MAX_EPOCHS = 300
EVAL_EVERY_STEPS = 50  # validate about every 50 optimizer steps
DENSE_OBJECTS = 8  # median objects per image from which a scene counts as dense
ISOTROPIC_WIDE = (0.35, 0.65)  # share of boxes wider than tall, for "as often wide as tall"
SMALL_DATASET = 1000  # images: below this, mixup on top of mosaic (Ultralytics scratch-high)
WIDTH = 1.25  # channel multiplier: ~0.43 M parameters, int8 ~0.6 MB, ~6 ms per image on one core


@dataclass(frozen=True)
class DataProfile:
    """What the plan looks at; sizes relative to the image are sqrt(box area / image area)."""

    images: int
    classes: list[str]
    median_image_size: tuple[int, int]  # (width, height) pixels
    objects_per_image: tuple[float, float]  # median, p95
    object_size: dict[str, float]  # p5 / p50 / p95 of the relative object size, all classes
    class_median_size: dict[str, float]  # per class: median relative size
    largest_side: float  # p95 of the larger box side relative to the image's same side
    wide_share: float  # share of boxes wider than tall (squares count half)

    @property
    def aspect(self) -> float:
        width, height = self.median_image_size
        return width / max(height, 1)

    @property
    def smallest_class_size(self) -> float:
        return min(self.class_median_size.values(), default=self.object_size["p50"])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainingPlan:
    input_size: tuple[int, int]
    stride: int
    width: float
    augment: AugmentConfig
    max_minutes: float
    epochs: int
    eval_every: int
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "augment": self.augment.to_dict()}


def profile_dataset(items: Sequence[Annotation], classes: Sequence[str]) -> DataProfile:
    if not items:
        raise ValueError("no labelled images to plan from")
    sizes = np.array([(a.width, a.height) for a in items], dtype=np.float64)
    relative, largest, labels, wide = [], [], [], []
    for a in items:
        box_w = a.boxes_xyxy[:, 2] - a.boxes_xyxy[:, 0]
        box_h = a.boxes_xyxy[:, 3] - a.boxes_xyxy[:, 1]
        wide.append((box_w > box_h) + 0.5 * (box_w == box_h))  # a square counts half
        relative.append(np.sqrt(box_w * box_h / (a.width * a.height)))
        largest.append(np.maximum(box_w / a.width, box_h / a.height))
        labels.append(a.class_ids)
    rel, big, ids = np.concatenate(relative), np.concatenate(largest), np.concatenate(labels)
    counts = np.array([len(a) for a in items])
    if rel.size == 0:
        raise ValueError("the training split has no boxes")
    per_class = {name: round(float(np.median(rel[ids == c])), 4)
                 for c, name in enumerate(classes) if np.any(ids == c)}
    return DataProfile(
        images=len(items),
        classes=list(classes),
        median_image_size=(int(np.median(sizes[:, 0])), int(np.median(sizes[:, 1]))),
        objects_per_image=(float(np.median(counts)), float(np.percentile(counts, 95))),
        object_size={f"p{q}": round(float(np.percentile(rel, q)), 4) for q in (5, 50, 95)},
        class_median_size=per_class,
        largest_side=round(float(np.percentile(big, 95)), 4),
        wide_share=round(float(np.mean(np.concatenate(wide))), 4),
    )


def _input_for(long_side: int, aspect: float) -> tuple[int, int]:
    """(width, height), both multiples of 32, with the long side `long_side`."""
    short = max(32, round(long_side / max(aspect, 1 / aspect) / 32) * 32)
    return (long_side, short) if aspect >= 1 else (short, long_side)


def _object_px(relative: float, size: tuple[int, int]) -> float:
    return relative * math.sqrt(size[0] * size[1])


def choose_input_size(profile: DataProfile) -> tuple[tuple[int, int], str]:
    native_long = max(profile.median_image_size)
    allowed = [s for s in LONG_SIDES if s <= max(native_long, LONG_SIDES[0]) + 31]
    smallest = profile.smallest_class_size
    for long_side in allowed:
        size = _input_for(long_side, profile.aspect)
        if _object_px(smallest, size) >= MIN_OBJECT_PX:
            break
    px = _object_px(smallest, size)
    reason = (f"input {size[0]}x{size[1]}: the smallest class's median object spans {px:.0f} px"
              f" there (goal >= {MIN_OBJECT_PX:.0f}; images ~{profile.median_image_size[0]}x"
              f"{profile.median_image_size[1]}, aspect {profile.aspect:.2f})")
    return size, reason


def plan_training(profile: DataProfile) -> TrainingPlan:
    size, size_reason = choose_input_size(profile)
    smallest_px = _object_px(profile.smallest_class_size, size)
    stride = 8 if smallest_px >= STRIDE8_MIN_OBJECT_PX else 4
    large_px = profile.largest_side * max(size)
    crop_fits = large_px <= CROP_MAX_OBJECT_FRACTION * CROP and size[0] * size[1] >= 2 * CROP**2
    augment = _augment_for(profile, crop_fits)
    sample_images = 16
    steps = max(1, profile.images // sample_images)
    eval_every = max(1, round(EVAL_EVERY_STEPS / steps))
    reasons = [
        size_reason,
        f"stride {stride}: smallest class's objects {smallest_px:.0f} px "
        f"({'>=' if stride == 8 else '<'} {STRIDE8_MIN_OBJECT_PX:.0f} px for stride 8)",
        (f"samples: random {CROP}x{CROP} crops (large objects, p95 {large_px:.0f} px, fit a "
         "crop; more objects per step)") if crop_fits else
        (f"samples: whole images with mosaic {augment.mosaic:.0%} and mixup {augment.mixup:.0%}"
         f" (large objects, p95 {large_px:.0f} px, would be cut by a {CROP} px crop)"),
        f"scale jitter {augment.scale_min}-{augment.scale_max}, horizontal flips",
        _turns_reason(profile, augment.rotate90),
        f"width {WIDTH}: the network's channel multiplier (~0.43 M parameters)",
        f"budget {TIME_BUDGET_MINUTES:.0f} min wall time (cosine schedule annealed to it), at most"
        f" {MAX_EPOCHS} epochs; validation every {eval_every} epoch(s) (~{EVAL_EVERY_STEPS} steps)",
    ]
    return TrainingPlan(
        input_size=size, stride=stride, width=WIDTH, augment=augment,
        max_minutes=TIME_BUDGET_MINUTES, epochs=MAX_EPOCHS, eval_every=eval_every,
        reasons=reasons,
    )


def has_no_up(profile: DataProfile) -> bool:
    """Dense scenes of objects as often wide as tall: top-down imagery (microscopy, aerial)
    where a flipped or turned image is as real as the original. Street scenes, shelves and
    crowds are dense too, but their objects have a side (cars wide, people tall)."""
    low, high = ISOTROPIC_WIDE
    return profile.objects_per_image[0] >= DENSE_OBJECTS and low <= profile.wide_share <= high


def _turns_reason(profile: DataProfile, turns: bool) -> str:
    scene = (f"{profile.objects_per_image[0]:g} objects per image, {profile.wide_share:.0%} "
             "of them wider than tall")
    if turns:
        return (f"vertical flips and 90-degree turns: {scene}: dense and isotropic, like "
                "microscopy or aerial images, which have no 'up'")
    return (f"no vertical flips or 90-degree turns: {scene} (they are used for dense scenes "
            f"of >= {DENSE_OBJECTS} objects as often wide as tall: images with no 'up')")


def _augment_for(profile: DataProfile, crops: bool) -> AugmentConfig:
    turns = has_no_up(profile)
    if crops:
        return AugmentConfig(crop=CROP, scale_min=0.75, scale_max=1.25, flip_vertical=turns,
                             rotate90=turns)
    mixup = 0.1 if profile.images < SMALL_DATASET else 0.0
    return AugmentConfig(crop=None, scale_min=0.5, scale_max=1.5, mosaic=1.0, mixup=mixup,
                         flip_vertical=turns, rotate90=turns)


def format_plan(profile: DataProfile, plan: TrainingPlan) -> str:
    """The plan as a user reads it before the run starts."""
    p = profile
    lines = [
        f"data: {p.images} training images, {len(p.classes)} classes "
        f"({', '.join(p.classes[:8])}{', ...' if len(p.classes) > 8 else ''}), "
        f"{p.objects_per_image[0]:g} objects per image (p95 {p.objects_per_image[1]:g}), "
        f"object size / image size p5 {p.object_size['p5']:.3f}, median "
        f"{p.object_size['p50']:.3f}, p95 {p.object_size['p95']:.3f}",
        "plan (override any choice with its flag):",
        *(f"  - {reason}" for reason in plan.reasons),
    ]
    return "\n".join(lines)


def planned_config(base: TrainConfig, overrides: dict[str, Any]) -> tuple[TrainConfig, str]:
    """`base` (data and split settings) completed by the plan for its training images; any
    key in `overrides` (TrainConfig fields, or AugmentConfig fields under "augment") wins.
    Returns the config and the plan as text for the user."""
    dataset, train_items, _ = split_items(base)
    profile = profile_dataset(train_items, dataset.classes)
    plan = plan_training(profile)
    augment = dataclasses.replace(plan.augment, **overrides.pop("augment", {}))
    chosen: dict[str, Any] = {
        "input_width": plan.input_size[0], "input_height": plan.input_size[1],
        "stride": plan.stride, "width": plan.width, "max_minutes": plan.max_minutes,
        "epochs": plan.epochs, "eval_every": plan.eval_every,
    }
    overridden = sorted(k for k in overrides if k in chosen)
    config = dataclasses.replace(
        base, **{**chosen, **overrides}, augment=augment,
        plan={"profile": profile.to_dict(), "plan": plan.to_dict(), "overridden": overridden},
    )
    text = format_plan(profile, plan)
    if overridden:
        text += "\n  overridden by flags: " + ", ".join(overridden)
    return config, text
