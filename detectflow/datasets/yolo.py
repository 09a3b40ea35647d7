"""Read YOLO detection datasets (Ultralytics `data.yaml` + one `.txt` label file per image).

`data.yaml` (or the only `.yaml` in the folder holding `names`; or the YAML file itself):
    path: .               # dataset root, relative to the YAML's folder (default: that folder)
    train: images/train   # a folder of images, a .txt list of image paths, or a list of those
    val: images/val
    test: images/test     # optional
    names: [a, b]         # or {0: a, 1: b}

Labels are found as Ultralytics finds them: the last `/images/` of an image's path becomes
`/labels/` and the suffix `.txt` (no such folder: the `.txt` beside the image). Each line is
`class x_center y_center width height`, normalized to the upright image; a line with more
pairs is a polygon, taken as its bounding box. An image without a label file has no objects
(a background image, as in Ultralytics).

Splits are the YAML's; `trainval` is train ∪ val. The default class list is the names the
labels use, in `names` order. Defects are fixed, clipped or skipped as for VOC (`records`),
plus YOLO's own: class indices outside `names`, repeated lines (dropped, as Ultralytics does).
Issues name the label file, relative to the dataset root.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detectflow.datasets.dataset import Annotation, Dataset, DatasetError
from detectflow.datasets.issues import DatasetIssue
from detectflow.datasets.records import (
    IMAGE_SUFFIXES,
    RawObject,
    add_issue,
    build_annotation,
    class_list,
    image_ids,
    open_image,
)
from detectflow.datasets.splits import LISTED_SPLITS, assemble_splits, complete_splits

log = logging.getLogger(__name__)

YAML_NAMES = ("data.yaml", "data.yml")


@dataclass
class YoloConfig:
    yaml_path: Path
    root: Path
    names: list[str]
    splits: dict[str, list[Path]]  # split -> image files


@dataclass(frozen=True)
class _Row:
    """One label line: class index (None: not a number), values (None: wrong count)."""

    number: int
    index: int | None
    values: tuple[float, ...] | None
    first_token: str


@dataclass
class _Label:
    image: Path
    label: Path
    rows: list[_Row]


def find_yolo(path: Path) -> Path | None:
    """The dataset's YAML file: `path` itself, `data.yaml`, or the folder's only YAML."""
    if path.is_file():
        return path if path.suffix.lower() in (".yaml", ".yml") else None
    if not path.is_dir():
        return None
    for name in YAML_NAMES:
        if (path / name).is_file():
            return path / name
    found = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
    return found[0] if len(found) == 1 else None


def read_config(yaml_path: Path) -> YoloConfig:
    import yaml

    try:
        data = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise DatasetError(f"{yaml_path}: not readable YAML: {err}") from err
    if not isinstance(data, dict) or "names" not in data:
        raise DatasetError(f"{yaml_path}: a YOLO data.yaml needs `names` (and train/val).")
    names = _names(data["names"], yaml_path)
    root = _root(yaml_path, data.get("path"))
    splits = {
        name: [p for entry in _entries(data.get(name)) for p in _images(root, entry)]
        for name in LISTED_SPLITS if data.get(name)
    }
    if not splits:
        raise DatasetError(f"{yaml_path}: names no split (train:, val:, test:).")
    return YoloConfig(yaml_path, root, names, splits)


def _names(value: Any, yaml_path: Path) -> list[str]:
    if isinstance(value, dict):
        try:
            ordered = sorted((int(k), v) for k, v in value.items())
        except (TypeError, ValueError) as err:
            raise DatasetError(f"{yaml_path}: `names` keys must be class indices") from err
        if [k for k, _ in ordered] != list(range(len(ordered))):
            raise DatasetError(f"{yaml_path}: `names` indices must be 0..{len(ordered) - 1}")
        value = [v for _, v in ordered]
    if not isinstance(value, list) or not value:
        raise DatasetError(f"{yaml_path}: `names` must be a list or an index -> name map")
    return [str(v) for v in value]


def _root(yaml_path: Path, path: Any) -> Path:
    """`path:` relative to the YAML's folder; a stale one (dataset moved) -> that folder."""
    here = yaml_path.parent
    if not path:
        return here
    root = Path(str(path)).expanduser()
    root = root if root.is_absolute() else here / root
    return root if root.is_dir() else here


