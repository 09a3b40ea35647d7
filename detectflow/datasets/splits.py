"""Split names and the rules that assign images to them, for every dataset format.

- `SPLITS` is the one list of split names (`--split` of the command line uses it).
- A dataset that names its splits (VOC `ImageSets/Main/<split>.txt`, COCO
  `instances_<split>.json`, YOLO `data.yaml`) keeps them; `trainval` is `train` ∪ `val` unless
  given, `all` is every image that loaded.
- One that does not is split by `SPLIT_RULE` over its sorted image names (20/20/60). Broken
  entries keep their place in that order, so fixing one never moves the others.
- Training holds out part of its training split for validation by `carve_validation` (a hash
  of the image id: stable when images are added); `validation_items` is that choice as the
  trainer and export make it, so `detectflow evaluate --calibrate` can redo it from a bundle.

Pure Python (no numpy): the command line's argument parser imports it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from detectflow.datasets.dataset import Annotation, Dataset

SPLITS = ("train", "val", "trainval", "test", "all")
LISTED_SPLITS = tuple(s for s in SPLITS if s != "all")  # the ones a dataset can name itself
SPLIT_RULE = "index % 5 == 0 -> test, == 1 -> val, else train"


def unique(ids: Iterable[str]) -> list[str]:
    """`ids` in first-seen order, without repeats."""
    return list(dict.fromkeys(ids))


def rule_split(ids: Iterable[str]) -> dict[str, list[str]]:
    """train/val/trainval/test by `SPLIT_RULE` over the sorted ids."""
    rule: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for i, image_id in enumerate(sorted(ids)):
        rule["test" if i % 5 == 0 else "val" if i % 5 == 1 else "train"].append(image_id)
    return complete_splits(rule)


def complete_splits(listed: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """Fill in what a dataset did not list: trainval = train ∪ val, train = trainval - val."""
    splits = {name: unique(ids) for name, ids in listed.items()}
    if "trainval" not in splits:
        splits["trainval"] = unique(splits.get("train", []) + splits.get("val", []))
    if "train" not in splits:
        val = set(splits.get("val", []))
        splits["train"] = [i for i in splits["trainval"] if i not in val]
    splits.setdefault("val", [])
    splits.setdefault("test", [])
    return splits


def assemble_splits(
    split_ids: Mapping[str, list[str]], annotations: Mapping[str, Annotation]
) -> dict[str, list[Annotation]]:
    """Annotations per split (ids that did not load are left out); `all` sorted by id."""
    items = {
        name: [annotations[i] for i in unique(split_ids[name]) if i in annotations]
        for name in LISTED_SPLITS
    }
    items["all"] = [annotations[i] for i in sorted(annotations)]
    return items


def carve_validation(
    items: list[Annotation], fraction: float
) -> tuple[list[Annotation], list[Annotation]]:
    """(train, val): an image is validation when a hash of its id falls below `fraction`."""

    def bucket(item: Annotation) -> float:
        digest = hashlib.sha256(item.image_id.encode()).hexdigest()
        return int(digest[:8], 16) / 0xFFFFFFFF

    val = [item for item in items if bucket(item) < fraction]
    train = [item for item in items if bucket(item) >= fraction]
    return train, val


def validation_items(
    dataset: Dataset, train_split: str, val_split: str | None, val_fraction: float
) -> list[Annotation]:
    """The validation images of a training run: `val_split` when named, else carved."""
    if val_split:
        return dataset.split(val_split)
    return carve_validation(dataset.split(train_split), val_fraction)[1]
