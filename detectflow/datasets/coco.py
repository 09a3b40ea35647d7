"""Read COCO detection JSON (as CVAT, Label Studio, Roboflow and COCO itself export it).

Where the JSON and the images are (`find_coco` decides; first match wins):
- one `.json` file given as the path: images next to it, in `images/`, or where `file_name`
  (a relative path) points from the JSON's folder;
- a folder with `annotations/instances_<name>.json` (COCO, CVAT): images in `images/`,
  `images/<name>/`, `<name>/` or the folder itself;
- a folder with `<name>/_annotations.coco.json` (Roboflow): images beside the JSON;
- a folder holding exactly one `.json` file (Label Studio's `result.json`).

`<name>` gives the split: train, val (also "valid", "validation"), trainval or test, with
trailing digits ignored (`train2017`). Files with other names (CVAT's "default") are not
splits: when no file names a split, all images are split by `splits.SPLIT_RULE` over their
sorted names; otherwise their images are only in `all`.

Boxes: `bbox` is `[x, y, width, height]` pixels (COCO's `xywh`), turned into `xyxy`. `iscrowd`
regions count as VOC's `difficult` (neither missed nor found). The default class list is the
categories the annotations use, in category-id order; categories sharing a name are merged.
Defects are fixed, clipped or skipped as for VOC (`records`), plus COCO's own: unparsable
files, image entries without `id`/`file_name`, repeated images, annotations of unknown images
or categories. Issues name the image file (or the JSON file, for file-wide problems).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from detectflow.datasets.dataset import Annotation, Dataset, DatasetError
from detectflow.datasets.issues import DatasetIssue
from detectflow.datasets.records import (
    RawObject,
    add_issue,
    build_annotation,
    class_list,
    image_ids,
    open_image,
)
from detectflow.datasets.splits import (
    LISTED_SPLITS,
    SPLIT_RULE,
    assemble_splits,
    complete_splits,
    rule_split,
    unique,
)

log = logging.getLogger(__name__)

COCO_SPLIT_RULE = f"sorted image names: {SPLIT_RULE}"
ROBOFLOW_JSON = "_annotations.coco.json"
SPLIT_ALIASES = {"valid": "val", "validation": "val"}


@dataclass
class CocoFile:
    """One JSON file, the split its name gives (None: not a split), where its images are."""

    path: Path
    split: str | None
    image_dirs: list[Path]


@dataclass
class _Image:
    entry_id: Any
    file_name: str
    declared_size: tuple[int, int]
    objects: list[RawObject] = field(default_factory=list)


def split_of(name: str) -> str | None:
    """The split a file name stands for: 'instances_train2017' -> 'train'; None if none."""
    stem = re.sub(r"\d+$", "", name.lower().removeprefix("instances_"))
    stem = SPLIT_ALIASES.get(stem, stem)
    return stem if stem in LISTED_SPLITS else None


def find_coco(path: Path) -> list[CocoFile] | None:
    """The COCO JSON files of a dataset path (see the module docstring), or None."""
    if path.is_file():
        if path.suffix.lower() != ".json":
            return None
        return [CocoFile(path, None, [path.parent, path.parent / "images"])]
    if not path.is_dir():
        return None
    instances = sorted((path / "annotations").glob("instances_*.json"))
    if instances:
        return [_instances_file(path, f) for f in instances]
    roboflow = sorted(path.glob(f"*/{ROBOFLOW_JSON}"))
    if roboflow:
        return [CocoFile(f, split_of(f.parent.name), [f.parent]) for f in roboflow]
    top = sorted(path.glob("*.json"))
    if len(top) == 1:
        return [CocoFile(top[0], None, [path, path / "images"])]
    return None


def _instances_file(root: Path, path: Path) -> CocoFile:
    name = path.stem.removeprefix("instances_")
    dirs = [root / "images" / name, root / "images", root / name, root]
    return CocoFile(path, split_of(name), dirs)


def load_coco(path: str | Path, classes: Sequence[str] | None = None) -> Dataset:
    """Read a COCO dataset (a folder or one JSON file); see the module docstring."""
    path = Path(path)
    files = find_coco(path)
    if not files:
        raise DatasetError(
            f"{path} is not a COCO dataset: expected a .json file, annotations/instances_"
            "<split>.json, <split>/_annotations.coco.json, or one .json file in the folder."
        )
    issues: list[DatasetIssue] = []
    read = [(f, _read_json(f.path, issues)) for f in files]
    parsed = [(f, data) for f, data in read if data is not None]
    if not parsed:
        raise DatasetError(f"{path}: no COCO JSON file could be read "
                           f"({', '.join(i.detail for i in issues)}).")
    categories = _categories([data for _, data in parsed], issues)
    per_file = [(f, _images(f, data, categories, issues)) for f, data in parsed]
    used = {o.name for _, images in per_file for im in images for o in im.objects}
    class_names = class_list(list(dict.fromkeys(n for n in categories.values() if n in used)),
                             classes)
    ids = image_ids([im.file_name for _, images in per_file for im in images])
    annotations: dict[str, Annotation] = {}
    split_ids: dict[str, list[str]] = {}
    unsplit: list[str] = []
    for coco_file, images in per_file:
        members = split_ids.setdefault(coco_file.split, []) if coco_file.split else unsplit
        for image in images:
            image_id = ids[image.file_name]
            members.append(image_id)
            if image_id not in annotations:
                built = _annotation(coco_file, image, image_id, class_names, issues)
                if built is not None:
                    annotations[image_id] = built
    splits, source = _splits(split_ids, unsplit, files)
    dataset = Dataset(path, "coco", class_names, assemble_splits(splits, annotations), issues,
                      source)
    log.info("dataset loaded", extra={"root": str(path), "layout": "coco",
                                      "images": len(dataset.items["all"]),
                                      "classes": class_names, "issues": len(issues)})
    return dataset


def _read_json(path: Path, issues: list[DatasetIssue]) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        add_issue(issues, path.name, "unparsable_file", str(err))
        return None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        add_issue(issues, path.name, "unparsable_file", "not a COCO object with an images list")
        return None
    return data


def _categories(files: list[dict[str, Any]], issues: list[DatasetIssue]) -> dict[Any, str]:
    """category id -> name, ordered by id; names stripped (one name may have several ids)."""
    found: dict[Any, str] = {}
    for data in files:
        for entry in _list(data.get("categories")):
            if (isinstance(entry, dict) and isinstance(entry.get("name"), str)
                    and _is_id(entry.get("id"))):
                found.setdefault(entry["id"], entry["name"].strip())
    ordered = dict(sorted(found.items(), key=lambda kv: (str(type(kv[0])), kv[0])))
    names = list(ordered.values())
    for name in dict.fromkeys(n for n in names if names.count(n) > 1):
        ids = [k for k, v in ordered.items() if v == name]
        add_issue(issues, "categories", "duplicate_category", f"{name!r} has ids {ids}")
    return ordered


def _images(
    coco_file: CocoFile, data: dict[str, Any], categories: dict[Any, str],
    issues: list[DatasetIssue],
) -> list[_Image]:
    images: dict[Any, _Image] = {}
    seen_names: set[str] = set()
    for entry in data["images"]:
        image = _image_entry(entry, coco_file, issues)
        if image is None:
            continue
        if image.file_name in seen_names or image.entry_id in images:
            add_issue(issues, Path(image.file_name).name, "duplicate_image",
                      f"listed twice in {coco_file.path.name}")
            continue
        seen_names.add(image.file_name)
        images[image.entry_id] = image
    for number, entry in enumerate(_list(data.get("annotations")), start=1):
        _add_object(entry, number, images, categories, coco_file, issues)
    return list(images.values())


def _image_entry(entry: Any, coco_file: CocoFile, issues: list[DatasetIssue]) -> _Image | None:
    if (not isinstance(entry, dict) or not _is_id(entry.get("id"))
            or not isinstance(entry.get("file_name"), str) or not entry["file_name"].strip()):
        add_issue(issues, coco_file.path.name, "invalid_image_entry",
                  f"image entry {str(entry)[:80]} has no id or file_name")
        return None
    size = (_int_or_zero(entry.get("width")), _int_or_zero(entry.get("height")))
    return _Image(entry["id"], entry["file_name"].strip(), size)


def _add_object(
    entry: Any, number: int, images: dict[Any, _Image], categories: dict[Any, str],
    coco_file: CocoFile, issues: list[DatasetIssue],
) -> None:
    if not isinstance(entry, dict):
        entry = {}
    where = f"annotation {entry.get('id', number)}"
    image = images.get(entry.get("image_id")) if _is_id(entry.get("image_id")) else None
    if image is None:
        add_issue(issues, coco_file.path.name, "orphan_annotation",
                  f"{where}: its image_id is not among the images")
        return
    source = Path(image.file_name).name
    if not _is_id(entry.get("category_id")) or entry["category_id"] not in categories:
        add_issue(issues, source, "unknown_class",
                  f"{where}: category_id {entry.get('category_id')!r} is not in categories")
        return
    image.objects.append(RawObject(
        name=categories[entry["category_id"]],
        coords=_xywh_to_xyxy(entry.get("bbox")),
        difficult=bool(entry.get("iscrowd", 0)),
        where=where,
    ))


def _is_id(value: Any) -> bool:
    """COCO ids are numbers or strings; anything else (lists, objects) cannot key a lookup."""
    return isinstance(value, int | float | str) and not isinstance(value, bool)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _xywh_to_xyxy(bbox: Any) -> list[Any] | None:
    if not isinstance(bbox, list | tuple) or len(bbox) != 4:
        return None
    try:
        x, y, w, h = (float(v) for v in bbox)
    except (TypeError, ValueError):
        return None
    return [x, y, x + w, y + h]


def _int_or_zero(value: Any) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return 0


def _annotation(
    coco_file: CocoFile, image: _Image, image_id: str, classes: list[str],
    issues: list[DatasetIssue],
) -> Annotation | None:
    source = Path(image.file_name).name
    path = _find_image(image.file_name, coco_file.image_dirs)
    if path is None:
        folders = ", ".join(f"{d.name or '.'}/" for d in coco_file.image_dirs)
        add_issue(issues, source, "missing_image", f"{image.file_name} is not in {folders}")
        return None
    found = open_image(path, source, issues)
    if found is None:
        return None
    return build_annotation(source, image_id, found, image.declared_size, image.objects, classes,
                            issues)


def _find_image(file_name: str, dirs: list[Path]) -> Path | None:
    """`file_name` under one of `dirs`: as a relative path when it is one, else by its name."""
    relative = PurePosixPath(file_name.replace("\\", "/"))
    safe = not relative.is_absolute() and ".." not in relative.parts
    for folder in dirs:
        candidates = ([folder / relative] if safe else []) + [folder / relative.name]
        found = next((c for c in candidates if c.is_file()), None)
        if found is not None:
            return found
    return None


def _splits(
    split_ids: dict[str, list[str]], unsplit: list[str], files: list[CocoFile]
) -> tuple[dict[str, list[str]], str]:
    if not split_ids:
        return rule_split(unique(unsplit)), COCO_SPLIT_RULE
    names = ", ".join(f.path.name for f in files if f.split)
    return complete_splits(split_ids), f"split files ({names})"
