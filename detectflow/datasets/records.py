"""From boxes as a file wrote them to a checked `Annotation`: the repairs every format shares.

A reader (VOC, COCO, YOLO) turns its file into `RawObject`s (a class name and `xyxy` pixel
coordinates as written) and finds the image; `build_annotation` then applies one set of rules,
so a defect is fixed, clipped or skipped the same way whatever the format:

- names with surrounding whitespace are stripped; unknown or missing names drop the box;
- inverted coordinates are swapped; boxes past the image edge are clipped (reported when
  more than `EDGE_TOLERANCE_PX` past it); boxes with less
  than `MIN_BOX_SIDE_PX` inside the image, or coordinates that are not 4 finite numbers, drop;
- the image's own (upright, EXIF-rotated) size wins over a declared one, with an issue when
  they differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from detectflow.datasets.dataset import Annotation, DatasetError
from detectflow.datasets.issues import DatasetIssue

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")
MIN_BOX_SIDE_PX = 1.0  # narrower boxes carry no trainable signal: "degenerate"
# Normalized formats (YOLO's 6 decimals) land a hair past an edge they touch: clip, no issue.
EDGE_TOLERANCE_PX = 0.01
EXIF_ORIENTATION = 0x0112

Coords = tuple[float, float, float, float]


@dataclass
class RawObject:
    """One box as written: class name, `xyxy` pixels (text or numbers), where it was."""

    name: str | None
    coords: Sequence[str | float | None] | None
    difficult: bool = False
    where: str = ""


@dataclass(frozen=True)
class ImageFile:
    path: Path
    width: int
    height: int


def add_issue(issues: list[DatasetIssue], file: str, kind: str, detail: str) -> None:
    issues.append(DatasetIssue(file=file, kind=kind, detail=detail))


def upright_size(path: Path) -> tuple[int, int] | None:
    """(width, height) as displayed (after EXIF rotation), from the header alone."""
    try:
        with Image.open(path) as img:
            width, height = img.size
            orientation = int(img.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:  # Pillow raises many types for a file that is not an image
        return None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def open_image(path: Path, source: str, issues: list[DatasetIssue]) -> ImageFile | None:
    """The image with its upright size, or None (and an issue) when it cannot be read."""
    size = upright_size(path)
    if size is None:
        add_issue(issues, source, "unreadable_image", f"{path.name} is not a readable image")
        return None
    return ImageFile(path, *size)


def image_ids(names: Sequence[str]) -> dict[str, str]:
    """Relative image path -> image id: its stem, or its path without suffix when two
    different files share a stem (ids key splits and the validation hash)."""
    stems: dict[str, set[str]] = {}
    for name in names:
        stems.setdefault(PurePosixPath(name).stem, set()).add(name)
    return {
        name: PurePosixPath(name).stem if len(stems[PurePosixPath(name).stem]) == 1
        else PurePosixPath(name).with_suffix("").as_posix()
        for name in names
    }


def class_list(default: Sequence[str], classes: Sequence[str] | None) -> list[str]:
    """`classes` when given (checked), else the reader's default list."""
    if classes is None:
        return list(default)
    cleaned = [c.strip() for c in classes]
    if len(set(cleaned)) != len(cleaned) or not all(cleaned):
        raise DatasetError(f"class list {list(classes)} has empty or repeated names.")
    return cleaned


def build_annotation(
    source: str,
    image_id: str,
    image: ImageFile,
    declared_size: tuple[int, int] | None,
    objects: Sequence[RawObject],
    classes: Sequence[str],
    issues: list[DatasetIssue],
) -> Annotation:
    """Check every object against the image and the class list; see the module docstring.

    `source` names the file in issues; `declared_size` None: the format declares none.
    """
    width, height = _checked_size(source, declared_size, image, issues)
    index = {name: i for i, name in enumerate(classes)}
    boxes: list[Coords] = []
    class_ids: list[int] = []
    difficult: list[bool] = []
    for number, obj in enumerate(objects, start=1):
        where = obj.where or f"object {number}"
        name = _checked_name(obj, index, source, where, issues)
        box = _checked_box(obj, width, height, source, where, issues)
        if name is not None and box is not None:
            boxes.append(box)
            class_ids.append(index[name])
            difficult.append(obj.difficult)
    return Annotation(
        image_path=image.path,
        image_id=image_id,
        width=width,
        height=height,
        boxes_xyxy=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        class_ids=np.asarray(class_ids, dtype=np.int64),
        difficult=np.asarray(difficult, dtype=np.bool_),
    )


def _checked_size(
    source: str, declared: tuple[int, int] | None, image: ImageFile,
    issues: list[DatasetIssue],
) -> tuple[int, int]:
    real = (image.width, image.height)
    if declared is None:
        return real
    if declared[0] <= 0 or declared[1] <= 0:
        add_issue(issues, source, "missing_size",
                  f"size missing or zero; image is {real[0]}x{real[1]}")
    elif declared != real:
        add_issue(issues, source, "size_mismatch",
                  f"size says {declared[0]}x{declared[1]}, image is {real[0]}x{real[1]}")
    return real


def _checked_name(
    obj: RawObject, index: dict[str, int], source: str, where: str, issues: list[DatasetIssue]
) -> str | None:
    if obj.name is None or not obj.name.strip():
        add_issue(issues, source, "missing_name", f"{where} has no class name")
        return None
    name = obj.name.strip()
    if name != obj.name:
        add_issue(issues, source, "whitespace_in_name", f"{where}: {obj.name!r} -> {name!r}")
    if name not in index:
        add_issue(issues, source, "unknown_class", f"{where}: {name!r} is not in the class list")
        return None
    return name


def _checked_box(
    obj: RawObject, width: int, height: int, source: str, where: str,
    issues: list[DatasetIssue],
) -> Coords | None:
    raw = parse_coords(obj.coords)
    if raw is None:
        add_issue(issues, source, "invalid_box", f"{where}: box {obj.coords} is not 4 numbers")
        return None
    x0, y0, x1, y1 = raw
    if x0 > x1 or y0 > y1:
        x0, x1 = min(x0, x1), max(x0, x1)
        y0, y1 = min(y0, y1), max(y0, y1)
        add_issue(issues, source, "inverted_box",
                  f"{where}: {fmt_box(raw)} -> {fmt_box((x0, y0, x1, y1))}")
    clipped = (min(max(x0, 0.0), width), min(max(y0, 0.0), height),
               min(max(x1, 0.0), width), min(max(y1, 0.0), height))
    if clipped[2] - clipped[0] < MIN_BOX_SIDE_PX or clipped[3] - clipped[1] < MIN_BOX_SIDE_PX:
        add_issue(issues, source, "degenerate_box",
                  f"{where}: {fmt_box(raw)} has no area inside the {width}x{height} image")
        return None
    overshoot = max(abs(a - b) for a, b in zip(clipped, (x0, y0, x1, y1), strict=True))
    if overshoot > EDGE_TOLERANCE_PX:
        add_issue(issues, source, "out_of_bounds_box",
                  f"{where}: {fmt_box((x0, y0, x1, y1))} -> {fmt_box(clipped)} "
                  f"({width}x{height} image)")
    return clipped


def parse_coords(coords: Sequence[str | float | None] | None) -> Coords | None:
    """Four finite floats, or None."""
    if coords is None or len(coords) != 4 or any(v is None for v in coords):
        return None
    try:
        x0, y0, x1, y1 = (float(v) for v in coords)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not all(np.isfinite((x0, y0, x1, y1))):
        return None
    return x0, y0, x1, y1


def fmt_box(box: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in box) + "]"
