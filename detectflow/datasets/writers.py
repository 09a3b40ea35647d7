"""Write images and their boxes as a labelled dataset in VOC, COCO or YOLO form.

`detectflow predict --save-labels DIR --format F` uses it for pre-annotation: the model's
boxes become labels a person imports into CVAT or Label Studio, corrects, and trains on. The
folder written is a dataset `load_dataset` reads back (the images are copied into it):

- voc:  Annotations/<stem>.xml, JPEGImages/<image>, ImageSets/Main/default.txt (CVAT's subset
        file); integer pixel edges, as most VOC tools expect
- coco: annotations/instances_default.json (CVAT's name), images/<image>; `bbox` `xywh`
        pixels, category ids from 1, each annotation's model `score` kept as an extra field
- yolo: data.yaml (+ classes.txt for Label Studio), images/train/<image>,
        labels/train/<stem>.txt; normalized centre/size

Boxes come in as `xyxy` pixels of the upright image (the EXIF-rotated one, as annotation
tools display it). Two images with one name both stay: the second becomes `<stem>_1`.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

LabelFormat = Literal["voc", "coco", "yolo"]
LABEL_FORMATS: tuple[LabelFormat, ...] = ("voc", "coco", "yolo")
YOLO_SPLIT = "train"
COCO_JSON = Path("annotations") / "instances_default.json"


class LabelWriter:
    """Collects images with boxes; `add` copies each image, `close` finishes the files."""

    def __init__(self, out_dir: str | Path, data_format: LabelFormat, classes: Sequence[str]):
        if data_format not in LABEL_FORMATS:
            raise ValueError(f"unknown label format {data_format!r}; one of {LABEL_FORMATS}")
        self.out_dir = Path(out_dir)
        self.data_format = data_format
        self.classes = list(classes)
        self._stems: set[str] = set()
        self._coco: dict[str, list[dict[str, Any]]] = {"images": [], "annotations": []}
        self._voc_ids: list[str] = []

    def add(
        self,
        image: Path,
        width: int,
        height: int,
        boxes_xyxy: npt.ArrayLike,
        class_ids: npt.ArrayLike,
        scores: npt.ArrayLike | None = None,
    ) -> Path:
        """Copy `image` in and record its boxes; returns the copy's path."""
        boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        ids = np.asarray(class_ids, dtype=np.int64).reshape(-1)
        score_list = (None if scores is None
                      else np.asarray(scores, dtype=np.float64).reshape(-1).tolist())
        stem = self._unique_stem(image.stem)
        target = self._image_dir() / f"{stem}{image.suffix.lower()}"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not (target.exists() and target.samefile(image)):
            shutil.copyfile(image, target)
        if self.data_format == "voc":
            self._write_voc(target, width, height, boxes, ids)
        elif self.data_format == "coco":
            self._add_coco(target, width, height, boxes, ids, score_list)
        else:
            self._write_yolo(target, width, height, boxes, ids)
        return target

    def close(self) -> Path:
        """Write what spans all images (COCO JSON, YOLO data.yaml, VOC subset file)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.data_format == "voc":
            main = self.out_dir / "ImageSets" / "Main"
            main.mkdir(parents=True, exist_ok=True)
            (main / "default.txt").write_text("".join(f"{i}\n" for i in self._voc_ids))
        elif self.data_format == "coco":
            self._write_coco()
        else:
            self._write_yolo_yaml()
        return self.out_dir

    def _unique_stem(self, stem: str) -> str:
        candidate, number = stem, 1
        while candidate in self._stems:
            candidate = f"{stem}_{number}"
            number += 1
        self._stems.add(candidate)
        return candidate

    def _image_dir(self) -> Path:
        return self.out_dir / {"voc": "JPEGImages", "coco": "images",
                               "yolo": f"images/{YOLO_SPLIT}"}[self.data_format]

    # --- VOC ---------------------------------------------------------------------------------

    def _write_voc(
        self, image: Path, width: int, height: int, boxes: np.ndarray, ids: np.ndarray
    ) -> None:
        root = ET.Element("annotation")
        ET.SubElement(root, "folder").text = image.parent.name
        ET.SubElement(root, "filename").text = image.name
        size = ET.SubElement(root, "size")
        for tag, value in (("width", width), ("height", height), ("depth", 3)):
            ET.SubElement(size, tag).text = str(value)
        ET.SubElement(root, "segmented").text = "0"
        for box, class_id in zip(_integer_edges(boxes, width, height), ids, strict=True):
            obj = ET.SubElement(root, "object")
            ET.SubElement(obj, "name").text = self.classes[int(class_id)]
            for tag, text in (("pose", "Unspecified"), ("truncated", "0"), ("difficult", "0")):
                ET.SubElement(obj, tag).text = text
            bndbox = ET.SubElement(obj, "bndbox")
            for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True):
                ET.SubElement(bndbox, tag).text = str(value)
        ET.indent(root, space="\t")
        folder = self.out_dir / "Annotations"
        folder.mkdir(parents=True, exist_ok=True)
        ET.ElementTree(root).write(folder / f"{image.stem}.xml", encoding="unicode")
        self._voc_ids.append(image.stem)

    # --- COCO --------------------------------------------------------------------------------

    def _add_coco(
        self, image: Path, width: int, height: int, boxes: np.ndarray, ids: np.ndarray,
        scores: list[float] | None,
    ) -> None:
        image_id = len(self._coco["images"]) + 1
        self._coco["images"].append(
            {"id": image_id, "file_name": image.name, "width": width, "height": height}
        )
        for i, (box, class_id) in enumerate(zip(boxes, ids, strict=True)):
            w, h = float(box[2] - box[0]), float(box[3] - box[1])
            entry: dict[str, Any] = {
                "id": len(self._coco["annotations"]) + 1,
                "image_id": image_id,
                "category_id": int(class_id) + 1,
                "bbox": [round(float(box[0]), 2), round(float(box[1]), 2), round(w, 2),
                         round(h, 2)],
                "area": round(w * h, 2),
                "iscrowd": 0,
                "segmentation": [],
            }
            if scores is not None:
                entry["score"] = round(scores[i], 5)
            self._coco["annotations"].append(entry)

    def _write_coco(self) -> None:
        payload = {
            "info": {"description": "detectflow predictions"},
            "licenses": [],
            "categories": [{"id": i + 1, "name": name, "supercategory": ""}
                           for i, name in enumerate(self.classes)],
            **self._coco,
        }
        path = self.out_dir / COCO_JSON
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=1) + "\n")

    # --- YOLO --------------------------------------------------------------------------------

    def _write_yolo(
        self, image: Path, width: int, height: int, boxes: np.ndarray, ids: np.ndarray
    ) -> None:
        lines = []
        for box, class_id in zip(boxes, ids, strict=True):
            cx, cy = (box[0] + box[2]) / 2 / width, (box[1] + box[3]) / 2 / height
            w, h = (box[2] - box[0]) / width, (box[3] - box[1]) / height
            lines.append(f"{int(class_id)} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n")
        folder = self.out_dir / "labels" / YOLO_SPLIT
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{image.stem}.txt").write_text("".join(lines))

    def _write_yolo_yaml(self) -> None:
        import yaml

        config = {
            "path": ".",
            YOLO_SPLIT: f"images/{YOLO_SPLIT}",
            "names": dict(enumerate(self.classes)),
        }
        (self.out_dir / "data.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        # Label Studio's YOLO import reads the class names from classes.txt instead.
        (self.out_dir / "classes.txt").write_text("".join(f"{c}\n" for c in self.classes))


def _integer_edges(boxes: np.ndarray, width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Round to whole pixels inside the image, keeping at least 1 px per side."""
    out = []
    for x0, y0, x1, y1 in boxes:
        left, top = int(np.clip(round(x0), 0, width - 1)), int(np.clip(round(y0), 0, height - 1))
        right = int(np.clip(round(x1), left + 1, width))
        bottom = int(np.clip(round(y1), top + 1, height))
        out.append((left, top, right, bottom))
    return out
