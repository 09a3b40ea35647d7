"""The one dataset type every reader returns: images with `xyxy` pixel boxes, per split."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from detectflow.datasets.issues import DatasetIssue

Format = Literal["voc", "coco", "yolo"]
# voc: Annotations/ + JPEGImages/; flat: annotations/ + images/ (both Pascal VOC XML);
# coco: a COCO JSON folder or file; yolo: data.yaml + labels/*.txt
Layout = Literal["voc", "flat", "coco", "yolo"]
FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

LAYOUT_FORMATS: dict[str, Format] = {"voc": "voc", "flat": "voc", "coco": "coco", "yolo": "yolo"}


class DatasetError(ValueError):
    """The path is not a dataset we can read at all (as opposed to a defect inside one)."""


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class Annotation:
    """One image and its boxes; `boxes_xyxy` (N, 4) float32 pixels of the upright image.

    `difficult` marks boxes that neither count as missed nor as found (VOC `difficult`, COCO
    `iscrowd`).
    """

    image_path: Path
    image_id: str
    width: int
    height: int
    boxes_xyxy: FloatArray
    class_ids: IntArray
    difficult: BoolArray

    def __len__(self) -> int:
        return int(self.class_ids.shape[0])


@dataclass
class Dataset:
    """A labelled dataset in any supported format; `items` maps split name -> annotations."""

    root: Path
    layout: Layout
    classes: list[str]
    items: dict[str, list[Annotation]]
    issues: list[DatasetIssue] = field(default_factory=list)
    split_source: str = ""

    @property
    def format(self) -> Format:
        return LAYOUT_FORMATS[self.layout]

    def split(self, name: str) -> list[Annotation]:
        """Annotations of a split: train, val, trainval, test or all."""
        if name not in self.items:
            raise KeyError(f"unknown split {name!r}; choose one of {', '.join(self.items)}")
        return self.items[name]
