"""Read Pascal VOC detection datasets, repairing what can be repaired and reporting the rest.

Pure Python + numpy + Pillow (never TensorFlow): the trainer, `detectflow data` and
`detectflow evaluate` all read data through `load_voc`.

Layouts (found by folder names):
- standard ("voc"): `Annotations/*.xml`, `JPEGImages/`, `ImageSets/Main/<split>.txt`
- flat ("flat"):    `annotations/*.xml` + `images/`

Splits come from `ImageSets/Main/{train,val,trainval,test}.txt` when any exist. Otherwise
(flat layout, or no split files) the rule is: sort the annotation file names; file number i
goes to `test` when i % 5 == 0, to `val` when i % 5 == 1, to `train` otherwise (20/20/60).
Broken files keep their place in that order, so fixing one never moves the others. `trainval`
is `train` ∪ `val` unless its own file exists; `all` is every image that loaded.

Boxes are `xyxy` pixels, read as written: VOC's integer coordinates are taken as box edges in
[0, width] x [0, height] (no 1-based shift), as pycocotools/Ultralytics conversions do.

Defects never crash a load. Each becomes a `DatasetIssue` and is fixed (names with
surrounding whitespace, inverted coordinates), clipped (boxes past the image edge) or skipped
(zero-area boxes, unknown classes when a class list is given, missing images, unparsable
XML); `format_issue_report` summarises them.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from PIL import Image

log = logging.getLogger(__name__)

Layout = Literal["voc", "flat"]
FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

SPLITS = ("train", "val", "trainval", "test", "all")
SPLIT_RULE = "sorted annotation files: index % 5 == 0 -> test, == 1 -> val, else train"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")
MIN_BOX_SIDE_PX = 1.0  # narrower boxes carry no trainable signal: "degenerate"
EXIF_ORIENTATION = 0x0112

# What happened to the data for each kind of issue (shown in reports).
ISSUE_ACTIONS: dict[str, str] = {
    "whitespace_in_name": "fixed: name stripped",
    "inverted_box": "fixed: coordinates swapped",
    "out_of_bounds_box": "clipped to the image",
    "missing_size": "used the image file's size",
    "size_mismatch": "used the image file's size",
    "filename_mismatch": "used the image named like the XML file",
    "degenerate_box": "box skipped",
    "invalid_box": "box skipped",
    "missing_name": "box skipped",
    "unknown_class": "box skipped",
    "unparsable_xml": "image skipped",
    "missing_image": "image skipped",
    "unreadable_image": "image skipped",
    "missing_annotation": "image skipped",
}


class DatasetError(ValueError):
    """The folder is not a dataset we can read at all (as opposed to a defect inside one)."""


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class Annotation:
    """One image and its boxes; `boxes_xyxy` (N, 4) float32 pixels of the upright image."""

    image_path: Path
    image_id: str
    width: int
    height: int
    boxes_xyxy: FloatArray
    class_ids: IntArray
    difficult: BoolArray

    def __len__(self) -> int:
        return int(self.class_ids.shape[0])


@dataclass(frozen=True)
class DatasetIssue:
    file: str
    kind: str
    detail: str

    @property
    def action(self) -> str:
        return ISSUE_ACTIONS.get(self.kind, "reported")


@dataclass
class VocDataset:
    root: Path
    layout: Layout
    classes: list[str]
    items: dict[str, list[Annotation]]
    issues: list[DatasetIssue] = field(default_factory=list)
    split_source: str = SPLIT_RULE

    def split(self, name: str) -> list[Annotation]:
        """Annotations of a split: train, val, trainval, test or all."""
        if name not in self.items:
            raise KeyError(f"unknown split {name!r}; choose one of {', '.join(self.items)}")
        return self.items[name]


@dataclass
class _RawObject:
    name: str | None
    coords: tuple[str | None, str | None, str | None, str | None] | None
    difficult: bool


@dataclass
class _RawRecord:
    xml_path: Path
    image_id: str
    filename: str | None
    declared_size: tuple[int, int]
    objects: list[_RawObject]


@dataclass
class _ImageFile:
    path: Path
    width: int
    height: int


def load_voc(root: str | Path, classes: Sequence[str] | None = None) -> VocDataset:
    """Read a VOC dataset. `classes` fixes the class list (and order); default: sorted names."""
    root = Path(root)
    layout, ann_dir, img_dir = _find_layout(root)
    issues: list[DatasetIssue] = []
    xml_files = sorted(ann_dir.glob("*.xml"))
    records = [r for r in (_parse_xml(p, issues) for p in xml_files) if r is not None]
    found = [(r, _find_image(r, img_dir, issues)) for r in records]
    usable = [(r, image) for r, image in found if image is not None]
    class_list = _class_list([r for r, _ in usable], classes)
    annotations = {
        r.image_id: _to_annotation(r, image, class_list, issues) for r, image in usable
    }
    split_ids, split_source = _split_ids(root, [p.stem for p in xml_files])
    items = _assemble_splits(split_ids, annotations, {p.stem for p in xml_files}, issues)
    dataset = VocDataset(root, layout, class_list, items, issues, split_source)
    log.info(
        "dataset loaded",
        extra={"root": str(root), "layout": layout, "images": len(items["all"]),
               "classes": class_list, "issues": len(issues)},
    )
    return dataset


def _find_layout(root: Path) -> tuple[Layout, Path, Path]:
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder.")
    if (root / "Annotations").is_dir() and (root / "JPEGImages").is_dir():
        return "voc", root / "Annotations", root / "JPEGImages"
    if (root / "annotations").is_dir() and (root / "images").is_dir():
        return "flat", root / "annotations", root / "images"
    raise DatasetError(
        f"{root} is not a Pascal VOC dataset: expected Annotations/ + JPEGImages/ "
        "(standard layout) or annotations/ + images/ (flat layout)."
    )


def _issue(issues: list[DatasetIssue], path: Path, kind: str, detail: str) -> None:
    issues.append(DatasetIssue(file=path.name, kind=kind, detail=detail))


def _parse_xml(path: Path, issues: list[DatasetIssue]) -> _RawRecord | None:
    # ElementTree resolves no external entities, and the expat it ships with limits entity
    # expansion, so an annotation file cannot make us fetch URLs or blow up memory.
    try:
        tree = ET.parse(path)
    except (ET.ParseError, OSError, UnicodeDecodeError) as err:
        _issue(issues, path, "unparsable_xml", str(err))
        return None
    node = tree.getroot()
    return _RawRecord(
        xml_path=path,
        image_id=path.stem,
        filename=_text(node, "filename"),
        declared_size=(_int_or_zero(_text(node, "size/width")),
                       _int_or_zero(_text(node, "size/height"))),
        objects=[_raw_object(obj) for obj in node.iter("object")],
    )


def _text(node: ET.Element, path: str) -> str | None:
    found = node.find(path)
    return found.text if found is not None and found.text is not None else None


def _int_or_zero(text: str | None) -> int:
    try:
        return int(float(text)) if text is not None else 0
    except ValueError:
        return 0


def _raw_object(obj: ET.Element) -> _RawObject:
    box = obj.find("bndbox")
    coords = None if box is None else (
        _text(box, "xmin"), _text(box, "ymin"), _text(box, "xmax"), _text(box, "ymax")
    )
    return _RawObject(
        name=_text(obj, "name"),
        coords=coords,
        difficult=_int_or_zero(_text(obj, "difficult")) == 1,
    )


def _find_image(
    record: _RawRecord, img_dir: Path, issues: list[DatasetIssue]
) -> _ImageFile | None:
    """The image named like the XML file (VOC's rule), else the one its <filename> names."""
    candidates = [img_dir / f"{record.image_id}{s}" for s in IMAGE_SUFFIXES]
    candidates += [img_dir / f"{record.image_id}{s.upper()}" for s in IMAGE_SUFFIXES]
    if record.filename:
        candidates.append(img_dir / Path(record.filename).name)  # .name: no path tricks
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        _issue(issues, record.xml_path, "missing_image",
               f"no image {record.filename or record.image_id + '.*'} in {img_dir.name}/")
        return None
    if record.filename and Path(record.filename).name != path.name:
        _issue(issues, record.xml_path, "filename_mismatch",
               f"<filename> says {record.filename!r}, using {path.name}")
    size = _upright_size(path)
    if size is None:
        _issue(issues, record.xml_path, "unreadable_image", f"{path.name} is not a readable image")
        return None
    return _ImageFile(path, *size)


def _upright_size(path: Path) -> tuple[int, int] | None:
    """(width, height) as displayed (after EXIF rotation), from the header alone."""
    try:
        with Image.open(path) as img:
            width, height = img.size
            orientation = int(img.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:  # Pillow raises many types for a file that is not an image
        return None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _class_list(records: Iterable[_RawRecord], classes: Sequence[str] | None) -> list[str]:
    if classes is not None:
        cleaned = [c.strip() for c in classes]
        if len(set(cleaned)) != len(cleaned) or not all(cleaned):
            raise DatasetError(f"class list {list(classes)} has empty or repeated names.")
        return cleaned
    names = {o.name.strip() for r in records for o in r.objects if o.name and o.name.strip()}
    return sorted(names)


def _to_annotation(
    record: _RawRecord, image: _ImageFile, classes: list[str], issues: list[DatasetIssue]
) -> Annotation:
    width, height = _checked_size(record, image, issues)
    index = {name: i for i, name in enumerate(classes)}
    boxes: list[tuple[float, float, float, float]] = []
    class_ids: list[int] = []
    difficult: list[bool] = []
    for number, obj in enumerate(record.objects, start=1):
        where = f"object {number}"
        name = _checked_name(obj, index, record.xml_path, where, issues)
        box = _checked_box(obj, width, height, record.xml_path, where, issues)
        if name is not None and box is not None:
            boxes.append(box)
            class_ids.append(index[name])
            difficult.append(obj.difficult)
    return Annotation(
        image_path=image.path,
        image_id=record.image_id,
        width=width,
        height=height,
        boxes_xyxy=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        class_ids=np.asarray(class_ids, dtype=np.int64),
        difficult=np.asarray(difficult, dtype=np.bool_),
    )


def _checked_size(
    record: _RawRecord, image: _ImageFile, issues: list[DatasetIssue]
) -> tuple[int, int]:
    declared = record.declared_size
    real = (image.width, image.height)
    if declared[0] <= 0 or declared[1] <= 0:
        _issue(issues, record.xml_path, "missing_size",
               f"<size> missing or zero; image is {real[0]}x{real[1]}")
    elif declared != real:
        _issue(issues, record.xml_path, "size_mismatch",
               f"<size> says {declared[0]}x{declared[1]}, image is {real[0]}x{real[1]}")
    return real


def _checked_name(
    obj: _RawObject, index: dict[str, int], path: Path, where: str, issues: list[DatasetIssue]
) -> str | None:
    if obj.name is None or not obj.name.strip():
        _issue(issues, path, "missing_name", f"{where} has no <name>")
        return None
    name = obj.name.strip()
    if name != obj.name:
        _issue(issues, path, "whitespace_in_name", f"{where}: {obj.name!r} -> {name!r}")
    if name not in index:
        _issue(issues, path, "unknown_class", f"{where}: {name!r} is not in the class list")
        return None
    return name


def _checked_box(
    obj: _RawObject, width: int, height: int, path: Path, where: str,
    issues: list[DatasetIssue],
) -> tuple[float, float, float, float] | None:
    raw = _parse_coords(obj.coords)
    if raw is None:
        _issue(issues, path, "invalid_box", f"{where}: bndbox {obj.coords} is not 4 numbers")
        return None
    x0, y0, x1, y1 = raw
    if x0 > x1 or y0 > y1:
        x0, x1 = min(x0, x1), max(x0, x1)
        y0, y1 = min(y0, y1), max(y0, y1)
        _issue(issues, path, "inverted_box", f"{where}: {_fmt(raw)} -> {_fmt((x0, y0, x1, y1))}")
    clipped = (min(max(x0, 0.0), width), min(max(y0, 0.0), height),
               min(max(x1, 0.0), width), min(max(y1, 0.0), height))
    if clipped[2] - clipped[0] < MIN_BOX_SIDE_PX or clipped[3] - clipped[1] < MIN_BOX_SIDE_PX:
        _issue(issues, path, "degenerate_box",
               f"{where}: {_fmt(raw)} has no area inside the {width}x{height} image")
        return None
    if clipped != (x0, y0, x1, y1):
        _issue(issues, path, "out_of_bounds_box",
               f"{where}: {_fmt((x0, y0, x1, y1))} -> {_fmt(clipped)} ({width}x{height} image)")
    return clipped


def _parse_coords(
    coords: tuple[str | None, str | None, str | None, str | None] | None,
) -> tuple[float, float, float, float] | None:
    if coords is None or any(v is None for v in coords):
        return None
    try:
        x0, y0, x1, y1 = (float(v) for v in coords)  # type: ignore[arg-type]
    except ValueError:
        return None
    if not all(np.isfinite((x0, y0, x1, y1))):
        return None
    return x0, y0, x1, y1


def _fmt(box: tuple[float, float, float, float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in box) + "]"


def _split_ids(root: Path, stems: list[str]) -> tuple[dict[str, list[str]], str]:
    """Image ids per split: the ImageSets/Main files when present, else the modulo rule."""
    main = root / "ImageSets" / "Main"
    listed = {
        name: _read_split_file(main / f"{name}.txt")
        for name in ("train", "val", "trainval", "test")
        if (main / f"{name}.txt").is_file()
    }
    if listed:
        return _complete_splits(listed), "ImageSets/Main"
    ordered = sorted(stems)
    rule: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for i, stem in enumerate(ordered):
        rule["test" if i % 5 == 0 else "val" if i % 5 == 1 else "train"].append(stem)
    return _complete_splits(rule), SPLIT_RULE


def _read_split_file(path: Path) -> list[str]:
    # Class-specific VOC files ("<id> 1") have a second column: the id is the first token.
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def _complete_splits(listed: dict[str, list[str]]) -> dict[str, list[str]]:
    splits = dict(listed)
    if "trainval" not in splits:
        splits["trainval"] = _unique(splits.get("train", []) + splits.get("val", []))
    if "train" not in splits:
        val = set(splits.get("val", []))
        splits["train"] = [i for i in splits["trainval"] if i not in val]
    splits.setdefault("val", [])
    splits.setdefault("test", [])
    return splits


def _unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def _assemble_splits(
    split_ids: dict[str, list[str]],
    annotations: dict[str, Annotation],
    xml_stems: set[str],
    issues: list[DatasetIssue],
) -> dict[str, list[Annotation]]:
    listed = _unique(i for name in ("train", "val", "trainval", "test") for i in split_ids[name])
    for image_id in listed:
        if image_id not in xml_stems:
            issues.append(DatasetIssue(f"{image_id}.xml", "missing_annotation",
                                       "listed in a split file but has no annotation file"))
    items = {
        name: [annotations[i] for i in _unique(split_ids[name]) if i in annotations]
        for name in ("train", "val", "trainval", "test")
    }
    items["all"] = [annotations[i] for i in sorted(annotations)]
    return items


def issue_counts(issues: Iterable[DatasetIssue]) -> dict[str, int]:
    """Number of issues per kind, most frequent first."""
    return dict(Counter(i.kind for i in issues).most_common())


def format_issue_report(issues: Sequence[DatasetIssue], max_files: int = 5) -> str:
    """Counts per kind, what was done about them, and the files involved."""
    if not issues:
        return "No annotation issues found."
    lines = [f"{len(issues)} annotation issue(s):"]
    for kind, count in issue_counts(issues).items():
        files = _unique(i.file for i in issues if i.kind == kind)
        shown = ", ".join(files[:max_files])
        more = f" (+{len(files) - max_files} more)" if len(files) > max_files else ""
        action = ISSUE_ACTIONS.get(kind, "reported")
        lines.append(f"  {kind:20s} {count:5d}  {action:40s} {shown}{more}")
    return "\n".join(lines)