def _entries(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _images(root: Path, entry: str) -> list[Path]:
    """The images an entry names: a folder (recursive), or a .txt list of paths."""
    path = _resolve(root, entry)
    if path.is_dir():
        return sorted(p for p in path.rglob("*")
                      if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if path.is_file() and path.suffix.lower() == ".txt":
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        return [_resolve(path.parent, line) for line in lines]
    raise DatasetError(f"{root}: split entry {entry!r} is neither a folder nor a .txt list")


def _resolve(root: Path, entry: str) -> Path:
    # Roboflow writes "../train/images" for folders that sit inside the dataset root.
    direct = Path(entry) if Path(entry).is_absolute() else root / entry
    if not direct.exists() and entry.startswith("../"):
        return root / entry.removeprefix("../")
    return direct


def label_path(image: Path) -> Path:
    """Ultralytics' rule: the last /images/ -> /labels/, suffix -> .txt."""
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return image.with_suffix(".txt")


def is_yolo(path: Path) -> bool:
    return find_yolo(path) is not None


def load_yolo(path: str | Path, classes: Sequence[str] | None = None) -> Dataset:
    """Read a YOLO dataset (its folder or its YAML file); see the module docstring."""
    path = Path(path)
    yaml_path = find_yolo(path)
    if yaml_path is None:
        raise DatasetError(f"{path} is not a YOLO dataset: no data.yaml.")
    config = read_config(yaml_path)
    issues: list[DatasetIssue] = []
    files = list(dict.fromkeys(p for images in config.splits.values() for p in images))
    labels = {p: _read_label(p, config.root, issues) for p in files}
    used = {config.names[row.index] for label in labels.values() if label
            for row in label.rows if row.index is not None and 0 <= row.index < len(config.names)}
    default = dict.fromkeys(n.strip() for n in config.names if n in used and n.strip())
    class_names = class_list(list(default), classes)
    ids = image_ids([_relative(p, config.root) for p in files])
    annotations: dict[str, Annotation] = {}
    for image, label in labels.items():
        if label is not None:
            built = _annotation(label, config, ids[_relative(image, config.root)], class_names,
                                issues)
            if built is not None:
                annotations[built.image_id] = built
    split_ids = {name: [ids[_relative(p, config.root)] for p in images]
                 for name, images in config.splits.items()}
    dataset = Dataset(config.root, "yolo", class_names,
                      assemble_splits(complete_splits(split_ids), annotations), issues,
                      yaml_path.name)
    log.info("dataset loaded", extra={"root": str(config.root), "layout": "yolo",
                                      "images": len(dataset.items["all"]),
                                      "classes": class_names, "issues": len(issues)})
    return dataset


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _read_label(image: Path, root: Path, issues: list[DatasetIssue]) -> _Label | None:
    label = label_path(image)
    source = _relative(label, root)
    if not image.is_file():
        add_issue(issues, source, "missing_image", f"{_relative(image, root)} does not exist")
        return None
    if not label.is_file():
        return _Label(image, label, [])  # background image
    try:
        text = label.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        add_issue(issues, source, "unparsable_file", f"{err}; image skipped")
        return None
    rows = [_parse_line(number, line)
            for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
    return _Label(image, label, rows)


def _parse_line(number: int, line: str) -> _Row:
    tokens = line.split()
    try:
        index: int | None = int(float(tokens[0]))
    except ValueError:
        index = None
    try:
        values: tuple[float, ...] | None = tuple(float(t) for t in tokens[1:])
    except ValueError:
        values = None
    if values is not None and not (len(values) == 4 or (len(values) >= 6 and len(values) % 2 == 0)):
        values = None
    return _Row(number, index, values, tokens[0])


def _annotation(
    label: _Label, config: YoloConfig, image_id: str, classes: list[str],
    issues: list[DatasetIssue],
) -> Annotation | None:
    source = _relative(label.label, config.root)
    image = open_image(label.image, source, issues)
    if image is None:
        return None
    objects: list[RawObject] = []
    seen: set[tuple[int, tuple[float, ...]]] = set()
    for row in label.rows:
        where = f"line {row.number}"
        if row.index is None or not 0 <= row.index < len(config.names):
            add_issue(issues, source, "unknown_class",
                      f"{where}: class {row.first_token!r} is not in names "
                      f"(0-{len(config.names) - 1})")
            continue
        if row.values is not None and (row.index, row.values) in seen:
            add_issue(issues, source, "duplicate_box", f"{where} repeats an earlier line")
            continue
        if row.values is not None:
            seen.add((row.index, row.values))
        coords = _pixel_xyxy(row, image.width, image.height, source, issues)
        objects.append(RawObject(config.names[row.index], coords, where=where))
    return build_annotation(source, image_id, image, None, objects, classes, issues)


def _pixel_xyxy(
    row: _Row, width: int, height: int, source: str, issues: list[DatasetIssue]
) -> list[float] | None:
    """Normalized centre/size (or a polygon) -> `xyxy` pixels; None: not a box (reported as
    invalid_box by the shared checks)."""
    if row.values is None:
        return None
    if len(row.values) == 4:
        cx, cy, w, h = row.values
        box = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
    else:
        xs, ys = row.values[0::2], row.values[1::2]
        add_issue(issues, source, "polygon_as_box", f"line {row.number}: {len(xs)}-point polygon")
        box = [min(xs), min(ys), max(xs), max(ys)]
    return [box[0] * width, box[1] * height, box[2] * width, box[3] * height]
