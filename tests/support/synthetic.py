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
