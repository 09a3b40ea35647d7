"""From a dataset folder to the cached train/val image sets the fit consumes."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detectflow.datasets import (
    Annotation,
    carve_validation,
    format_issue_report,
    issue_counts,
    load_dataset,
)
from trainer.cache import CachedSplit, build_cache
from trainer.config import TrainConfig

log = logging.getLogger(__name__)


@dataclass
class TrainingData:
    classes: list[str]
    train: CachedSplit
    val: CachedSplit
    data_hash: str
    issue_counts: dict[str, int] = field(default_factory=dict)
    layout: str = "voc"

    def summary(self) -> dict[str, Any]:
        return {
            "classes": self.classes,
            "layout": self.layout,
            "train_images": len(self.train),
            "val_images": len(self.val),
            "data_hash": self.data_hash,
            "annotation_issues": self.issue_counts,
        }


def split_items(config: TrainConfig) -> tuple[Any, list[Annotation], list[Annotation]]:
    """The dataset, and its training and validation images as `config` splits them."""
    dataset = load_dataset(config.data, classes=config.classes)
    train_items = dataset.split(config.train_split)
    if config.val_split:
        val_items = dataset.split(config.val_split)
    else:
        train_items, val_items = carve_validation(train_items, config.val_fraction)
    if not train_items or not val_items:
        raise ValueError(
            f"{config.data}: need images for training and validation; got {len(train_items)} "
            f"train and {len(val_items)} val. Check the split names and the data folder."
        )
    return dataset, train_items, val_items


def load_training_data(config: TrainConfig, run_dir: Path) -> TrainingData:
    dataset, train_items, val_items = split_items(config)
    if dataset.issues:
        log.warning("annotation problems (fixed or skipped):\n%s",
                    format_issue_report(dataset.issues))
    cache_dir = run_dir / "cache"
    train = build_cache(train_items, config.input_size, cache_dir, workers=config.workers)
    val = build_cache(val_items, config.input_size, cache_dir, workers=config.workers)
    data_hash = hashlib.sha256(f"{train.data_hash}:{val.data_hash}".encode()).hexdigest()[:16]
    return TrainingData(
        classes=list(dataset.classes), train=train, val=val, data_hash=data_hash,
        issue_counts=issue_counts(dataset.issues), layout=dataset.layout,
    )
