"""Label writers: what they write reads back through load_dataset, in every format."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from detectflow.datasets import LABEL_FORMATS, LabelWriter, load_dataset


@pytest.mark.parametrize("label_format", LABEL_FORMATS)
def test_a_dataset_written_out_reads_back_alike(label_format: str, voc_root: Path,
                                                tmp_path: Path) -> None:
    source = load_dataset(voc_root)
    writer = LabelWriter(tmp_path / "out", label_format, source.classes)  # type: ignore[arg-type]
    for item in source.split("all"):
        writer.add(item.image_path, item.width, item.height, item.boxes_xyxy, item.class_ids,
                   np.full(len(item), 0.5))

    read = load_dataset(writer.close(), classes=source.classes)

    assert read.format == label_format and read.issues == []
    by_id = {a.image_id: a for a in read.split("all")}
    for item in source.split("all"):
        # integer VOC edges and integer synthetic boxes: exact; YOLO to its 6 decimals
        np.testing.assert_allclose(by_id[item.image_id].boxes_xyxy, item.boxes_xyxy, atol=1e-3)
        assert by_id[item.image_id].class_ids.tolist() == item.class_ids.tolist()


def test_two_images_with_one_name_both_stay_and_empty_images_are_kept(voc_root: Path,
                                                                      tmp_path: Path) -> None:
    image = voc_root / "JPEGImages" / "img_00000.jpg"
    other = tmp_path / "elsewhere" / "img_00000.jpg"
    other.parent.mkdir()
    shutil.copyfile(voc_root / "JPEGImages" / "img_00001.jpg", other)
    writer = LabelWriter(tmp_path / "out", "coco", ["circle", "square"])

    first = writer.add(image, 160, 120, [[10, 10, 40, 40]], [1], [0.9])
    second = writer.add(other, 160, 120, np.zeros((0, 4)), [], [])
    out = writer.close()

    assert (first.name, second.name) == ("img_00000.jpg", "img_00000_1.jpg")
    data = json.loads((out / "annotations" / "instances_default.json").read_text())
    assert [c["name"] for c in data["categories"]] == ["circle", "square"]
    assert data["annotations"][0]["score"] == 0.9 and data["annotations"][0]["category_id"] == 2
    read = load_dataset(out, classes=["circle", "square"])
    assert sorted(len(a) for a in read.split("all")) == [0, 1]


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown label format"):
        LabelWriter(tmp_path, "kitti", ["a"])  # type: ignore[arg-type]
