"""Synthetic Pascal-VOC datasets for tests: coloured shapes on a noisy background.

`make_voc_dataset(tmp_path)` writes a small, learnable detection dataset in a second:
every class has its own shape and colour, objects are 10-40 px (one small 10-13 px object
per image, so small-object paths are exercised), and several objects share each image.

Layouts:
- "voc":  Annotations/, JPEGImages/, ImageSets/Main/{train,val,trainval,test}.txt
          (image i goes to test when i % 5 == 0, val when i % 5 == 1, train otherwise).
- "flat": annotations/ + images/ and no split files (the loader splits them itself).

`malformed=True` adds the defects real datasets have; `MALFORMED_DEFECTS` lists exactly what
was planted, so tests can assert the loader reported each one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image, ImageDraw

Layout = Literal["voc", "flat"]

# Distinct, saturated colours on a mid-grey background: easy to learn in a few steps.
CLASS_COLOURS = (
    (230, 40, 40),
    (40, 200, 60),
    (50, 90, 240),
    (240, 220, 40),
    (220, 60, 220),
    (40, 220, 220),
)
SHAPES = ("ellipse", "rectangle", "triangle")

# What `malformed=True` plants (file stem -> defect kind), in the loader's vocabulary.
MALFORMED_DEFECTS = {
    "img_00000": "whitespace_in_name",  # fixed: " circle " -> "circle"
    "img_00001": "degenerate_box",  # skipped: zero width
    "img_00002": "inverted_box",  # fixed: xmin/xmax swapped back
    "img_00003": "out_of_bounds_box",  # clipped to the image
    "img_00004": "missing_size",  # <size> 0x0: the image's real size is used
    "missing_image": "missing_image",  # XML whose image file does not exist
    "broken": "unparsable_xml",  # not XML at all
}


@dataclass(frozen=True)
class SyntheticObject:
    name: str
    box_xyxy: tuple[int, int, int, int]
    difficult: bool = False


def make_voc_dataset(
    root: str | Path,
    n_images: int = 10,
    classes: tuple[str, ...] = ("circle", "square", "triangle"),
    size: tuple[int, int] = (160, 120),
    layout: Layout = "voc",
    seed: int = 0,
    malformed: bool = False,
) -> Path:
    """Write a dataset under `root` and return `root`. Deterministic for a given seed."""
    root = Path(root)
    ann_dir, img_dir = _layout_dirs(root, layout)
    ann_dir.mkdir(parents=True, exist_ok=True)
    img_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ids = [f"img_{i:05d}" for i in range(n_images)]
    for image_id in ids:
        objects = _random_objects(rng, classes, size)
        _draw_image(rng, objects, classes, size).save(img_dir / f"{image_id}.jpg", quality=95)
        _write_xml(ann_dir / f"{image_id}.xml", f"{image_id}.jpg", size, objects)
    if malformed:
        ids += _plant_defects(ann_dir, classes, size, n_images)
    if layout == "voc":
        _write_splits(root, ids)
    return root


def _layout_dirs(root: Path, layout: Layout) -> tuple[Path, Path]:
    if layout == "voc":
        return root / "Annotations", root / "JPEGImages"
    if layout == "flat":
        return root / "annotations", root / "images"
    raise ValueError(f"unknown layout {layout!r}")


def _random_objects(
    rng: np.random.Generator, classes: tuple[str, ...], size: tuple[int, int]
) -> list[SyntheticObject]:
    """3-6 objects, little overlap; the first is small (10-13 px) on purpose."""
    width, height = size
    objects: list[SyntheticObject] = []
    placed: list[tuple[int, int, int, int]] = []
    target = int(rng.integers(3, 7))
    for _ in range(200):
        if len(objects) == target:
            break
        side = int(rng.integers(10, 14)) if not objects else int(rng.integers(10, 41))
        x0 = int(rng.integers(0, width - side))
        y0 = int(rng.integers(0, height - side))
        box = (x0, y0, x0 + side, y0 + side)
        if any(_overlap(box, other) > 0.1 for other in placed):
            continue
        placed.append(box)
        # Every class appears in every image when there is room; the rest are random.
        class_index = len(objects) if len(objects) < len(classes) else int(
            rng.integers(0, len(classes))
        )
        objects.append(SyntheticObject(classes[class_index], box))
    return objects


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def _draw_image(
    rng: np.random.Generator,
    objects: list[SyntheticObject],
    classes: tuple[str, ...],
    size: tuple[int, int],
) -> Image.Image:
    width, height = size
    noise = rng.normal(110.0, 18.0, size=(height, width, 3))
    image = Image.fromarray(np.clip(noise, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for obj in objects:
        index = classes.index(obj.name)
        colour = CLASS_COLOURS[index % len(CLASS_COLOURS)]
        x0, y0, x1, y1 = obj.box_xyxy
        # Pillow's shape coordinates are inclusive; the box edges are x1, y1 (exclusive).
        shape = SHAPES[index % len(SHAPES)]
        if shape == "ellipse":
            draw.ellipse((x0, y0, x1 - 1, y1 - 1), fill=colour)
        elif shape == "rectangle":
            draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=colour)
        else:
            draw.polygon([(x0, y1 - 1), (x1 - 1, y1 - 1), ((x0 + x1) / 2, y0)], fill=colour)
    return image


def _write_xml(
    path: Path,
    filename: str,
    size: tuple[int, int],
    objects: list[SyntheticObject],
) -> None:
    """Pascal VOC XML as LabelImg writes it."""
    width, height = size
    body = []
    for obj in objects:
        coords = obj.box_xyxy
        body.append(
            "\t<object>\n"
            f"\t\t<name>{escape(obj.name)}</name>\n"
            "\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n"
            f"\t\t<difficult>{int(obj.difficult)}</difficult>\n"
            "\t\t<bndbox>\n"
            f"\t\t\t<xmin>{coords[0]}</xmin>\n\t\t\t<ymin>{coords[1]}</ymin>\n"
            f"\t\t\t<xmax>{coords[2]}</xmax>\n\t\t\t<ymax>{coords[3]}</ymax>\n"
            "\t\t</bndbox>\n\t</object>\n"
        )
    path.write_text(
        "<annotation>\n"
        f"\t<folder>images</folder>\n\t<filename>{escape(filename)}</filename>\n"
        f"\t<size>\n\t\t<width>{width}</width>\n\t\t<height>{height}</height>\n"
        "\t\t<depth>3</depth>\n\t</size>\n"
        "\t<segmented>0</segmented>\n" + "".join(body) + "</annotation>\n"
    )


def _plant_defects(
    ann_dir: Path, classes: tuple[str, ...], size: tuple[int, int], n_images: int
) -> list[str]:
    """Add one defective object to images 0-3, zero the size of image 4, add two bad files.

    Returns the extra ids (listed in the split files, as a careless export would).
    """
    if n_images < 5:
        raise ValueError("malformed=True needs n_images >= 5")
    width, height = size
    first, second, third = (classes[i % len(classes)] for i in range(3))
    _with_extra_object(ann_dir / "img_00000.xml", f" {first} ", ("20", "20", "40", "40"))
    _with_extra_object(ann_dir / "img_00001.xml", first, ("30", "30", "30", "50"))
    _with_extra_object(ann_dir / "img_00002.xml", second, ("60", "10", "40", "30"))
    _with_extra_object(
        ann_dir / "img_00003.xml", third, (str(width - 15), "-5", str(width + 12), "20")
    )
    zero_size = (ann_dir / "img_00004.xml").read_text()
    zero_size = zero_size.replace(f"<width>{width}</width>", "<width>0</width>")
    zero_size = zero_size.replace(f"<height>{height}</height>", "<height>0</height>")
    (ann_dir / "img_00004.xml").write_text(zero_size)
    _write_xml(
        ann_dir / "missing_image.xml",
        "missing_image.jpg",
        size,
        [SyntheticObject(first, (10, 10, 30, 30))],
    )
    (ann_dir / "broken.xml").write_text(f"<annotation><object><name>{first}</nam")
    return ["missing_image", "broken"]


def _with_extra_object(path: Path, name: str, coords: tuple[str, str, str, str]) -> None:
    """Append one object with verbatim name and coordinates to an existing XML file."""
    extra = (
        f"\t<object>\n\t\t<name>{escape(name)}</name>\n\t\t<difficult>0</difficult>\n"
        f"\t\t<bndbox>\n\t\t\t<xmin>{coords[0]}</xmin>\n\t\t\t<ymin>{coords[1]}</ymin>\n"
        f"\t\t\t<xmax>{coords[2]}</xmax>\n\t\t\t<ymax>{coords[3]}</ymax>\n"
        "\t\t</bndbox>\n\t</object>\n"
    )
    text = path.read_text()
    path.write_text(text.replace("</annotation>", extra + "</annotation>"))


def _write_splits(root: Path, ids: list[str]) -> None:
    main = root / "ImageSets" / "Main"
    main.mkdir(parents=True, exist_ok=True)
    splits: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for i, image_id in enumerate(ids):
        splits["test" if i % 5 == 0 else "val" if i % 5 == 1 else "train"].append(image_id)
    splits["trainval"] = sorted(splits["train"] + splits["val"])
    for name, members in splits.items():
        (main / f"{name}.txt").write_text("".join(f"{m}\n" for m in members))


# --- the same dataset as COCO JSON and YOLO txt ------------------------------------------------
# Written straight from the VOC files (ElementTree, json, plain text), not with detectflow's
# own writers, so a reader test compares detectflow against an independent conversion.


@dataclass(frozen=True)
class _VocImage:
    image_id: str
    image: Path
    width: int
    height: int
    objects: list[tuple[str, tuple[float, float, float, float], bool]]


def _read_voc(voc_root: Path) -> tuple[list[_VocImage], dict[str, list[str]], list[str]]:
    """Images (sorted), the split files' ids ({} when none), and the sorted class names."""
    import xml.etree.ElementTree as ET

    standard = (voc_root / "Annotations").is_dir()
    ann_dir = voc_root / ("Annotations" if standard else "annotations")
    img_dir = voc_root / ("JPEGImages" if standard else "images")
    images = []
    for xml_path in sorted(ann_dir.glob("*.xml")):
        node = ET.parse(xml_path).getroot()
        objects = []
        for obj in node.iter("object"):
            box = tuple(float(obj.findtext(f"bndbox/{k}") or "nan")
                        for k in ("xmin", "ymin", "xmax", "ymax"))
            difficult = (obj.findtext("difficult") or "0").strip() == "1"
            objects.append(((obj.findtext("name") or "").strip(), box, difficult))
        image = img_dir / (node.findtext("filename") or f"{xml_path.stem}.jpg")
        images.append(_VocImage(xml_path.stem, image, int(node.findtext("size/width") or 0),
                                int(node.findtext("size/height") or 0), objects))
    main = voc_root / "ImageSets" / "Main"
    splits = {name: (main / f"{name}.txt").read_text().split()
              for name in ("train", "val", "test") if (main / f"{name}.txt").is_file()}
    classes = sorted({name for im in images for name, _, _ in im.objects})
    return images, splits, classes


