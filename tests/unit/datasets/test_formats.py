"""COCO and YOLO read into the same annotations as the VOC they were converted from; format
detection; each format's planted defects repaired or skipped and reported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from support.synthetic import (
    MALFORMED_COCO_DEFECTS,
    MALFORMED_YOLO_DEFECTS,
    make_coco_dataset,
    make_voc_dataset,
    make_yolo_dataset,
    voc_to_coco,
    voc_to_yolo,
)

from detectflow.datasets import (
    DatasetError,
    detect_format,
    format_issue_report,
    issue_counts,
    load_dataset,
)
from detectflow.datasets.dataset import Dataset
from detectflow.datasets.yolo import label_path

# YOLO files hold normalized coordinates to 6 decimals: 0.5e-6 of a 160 px side.
YOLO_PX = 1e-3


def _assert_same_annotations(a: Dataset, b: Dataset, split: str, atol: float = 0.0) -> None:
    assert a.classes == b.classes
    # Order inside a split is not data (VOC's trainval.txt is sorted, COCO's is train + val).
    left = sorted(a.split(split), key=lambda x: x.image_id)
    right = sorted(b.split(split), key=lambda y: y.image_id)
    assert [x.image_id for x in left] == [y.image_id for y in right]
    for x, y in zip(left, right, strict=True):
        assert (x.width, x.height) == (y.width, y.height)
        assert x.image_path.name == y.image_path.name
        np.testing.assert_allclose(x.boxes_xyxy, y.boxes_xyxy, atol=atol, rtol=0)
        np.testing.assert_array_equal(x.class_ids, y.class_ids)
        np.testing.assert_array_equal(x.difficult, y.difficult)


def test_coco_folder_keeps_the_split_files_and_the_boxes(voc_root: Path, tmp_path: Path) -> None:
    coco = load_dataset(voc_to_coco(voc_root, tmp_path / "coco"))
    voc = load_dataset(voc_root)

    assert coco.layout == "coco" and coco.format == "coco" and voc.format == "voc"
    assert coco.split_source.startswith("split files")
    assert coco.issues == []
    for split in ("train", "val", "trainval", "test", "all"):
        _assert_same_annotations(voc, coco, split)


def test_one_coco_file_is_split_by_the_rule_like_a_flat_voc_folder(tmp_path: Path) -> None:
    flat = make_voc_dataset(tmp_path / "flat", n_images=12, layout="flat")
    path = voc_to_coco(flat, tmp_path / "coco", single_file=True)

    coco = load_dataset(path)

    assert path.suffix == ".json" and coco.split_source.startswith("sorted image names")
    for split in ("train", "val", "test", "all"):
        _assert_same_annotations(load_dataset(flat), coco, split)
    # the folder holding only that file is read the same way (Label Studio's result.json)
    assert [a.image_id for a in load_dataset(path.parent).split("test")] == [
        a.image_id for a in coco.split("test")
    ]


def test_yolo_matches_voc_to_the_written_precision(voc_root: Path, tmp_path: Path) -> None:
    yolo = load_dataset(voc_to_yolo(voc_root, tmp_path / "yolo"))

    assert yolo.layout == "yolo" and yolo.split_source == "data.yaml"
    assert yolo.issues == []
    for split in ("train", "val", "trainval", "test", "all"):
        _assert_same_annotations(load_dataset(voc_root), yolo, split, atol=YOLO_PX)


def test_the_bccd_samples_read_alike_in_all_three_formats(samples_dir: Path,
                                                          tmp_path: Path) -> None:
    voc = load_dataset(samples_dir)
    coco = load_dataset(voc_to_coco(samples_dir, tmp_path / "coco"))
    yolo = load_dataset(voc_to_yolo(samples_dir, tmp_path / "yolo"))

    assert len(voc.split("test")) == 4
    _assert_same_annotations(voc, coco, "test")
    _assert_same_annotations(voc, yolo, "test", atol=640 * 1e-6)


def test_format_detection_and_a_clear_error_for_anything_else(voc_root: Path,
                                                             tmp_path: Path) -> None:
    coco_dir = voc_to_coco(voc_root, tmp_path / "coco")
    yolo_dir = voc_to_yolo(voc_root, tmp_path / "yolo")
    (tmp_path / "empty").mkdir()

    assert detect_format(voc_root) == "voc"
    assert detect_format(coco_dir) == "coco"
    assert detect_format(coco_dir / "annotations" / "instances_train.json") == "coco"
    assert detect_format(yolo_dir) == "yolo" and detect_format(yolo_dir / "data.yaml") == "yolo"
    for bad in (tmp_path / "empty", tmp_path / "nope", voc_root / "JPEGImages" / "img_00000.jpg"):
        with pytest.raises(DatasetError, match=r"Pascal VOC .* YOLO .* COCO|does not exist"):
            load_dataset(bad)


def test_a_given_class_list_orders_and_filters_every_format(voc_root: Path,
                                                            tmp_path: Path) -> None:
    for path in (voc_root, voc_to_coco(voc_root, tmp_path / "c"), voc_to_yolo(voc_root,
                                                                                tmp_path / "y")):
        dataset = load_dataset(path, classes=["triangle", "circle"])

        assert dataset.classes == ["triangle", "circle"]
        assert set(issue_counts(dataset.issues)) == {"unknown_class"}, path
        assert all(set(a.class_ids.tolist()) <= {0, 1} for a in dataset.split("all"))


def test_coco_defects_are_repaired_or_skipped_and_reported(tmp_path: Path) -> None:
    dataset = load_dataset(make_coco_dataset(tmp_path, n_images=10, malformed=True))

    assert {(i.file, i.kind) for i in dataset.issues} == MALFORMED_COCO_DEFECTS
    by_id = {a.image_id: a for a in dataset.split("all")}
    assert set(by_id) == {f"img_{i:05d}" for i in range(10)}  # ghost.jpg skipped
    inverted = by_id["img_00002"].boxes_xyxy[0]
    assert inverted[2] > inverted[0]
    assert by_id["img_00003"].boxes_xyxy[0][2] == 160  # clipped
    assert (by_id["img_00004"].width, by_id["img_00004"].height) == (160, 120)
    report = format_issue_report(dataset.issues)
    assert report.splitlines()[0] == f"{len(MALFORMED_COCO_DEFECTS)} annotation issue(s):"
    assert "orphan_annotation" in report and "box skipped" in report


def test_yolo_defects_are_repaired_or_skipped_and_reported(tmp_path: Path) -> None:
    root = make_yolo_dataset(tmp_path, n_images=10, malformed=True)
    clean = load_dataset(make_yolo_dataset(tmp_path / "clean", n_images=10))

    dataset = load_dataset(root)

    assert {(i.file, i.kind) for i in dataset.issues} == MALFORMED_YOLO_DEFECTS
    by_id = {a.image_id: a for a in dataset.split("all")}
    before = {a.image_id: a for a in clean.split("all")}
    assert "img_00007" not in by_id and len(by_id) == 9
    assert len(by_id["img_00001"]) == len(before["img_00001"])  # degenerate dropped
    assert by_id["img_00002"].boxes_xyxy[-1][2] == 160  # clipped
    assert len(by_id["img_00005"]) == len(before["img_00005"]) + 1  # polygon kept as a box
    np.testing.assert_allclose(by_id["img_00005"].boxes_xyxy[-1], [16, 12, 48, 48], atol=1e-4)
    assert len(by_id["img_00006"]) == len(before["img_00006"])  # repeat dropped


def test_coco_images_are_found_in_the_layouts_tools_write(voc_root: Path,
                                                          tmp_path: Path) -> None:
    root = voc_to_coco(voc_root, tmp_path / "coco")
    # COCO 2017 and Roboflow put each split's images in a folder named after it.
    for split in ("train", "val", "test"):
        (root / split).mkdir()
    for name in json.loads((root / "annotations" / "instances_val.json").read_text())["images"]:
        shutil.move(root / "images" / name["file_name"], root / "val" / name["file_name"])
    roboflow = tmp_path / "roboflow"
    (roboflow / "valid").mkdir(parents=True)
    shutil.copyfile(root / "annotations" / "instances_val.json",
                    roboflow / "valid" / "_annotations.coco.json")
    for image in (root / "val").iterdir():
        shutil.copyfile(image, roboflow / "valid" / image.name)

    moved = load_dataset(root)
    from_roboflow = load_dataset(roboflow)

    assert moved.issues == [] and len(moved.split("val")) == 2
    assert [a.image_path.parent.name for a in moved.split("val")] == ["val", "val"]
    _assert_same_annotations(moved, from_roboflow, "val")


def test_yolo_label_paths_follow_the_ultralytics_rule() -> None:
    assert label_path(Path("/d/images/train/a.jpg")) == Path("/d/labels/train/a.txt")
    assert label_path(Path("/images/d/images/x/b.png")) == Path("/images/d/labels/x/b.txt")
    assert label_path(Path("/d/pics/c.jpg")) == Path("/d/pics/c.txt")


def test_yolo_names_as_a_list_a_moved_root_and_background_images(voc_root: Path,
                                                                 tmp_path: Path) -> None:
    root = voc_to_yolo(voc_root, tmp_path / "yolo")
    (root / "data.yaml").write_text(
        "path: /somewhere/else\ntrain: images/train\nval: images/val\n"
        "names: [circle, square, triangle]\n"
    )
    (root / "labels" / "train" / "img_00002.txt").unlink()

    dataset = load_dataset(root)

    assert dataset.classes == ["circle", "square", "triangle"]
    assert dataset.split("test") == []  # data.yaml names no test split
    assert len(dataset.split("trainval")) == 8
    background = next(a for a in dataset.split("train") if a.image_id == "img_00002")
    assert len(background) == 0 and dataset.issues == []


def test_the_same_split_scores_the_same_map_from_every_format(voc_root: Path,
                                                              tmp_path: Path) -> None:
    from detectflow.evaluation.metrics import GroundTruth, Predictions, evaluate_detections

    voc = load_dataset(voc_root)
    rng = np.random.default_rng(0)
    # one fixed set of imperfect detections per image: jittered boxes, some dropped, scored
    detections = {}
    for item in voc.split("test") + voc.split("val"):
        keep = rng.random(len(item)) < 0.8
        jitter = rng.normal(0, 2.0, size=(int(keep.sum()), 4))
        detections[item.image_id] = Predictions(item.boxes_xyxy[keep] + jitter,
                                                rng.uniform(0.2, 1.0, int(keep.sum())),
                                                item.class_ids[keep])
    datasets = {"voc": voc, "coco": load_dataset(voc_to_coco(voc_root, tmp_path / "c")),
                "yolo": load_dataset(voc_to_yolo(voc_root, tmp_path / "y"))}

    for split in ("test", "val"):
        scores = {}
        for name, dataset in datasets.items():
            items = dataset.split(split)
            report = evaluate_detections(
                [GroundTruth(a.boxes_xyxy, a.class_ids, a.difficult) for a in items],
                [detections[a.image_id] for a in items], dataset.classes)
            scores[name] = (report.map50, report.map50_95)
        assert 0.2 < scores["voc"][1] < 0.95  # neither trivial nor hopeless
        assert scores["coco"] == scores["voc"]
        assert scores["yolo"] == pytest.approx(scores["voc"], abs=1e-9)


def test_coco_json_of_the_wrong_shapes_is_reported_never_a_crash(tmp_path: Path) -> None:
    odd = {
        "images": [{"id": [1], "file_name": "x.jpg"}, {"id": 2, "file_name": 5}, "junk",
                   {"id": 3, "file_name": "y.jpg", "width": "abc"}],
        "annotations": [{"image_id": [3]}, 7,
                        {"image_id": 3, "category_id": {"a": 1}, "bbox": "no"}],
        "categories": [{"id": [1], "name": "q"}, {"id": 1, "name": 5}, "c",
                       {"id": 1, "name": "cell"}],
    }
    (tmp_path / "odd.json").write_text(json.dumps(odd))
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "broken.json").write_text("{not json")

    dataset = load_dataset(tmp_path / "odd.json")

    assert issue_counts(dataset.issues) == {"invalid_image_entry": 3, "orphan_annotation": 2,
                                            "unknown_class": 1, "missing_image": 1}
    for name in ("list.json", "broken.json"):
        with pytest.raises(DatasetError, match="no COCO JSON file could be read"):
            load_dataset(tmp_path / name)
