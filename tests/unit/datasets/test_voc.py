"""Reading Pascal VOC in both layouts; every planted defect repaired or skipped, and reported."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.synthetic import MALFORMED_DEFECTS, make_voc_dataset

from detectflow.datasets.voc import DatasetError, format_issue_report, issue_counts, load_voc


def _xml_boxes(xml_path: Path) -> list[tuple[str, list[float]]]:
    import xml.etree.ElementTree as ET

    root = ET.parse(xml_path).getroot()
    return [
        (o.findtext("name") or "",
         [float(o.findtext(f"bndbox/{k}") or "nan") for k in ("xmin", "ymin", "xmax", "ymax")])
        for o in root.iter("object")
    ]


def test_standard_layout_reads_boxes_and_splits_as_written(voc_root: Path) -> None:
    dataset = load_voc(voc_root)

    assert dataset.layout == "voc"
    assert dataset.classes == ["circle", "square", "triangle"]
    assert dataset.split_source == "ImageSets/Main"
    assert [a.image_id for a in dataset.split("test")] == ["img_00000", "img_00005"]
    assert [a.image_id for a in dataset.split("val")] == ["img_00001", "img_00006"]
    assert len(dataset.split("train")) == 6
    trainval = {a.image_id for a in dataset.split("trainval")}
    assert trainval == {a.image_id for a in dataset.split("train") + dataset.split("val")}
    assert len(dataset.split("all")) == 10
    assert dataset.issues == []
    first = dataset.split("all")[0]
    expected = _xml_boxes(voc_root / "Annotations" / "img_00000.xml")
    np.testing.assert_array_equal(first.boxes_xyxy, np.array([b for _, b in expected]))
    assert [dataset.classes[i] for i in first.class_ids] == [n for n, _ in expected]
    assert (first.width, first.height) == (160, 120)
    assert first.image_path == voc_root / "JPEGImages" / "img_00000.jpg"
    assert first.boxes_xyxy.dtype == np.float32 and first.class_ids.dtype == np.int64
    assert dataset.split("test")[1] in dataset.split("all")  # identity, not array, equality


def test_flat_layout_splits_by_sorted_index_modulo_five(tmp_path: Path) -> None:
    root = make_voc_dataset(tmp_path / "flat", n_images=12, layout="flat")

    dataset = load_voc(root)

    assert dataset.layout == "flat"
    assert dataset.split_source.startswith("sorted annotation files")
    ids = sorted(a.image_id for a in dataset.split("all"))
    assert [a.image_id for a in dataset.split("test")] == [ids[0], ids[5], ids[10]]
    assert [a.image_id for a in dataset.split("val")] == [ids[1], ids[6], ids[11]]
    assert len(dataset.split("train")) == 6
    assert len(dataset.split("trainval")) == 9
    assert not {a.image_id for a in dataset.split("test")} & {
        a.image_id for a in dataset.split("trainval")
    }


def test_flat_split_does_not_move_when_a_file_is_broken(tmp_path: Path) -> None:
    root = make_voc_dataset(tmp_path / "flat", n_images=10, layout="flat")
    before = {a.image_id for a in load_voc(root).split("test")}
    (root / "annotations" / "img_00003.xml").write_text("not xml")

    after = load_voc(root)

    assert {a.image_id for a in after.split("test")} == before
    assert issue_counts(after.issues) == {"unparsable_xml": 1}


def test_every_planted_defect_is_repaired_or_skipped_and_reported(tmp_path: Path) -> None:
    root = make_voc_dataset(tmp_path / "bad", n_images=8, malformed=True)

    dataset = load_voc(root)

    reported = {(i.file.removesuffix(".xml"), i.kind) for i in dataset.issues}
    assert reported == set(MALFORMED_DEFECTS.items())
    by_id = {a.image_id: a for a in dataset.split("all")}
    assert set(by_id) == {f"img_{i:05d}" for i in range(8)}  # the two broken files skipped
    ann_dir = root / "Annotations"
    # Whitespace: the stripped name is a known class, so the box is kept.
    assert len(by_id["img_00000"]) == len(_xml_boxes(ann_dir / "img_00000.xml"))
    # Zero-width box: dropped, the others kept.
    assert len(by_id["img_00001"]) == len(_xml_boxes(ann_dir / "img_00001.xml")) - 1
    # Inverted: coordinates swapped back.
    np.testing.assert_array_equal(by_id["img_00002"].boxes_xyxy[-1], [40, 10, 60, 30])
    # Out of bounds: clipped to the 160x120 image.
    np.testing.assert_array_equal(by_id["img_00003"].boxes_xyxy[-1], [145, 0, 160, 20])
    # <size> 0x0: the real size is read from the image header.
    assert (by_id["img_00004"].width, by_id["img_00004"].height) == (160, 120)
    for annotation in by_id.values():
        boxes = annotation.boxes_xyxy
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        assert (boxes >= 0).all() and (boxes[:, [0, 2]] <= 160).all()
        assert (boxes[:, [1, 3]] <= 120).all()


def test_issue_report_gives_counts_actions_and_file_names(tmp_path: Path) -> None:
    dataset = load_voc(make_voc_dataset(tmp_path / "bad", n_images=6, malformed=True))

    report = format_issue_report(dataset.issues)

    assert report.splitlines()[0] == "7 annotation issue(s):"
    degenerate = next(line for line in report.splitlines() if "degenerate_box" in line)
    assert "1" in degenerate.split() and "box skipped" in degenerate
    assert "img_00001.xml" in degenerate
    assert "broken.xml" in report and "missing_image.xml" in report
    assert format_issue_report([]) == "No annotation issues found."


def test_given_class_list_fixes_order_and_skips_unknown_classes(voc_root: Path) -> None:
    dataset = load_voc(voc_root, classes=["triangle", "circle"])

    assert dataset.classes == ["triangle", "circle"]
    unknown = [i for i in dataset.issues if i.kind == "unknown_class"]
    squares = sum(
        name == "square"
        for xml in (voc_root / "Annotations").glob("*.xml")
        for name, _ in _xml_boxes(xml)
    )
    assert len(unknown) == squares > 0
    assert all("'square'" in i.detail for i in unknown)
    assert all(set(a.class_ids.tolist()) <= {0, 1} for a in dataset.split("all"))


def test_rejects_duplicate_class_names(voc_root: Path) -> None:
    with pytest.raises(DatasetError, match="repeated"):
        load_voc(voc_root, classes=["circle", " circle"])


def test_split_file_entry_without_annotation_is_reported(voc_root: Path) -> None:
    test_txt = voc_root / "ImageSets" / "Main" / "test.txt"
    test_txt.write_text(test_txt.read_text() + "img_99999\n")

    dataset = load_voc(voc_root)

    assert issue_counts(dataset.issues) == {"missing_annotation": 1}
    assert len(dataset.split("test")) == 2


def test_size_comes_from_the_upright_image_when_exif_rotates_it(voc_root: Path) -> None:
    image_path = voc_root / "JPEGImages" / "img_00007.jpg"
    with Image.open(image_path) as img:
        exif = img.getexif()
        exif[0x0112] = 6  # rotate 90° on display: the upright image is 120x160
        img.save(image_path, exif=exif)

    by_id = {a.image_id: a for a in load_voc(voc_root).split("all")}

    assert (by_id["img_00007"].width, by_id["img_00007"].height) == (120, 160)
    kinds = [i.kind for i in load_voc(voc_root).issues]
    # The XML still says 160x120; boxes past x=120 of the upright image get clipped too.
    assert kinds[0] == "size_mismatch"
    assert set(kinds[1:]) <= {"out_of_bounds_box", "degenerate_box"}


def test_image_found_through_xml_filename_when_named_differently(voc_root: Path) -> None:
    jpegs = voc_root / "JPEGImages"
    shutil.move(jpegs / "img_00002.jpg", jpegs / "renamed.jpg")
    xml = voc_root / "Annotations" / "img_00002.xml"
    xml.write_text(xml.read_text().replace("img_00002.jpg", "renamed.jpg"))

    by_id = {a.image_id: a for a in load_voc(voc_root).split("all")}

    assert by_id["img_00002"].image_path.name == "renamed.jpg"


def test_unreadable_image_is_skipped_not_fatal(voc_root: Path) -> None:
    (voc_root / "JPEGImages" / "img_00003.jpg").write_bytes(b"this is not a jpeg")

    dataset = load_voc(voc_root)

    assert issue_counts(dataset.issues) == {"unreadable_image": 1}
    assert "img_00003" not in {a.image_id for a in dataset.split("all")}


def test_non_numeric_or_missing_coordinates_are_skipped(voc_root: Path) -> None:
    xml = voc_root / "Annotations" / "img_00005.xml"
    n_boxes = len(_xml_boxes(xml))
    text = xml.read_text()
    first_xmin = text.index("<xmin>")
    end = text.index("</xmin>")
    xml.write_text(text[:first_xmin] + "<xmin>abc" + text[end:])

    dataset = load_voc(voc_root)

    assert issue_counts(dataset.issues) == {"invalid_box": 1}
    assert len({a.image_id: a for a in dataset.split("all")}["img_00005"]) == n_boxes - 1


def test_folder_that_is_not_a_dataset_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="Annotations/ \\+ JPEGImages/"):
        load_voc(tmp_path)
    with pytest.raises(DatasetError, match="not a folder"):
        load_voc(tmp_path / "nope")


def test_unknown_split_name_lists_the_valid_ones(voc_root: Path) -> None:
    with pytest.raises(KeyError, match="trainval"):
        load_voc(voc_root).split("validation")


def test_committed_samples_load_cleanly(samples_dir: Path) -> None:
    dataset = load_voc(samples_dir)

    assert dataset.classes == ["Platelets", "RBC", "WBC"]
    assert len(dataset.split("test")) == 4
    assert dataset.issues == []
    counts = np.bincount(np.concatenate([a.class_ids for a in dataset.split("test")]))
    assert counts.tolist() == [8, 56, 6]