def voc_to_coco(voc_root: str | Path, out: str | Path, single_file: bool = False) -> Path:
    """COCO as CVAT exports it: annotations/instances_<split>.json + images/ (one file per
    split file of the VOC set); or, with `single_file`, one out/labels.json for all images
    (the reader then splits them itself). Returns the path to give `--data`."""
    import json
    import shutil

    images, splits, classes = _read_voc(Path(voc_root))
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    for im in images:
        shutil.copyfile(im.image, out / "images" / im.image.name)
    groups = {"labels": [im.image_id for im in images]} if single_file or not splits else splits
    by_id = {im.image_id: im for im in images}
    categories = [{"id": i + 1, "name": name, "supercategory": ""}
                  for i, name in enumerate(classes)]
    for group, ids in groups.items():
        entries, annotations = [], []
        for number, image_id in enumerate(ids, start=1):
            im = by_id[image_id]
            entries.append({"id": number, "file_name": im.image.name, "width": im.width,
                            "height": im.height})
            for name, (x0, y0, x1, y1), difficult in im.objects:
                annotations.append({
                    "id": len(annotations) + 1, "image_id": number,
                    "category_id": classes.index(name) + 1, "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0), "iscrowd": int(difficult),
                    "segmentation": [],
                })
        payload = {"images": entries, "annotations": annotations, "categories": categories}
        path = (out / "labels.json" if group == "labels"
                else out / "annotations" / f"instances_{group}.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload))
    return out / "labels.json" if "labels" in groups else out


def voc_to_yolo(voc_root: str | Path, out: str | Path) -> Path:
    """YOLO as Ultralytics lays it out: data.yaml, images/<split>/, labels/<split>/*.txt with
    normalized centre/size to 6 decimals (as Ultralytics and Roboflow write them). A VOC set
    without split files becomes one `train` split. Returns `out`."""
    import shutil

    images, splits, classes = _read_voc(Path(voc_root))
    out = Path(out)
    groups = splits or {"train": [im.image_id for im in images]}
    by_id = {im.image_id: im for im in images}
    for group, ids in groups.items():
        (out / "images" / group).mkdir(parents=True, exist_ok=True)
        (out / "labels" / group).mkdir(parents=True, exist_ok=True)
        for image_id in ids:
            im = by_id[image_id]
            shutil.copyfile(im.image, out / "images" / group / im.image.name)
            lines = []
            for name, (x0, y0, x1, y1), _ in im.objects:
                cx, cy = (x0 + x1) / 2 / im.width, (y0 + y1) / 2 / im.height
                w, h = (x1 - x0) / im.width, (y1 - y0) / im.height
                lines.append(f"{classes.index(name)} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n")
            (out / "labels" / group / f"{im.image.stem}.txt").write_text("".join(lines))
    names = "".join(f"  {i}: {name}\n" for i, name in enumerate(classes))
    split_lines = "".join(f"{group}: images/{group}\n" for group in groups)
    (out / "data.yaml").write_text(f"path: .\n{split_lines}names:\n{names}")
    return out


# What `make_coco_dataset(..., malformed=True)` plants: (file named in the issue, kind).
MALFORMED_COCO_DEFECTS = {
    ("img_00001.jpg", "degenerate_box"),  # bbox width 0
    ("img_00002.jpg", "inverted_box"),  # negative width: corner and size swapped back
    ("img_00003.jpg", "out_of_bounds_box"),  # past the right edge: clipped
    ("img_00004.jpg", "missing_size"),  # width/height 0: the image's real size is used
    ("img_00005.jpg", "size_mismatch"),
    ("img_00006.jpg", "invalid_box"),  # bbox of 3 numbers
    ("img_00006.jpg", "unknown_class"),  # category_id 99
    ("ghost.jpg", "missing_image"),  # an image entry without a file
    ("img_00007.jpg", "duplicate_image"),  # the same file listed twice
    ("labels.json", "orphan_annotation"),  # annotation of image_id 999
    ("labels.json", "invalid_image_entry"),  # image entry without file_name
}


def make_coco_dataset(root: str | Path, n_images: int = 10, malformed: bool = False) -> Path:
    """A synthetic set as one COCO file (root/labels.json + root/images/); `malformed` plants
    `MALFORMED_COCO_DEFECTS`. Returns the JSON file's path."""
    import json

    root = Path(root)
    path = voc_to_coco(make_voc_dataset(root / "voc", n_images, layout="flat"), root / "coco",
                       single_file=True)
    if not malformed:
        return path
    if n_images < 8:
        raise ValueError("malformed=True needs n_images >= 8")
    data = json.loads(path.read_text())
    images = {im["file_name"]: im for im in data["images"]}

    def first_box(file_name: str) -> dict[str, object]:
        image_id = images[file_name]["id"]
        return next(a for a in data["annotations"] if a["image_id"] == image_id)

    first_box("img_00001.jpg")["bbox"][2] = 0
    box = first_box("img_00002.jpg")["bbox"]
    box[0], box[2] = box[0] + box[2], -box[2]
    box = first_box("img_00003.jpg")["bbox"]
    box[0] = images["img_00003.jpg"]["width"] - box[2] / 2
    images["img_00004.jpg"]["width"] = images["img_00004.jpg"]["height"] = 0
    images["img_00005.jpg"]["width"] += 10
    first_box("img_00006.jpg")["bbox"] = [1, 2, 3]
    extra_id = max(a["id"] for a in data["annotations"])
    data["annotations"] += [
        {"id": extra_id + 1, "image_id": images["img_00006.jpg"]["id"], "category_id": 99,
         "bbox": [1, 1, 5, 5], "iscrowd": 0},
        {"id": extra_id + 2, "image_id": 999, "category_id": 1, "bbox": [1, 1, 5, 5],
         "iscrowd": 0},
    ]
    data["images"] += [
        {"id": 1000, "file_name": "ghost.jpg", "width": 160, "height": 120},
        {**images["img_00007.jpg"], "id": 1001},
        {"id": 1002, "width": 160, "height": 120},
    ]
    path.write_text(json.dumps(data))
    return path


# What `make_yolo_dataset(..., malformed=True)` plants: (label file, kind).
MALFORMED_YOLO_DEFECTS = {
    ("labels/train/img_00001.txt", "degenerate_box"),  # width 0
    ("labels/train/img_00002.txt", "out_of_bounds_box"),  # centre past the right edge
    ("labels/train/img_00003.txt", "unknown_class"),  # class 7 of 3
    ("labels/train/img_00004.txt", "invalid_box"),  # 2 numbers after the class
    ("labels/train/img_00005.txt", "polygon_as_box"),  # a segment line: its bounding box
    ("labels/train/img_00006.txt", "duplicate_box"),  # a line repeated
    ("labels/train/img_00007.txt", "unreadable_image"),  # the .jpg is not an image
}


def make_yolo_dataset(root: str | Path, n_images: int = 10, malformed: bool = False) -> Path:
    """A synthetic set in YOLO layout (one `train` split); `malformed` plants
    `MALFORMED_YOLO_DEFECTS`. Returns the dataset folder."""
    root = Path(root)
    out = voc_to_yolo(make_voc_dataset(root / "voc", n_images, layout="flat"), root / "yolo")
    if not malformed:
        return out
    if n_images < 8:
        raise ValueError("malformed=True needs n_images >= 8")
    labels = out / "labels" / "train"

    def append(stem: str, line: str) -> None:
        path = labels / f"{stem}.txt"
        path.write_text(path.read_text() + line + "\n")

    append("img_00001", "0 0.5 0.5 0 0.1")
    append("img_00002", "1 0.99 0.5 0.1 0.1")
    append("img_00003", "7 0.5 0.5 0.1 0.1")
    append("img_00004", "0 0.5 0.5")
    append("img_00005", "2 0.1 0.1 0.3 0.1 0.2 0.4")
    append("img_00006", (labels / "img_00006.txt").read_text().splitlines()[0])
    (out / "images" / "train" / "img_00007.jpg").write_text("not an image")
    return out
