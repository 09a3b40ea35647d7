"""Read Pascal VOC detection datasets, repairing what can be repaired and reporting the rest.

Pure Python + numpy + Pillow (never TensorFlow). Most callers use
`detectflow.datasets.load_dataset`, which finds the format and calls `load_voc` for VOC.

Layouts (found by folder names):
- standard ("voc"): `Annotations/*.xml`, `JPEGImages/`, `ImageSets/Main/<split>.txt`
- flat ("flat"):    `annotations/*.xml` + `images/`

Splits come from `ImageSets/Main/{train,val,trainval,test}.txt` when any exist, else from
`splits.SPLIT_RULE` over the sorted annotation file names (broken files keep their place).

Boxes are `xyxy` pixels, read as written: VOC's integer coordinates are taken as box edges in
[0, width] x [0, height] (no 1-based shift), as pycocotools/Ultralytics conversions do.

Defects never crash a load: they are fixed, clipped or skipped by `records.build_annotation`
and reported as `DatasetIssue`s; unparsable XML and images that are missing or unreadable skip
the image.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from detectflow.datasets.dataset import Annotation, Dataset, DatasetError, Layout
from detectflow.datasets.issues import DatasetIssue, format_issue_report, issue_counts
from detectflow.datasets.records import (
    IMAGE_SUFFIXES,
    ImageFile,
    RawObject,
    add_issue,
    build_annotation,
    class_list,
    open_image,
)
from detectflow.datasets.splits import (
    LISTED_SPLITS,
    SPLIT_RULE,
    assemble_splits,
    complete_splits,
    rule_split,
)

# Annotation, issue_counts and format_issue_report: imported from here by older code.
__all__ = ["Annotation", "format_issue_report", "is_voc", "issue_counts", "load_voc"]

log = logging.getLogger(__name__)

VOC_SPLIT_RULE = f"sorted annotation files: {SPLIT_RULE}"


@dataclass
class _RawRecord:
    xml_path: Path
    image_id: str
    filename: str | None
    declared_size: tuple[int, int]
    objects: list[RawObject]


def is_voc(root: Path) -> bool:
    return _layout_dirs(root) is not None


def load_voc(root: str | Path, classes: Sequence[str] | None = None) -> Dataset:
    """Read a VOC dataset. `classes` fixes the class list (and order); default: sorted names."""
    root = Path(root)
    layout, ann_dir, img_dir = _find_layout(root)
    issues: list[DatasetIssue] = []
    xml_files = sorted(ann_dir.glob("*.xml"))
    records = [r for r in (_parse_xml(p, issues) for p in xml_files) if r is not None]
    found = [(r, _find_image(r, img_dir, issues)) for r in records]
    usable = [(r, image) for r, image in found if image is not None]
    names = {o.name.strip() for r, _ in usable for o in r.objects if o.name and o.name.strip()}
    class_names = class_list(sorted(names), classes)
    annotations = {
        r.image_id: build_annotation(r.xml_path.name, r.image_id, image, r.declared_size,
                                     r.objects, class_names, issues)
        for r, image in usable
    }
    split_ids, split_source = _split_ids(root, [p.stem for p in xml_files])
    _report_unlisted(split_ids, {p.stem for p in xml_files}, issues)
    dataset = Dataset(root, layout, class_names, assemble_splits(split_ids, annotations), issues,
                      split_source)
    log.info(
        "dataset loaded",
        extra={"root": str(root), "layout": layout, "images": len(dataset.items["all"]),
               "classes": class_names, "issues": len(issues)},
    )
    return dataset


def _layout_dirs(root: Path) -> tuple[Layout, Path, Path] | None:
    if (root / "Annotations").is_dir() and (root / "JPEGImages").is_dir():
        return "voc", root / "Annotations", root / "JPEGImages"
    if (root / "annotations").is_dir() and (root / "images").is_dir() and any(
        (root / "annotations").glob("*.xml")
    ):
        return "flat", root / "annotations", root / "images"
    return None


def _find_layout(root: Path) -> tuple[Layout, Path, Path]:
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder.")
    found = _layout_dirs(root)
    if found is None:
        raise DatasetError(
            f"{root} is not a Pascal VOC dataset: expected Annotations/ + JPEGImages/ "
            "(standard layout) or annotations/*.xml + images/ (flat layout)."
        )
    return found


def _parse_xml(path: Path, issues: list[DatasetIssue]) -> _RawRecord | None:
    # ElementTree resolves no external entities, and the expat it ships with limits entity
    # expansion, so an annotation file cannot make us fetch URLs or blow up memory.
    try:
        tree = ET.parse(path)
    except (ET.ParseError, OSError, UnicodeDecodeError) as err:
        add_issue(issues, path.name, "unparsable_xml", str(err))
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


def _raw_object(obj: ET.Element) -> RawObject:
    box = obj.find("bndbox")
    coords = None if box is None else (
        _text(box, "xmin"), _text(box, "ymin"), _text(box, "xmax"), _text(box, "ymax")
    )
    return RawObject(
        name=_text(obj, "name"),
        coords=coords,
        difficult=_int_or_zero(_text(obj, "difficult")) == 1,
    )


def _find_image(
    record: _RawRecord, img_dir: Path, issues: list[DatasetIssue]
) -> ImageFile | None:
    """The image named like the XML file (VOC's rule), else the one its <filename> names."""
    candidates = [img_dir / f"{record.image_id}{s}" for s in IMAGE_SUFFIXES]
    candidates += [img_dir / f"{record.image_id}{s.upper()}" for s in IMAGE_SUFFIXES]
    if record.filename:
        candidates.append(img_dir / Path(record.filename).name)  # .name: no path tricks
    path = next((c for c in candidates if c.is_file()), None)
    source = record.xml_path.name
    if path is None:
        add_issue(issues, source, "missing_image",
                  f"no image {record.filename or record.image_id + '.*'} in {img_dir.name}/")
        return None
    if record.filename and Path(record.filename).name != path.name:
        add_issue(issues, source, "filename_mismatch",
                  f"<filename> says {record.filename!r}, using {path.name}")
    return open_image(path, source, issues)


def _split_ids(root: Path, stems: list[str]) -> tuple[dict[str, list[str]], str]:
    """Image ids per split: the ImageSets/Main files when present, else the modulo rule."""
    main = root / "ImageSets" / "Main"
    listed = {
        name: _read_split_file(main / f"{name}.txt")
        for name in LISTED_SPLITS
        if (main / f"{name}.txt").is_file()
    }
    if listed:
        return complete_splits(listed), "ImageSets/Main"
    return rule_split(stems), VOC_SPLIT_RULE


def _read_split_file(path: Path) -> list[str]:
    # Class-specific VOC files ("<id> 1") have a second column: the id is the first token.
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def _report_unlisted(
    split_ids: dict[str, list[str]], xml_stems: set[str], issues: list[DatasetIssue]
) -> None:
    listed = dict.fromkeys(i for name in LISTED_SPLITS for i in split_ids[name])
    for image_id in listed:
        if image_id not in xml_stems:
            issues.append(DatasetIssue(f"{image_id}.xml", "missing_annotation",
                                       "listed in a split file but has no annotation file"))
