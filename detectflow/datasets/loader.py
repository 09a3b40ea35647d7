"""`load_dataset`: one entry point for every format; the format is found from the files.

- Pascal VOC: `Annotations/` + `JPEGImages/`, or `annotations/*.xml` + `images/` (`voc`)
- YOLO: `data.yaml` (or the YAML file itself) (`yolo`)
- COCO: `annotations/instances_<split>.json`, `<split>/_annotations.coco.json`, one `.json`
  in the folder, or the `.json` file itself (`coco`)

Checked in that order, so a folder is read the same way every time.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from detectflow.datasets.coco import find_coco, load_coco
from detectflow.datasets.dataset import Dataset, DatasetError, Format
from detectflow.datasets.voc import is_voc, load_voc
from detectflow.datasets.yolo import find_yolo, load_yolo

EXPECTED = (
    "Pascal VOC (Annotations/ + JPEGImages/, or annotations/*.xml + images/), "
    "YOLO (data.yaml with names and train/val), or COCO (annotations/instances_<split>.json, "
    "<split>/_annotations.coco.json, or a .json file)"
)


def detect_format(path: str | Path) -> Format:
    """Which format the dataset at `path` is in; DatasetError when none fits."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path} does not exist.")
    if path.is_dir() and is_voc(path):
        return "voc"
    if find_yolo(path) is not None:
        return "yolo"
    if find_coco(path) is not None:
        return "coco"
    raise DatasetError(f"{path} is not a dataset detectflow reads: expected {EXPECTED}.")


def load_dataset(
    path: str | Path, classes: Sequence[str] | None = None, data_format: Format | None = None
) -> Dataset:
    """Read the dataset at `path` (folder, or a COCO .json / YOLO .yaml file).

    `classes` fixes the class list and its order (boxes of other classes are reported and
    skipped); default: the names the annotations use. `data_format` skips detection.
    """
    found = data_format or detect_format(path)
    reader = {"voc": load_voc, "coco": load_coco, "yolo": load_yolo}[found]
    return reader(path, classes)
