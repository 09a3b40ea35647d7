"""`detectflow data`: what a dataset (VOC, COCO or YOLO) holds, and what is wrong with it."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from detectflow.datasets import Annotation, Dataset

HELP = "summarize a dataset (VOC, COCO, YOLO): splits, classes, box sizes, annotation problems"
DESCRIPTION = """\
Read a dataset the way `detectflow train` will and summarize it: format and layout, where the
splits come from, images and boxes per split and per class, box sizes (to choose an input
size: objects much smaller than ~8 px at the model input are hard to find), image sizes, and
every annotation defect with what was done about it (fixed, clipped or skipped).

Formats (found from the files):
  Pascal VOC  Annotations/ + JPEGImages/ (+ ImageSets/Main/<split>.txt), or
              annotations/*.xml + images/
  COCO        annotations/instances_<split>.json + images/ or <split>/ (CVAT, COCO),
              <split>/_annotations.coco.json (Roboflow), or one .json file (Label Studio)
  YOLO        data.yaml (path, train/val/test, names) + images/<split>/ + labels/<split>/
Without named splits: sorted names, index % 5 == 0 -> test, == 1 -> val, else train.

exit status: 0 read (defects are reported, not fatal), 2 not a dataset.

examples:
  detectflow data --data ../shared/data/bccd
  detectflow data --data ../shared/data/raccoon --json | jq .issues.counts
  detectflow data --data exports/cvat_coco/annotations/instances_default.json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path, metavar="PATH",
                        help="dataset folder, or a COCO .json / YOLO .yaml file")
    parser.add_argument("--classes", nargs="+", metavar="NAME",
                        help="class list, in order (default: every name found, sorted); "
                        "boxes of other classes are reported and skipped")
    parser.add_argument("--json", action="store_true", help="print only JSON on stdout")


def run(args: argparse.Namespace) -> int:
    from detectflow.datasets import DatasetError, load_dataset

    try:
        dataset = load_dataset(args.data, classes=args.classes)
    except DatasetError as err:
        sys.stderr.write(f"detectflow data: error: {err}\n")
        return 2
    summary = summarize(dataset)
    if args.json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        sys.stdout.write(format_summary(summary, dataset))
    return 0


def summarize(dataset: Dataset) -> dict[str, Any]:
    """Everything `detectflow data` shows, as JSON-able data."""
    from detectflow.datasets import SPLITS, issue_counts

    return {
        "root": str(dataset.root),
        "format": dataset.format,
        "layout": dataset.layout,
        "split_source": dataset.split_source,
        "classes": dataset.classes,
        "splits": {name: _split_summary(dataset.split(name), dataset.classes)
                   for name in SPLITS},
        "box_sizes_px": _box_sizes(dataset.split("all"), dataset.classes),
        "image_sizes": _image_sizes(dataset.split("all")),
        "issues": {
            "counts": issue_counts(dataset.issues),
            "items": [{"file": i.file, "kind": i.kind, "detail": i.detail, "action": i.action}
                      for i in dataset.issues],
        },
    }


def _split_summary(items: list[Annotation], classes: list[str]) -> dict[str, Any]:
    import numpy as np

    ids = np.concatenate([a.class_ids for a in items]) if items else np.zeros(0, np.int64)
    difficult = sum(int(a.difficult.sum()) for a in items)
    per_class = np.bincount(ids, minlength=len(classes))
    return {
        "images": len(items),
        "boxes": int(ids.size),
        "difficult": difficult,
        "images_without_boxes": sum(len(a) == 0 for a in items),
        "boxes_per_class": {c: int(n) for c, n in zip(classes, per_class, strict=True)},
    }


def _box_sizes(items: list[Annotation], classes: list[str]) -> dict[str, Any]:
    """Per class: box width and height in pixels (min / median / max) and the smallest side
    relative to the image's longer side (median), which scales with any input size."""
    import numpy as np

    out: dict[str, Any] = {}
    for class_id, name in enumerate(classes):
        sizes, relative = [], []
        for item in items:
            boxes = item.boxes_xyxy[item.class_ids == class_id]
            wh = boxes[:, 2:] - boxes[:, :2]
            sizes.append(wh)
            relative.append(wh.min(axis=1) / max(item.width, item.height))
        wh = np.concatenate(sizes) if sizes else np.zeros((0, 2))
        if not len(wh):
            out[name] = {"count": 0}
            continue
        rel = np.concatenate(relative)
        out[name] = {
            "count": len(wh),
            "width": _stats(wh[:, 0]),
            "height": _stats(wh[:, 1]),
            "min_side_over_image_side_median": round(float(np.median(rel)), 4),
        }
    return out


def _stats(values: Any) -> dict[str, float]:
    import numpy as np

    return {"min": round(float(values.min()), 1), "median": round(float(np.median(values)), 1),
            "max": round(float(values.max()), 1)}


def _image_sizes(items: list[Annotation]) -> dict[str, int]:
    counts = Counter(f"{a.width}x{a.height}" for a in items)
    return dict(counts.most_common())


def format_summary(summary: dict[str, Any], dataset: Dataset) -> str:
    from detectflow.datasets import format_issue_report

    classes = summary["classes"]
    lines = [
        f"Dataset {summary['root']}  (format: {summary['format']}, layout: {summary['layout']}; "
        f"splits: {summary['split_source']})",
        f"Classes ({len(classes)}): {', '.join(classes)}",
        "",
        f"{'split':>9} {'images':>7} {'boxes':>7} " + " ".join(f"{c[:10]:>10}" for c in classes),
    ]
    for name, split in summary["splits"].items():
        per_class = " ".join(f"{split['boxes_per_class'][c]:>10}" for c in classes)
        lines.append(f"{name:>9} {split['images']:>7} {split['boxes']:>7} {per_class}")
    lines += ["", "Box sizes, pixels (min / median / max); median smallest side vs image side:"]
    for name, sizes in summary["box_sizes_px"].items():
        if not sizes["count"]:
            lines.append(f"  {name:>12}: no boxes")
            continue
        w, h = sizes["width"], sizes["height"]
        lines.append(
            f"  {name:>12}: w {w['min']:g} / {w['median']:g} / {w['max']:g}, "
            f"h {h['min']:g} / {h['median']:g} / {h['max']:g}, "
            f"{100 * sizes['min_side_over_image_side_median']:.1f}% of the image side"
        )
    sizes = ", ".join(f"{k} ({v})" for k, v in list(summary["image_sizes"].items())[:5])
    lines += ["", f"Image sizes: {sizes or 'none'}", "", format_issue_report(dataset.issues)]
    return "\n".join(lines) + "\n"
