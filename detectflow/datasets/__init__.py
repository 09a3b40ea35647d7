"""Labelled datasets as users bring them (Pascal VOC, COCO JSON, YOLO txt), read into one
`Dataset` of `Annotation`s with every defect repaired or skipped and reported, and written
back out as labels (`writers`). Used by the trainer and the command line; the runtime core
never imports it.

    from detectflow.datasets import load_dataset
    dataset = load_dataset("data/my_set", classes=None)   # format found from the files
    dataset.split("train")                                 # list[Annotation], xyxy pixels

Names are imported lazily (numpy, Pillow and PyYAML load on first use), so the command
line's argument parser can read `SPLITS` cheaply.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from detectflow.datasets.dataset import Annotation, Dataset, DatasetError, Format
    from detectflow.datasets.issues import DatasetIssue, format_issue_report, issue_counts
    from detectflow.datasets.loader import detect_format, load_dataset
    from detectflow.datasets.splits import SPLITS, carve_validation, validation_items
    from detectflow.datasets.writers import LABEL_FORMATS, LabelWriter

_EXPORTS = {
    "Annotation": "dataset",
    "Dataset": "dataset",
    "DatasetError": "dataset",
    "Format": "dataset",
    "DatasetIssue": "issues",
    "format_issue_report": "issues",
    "issue_counts": "issues",
    "detect_format": "loader",
    "load_dataset": "loader",
    "SPLITS": "splits",
    "carve_validation": "splits",
    "validation_items": "splits",
    "LABEL_FORMATS": "writers",
    "LabelWriter": "writers",
}

__all__ = [
    "LABEL_FORMATS",
    "SPLITS",
    "Annotation",
    "Dataset",
    "DatasetError",
    "DatasetIssue",
    "Format",
    "LabelWriter",
    "carve_validation",
    "detect_format",
    "format_issue_report",
    "issue_counts",
    "load_dataset",
    "validation_items",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
