"""`detectflow data`: the dataset summary and the annotation-defect report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support.synthetic import MALFORMED_DEFECTS, make_voc_dataset


def _data(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "detectflow.cli", "data", *map(str, args)],
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_json_summary_counts_splits_classes_and_every_defect(tmp_path: Path) -> None:
    root = make_voc_dataset(tmp_path / "bad", n_images=10, malformed=True)

    result = _data("--data", root, "--json")

    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["layout"] == "voc" and summary["classes"] == ["circle", "square", "triangle"]
    assert summary["issues"]["counts"] == {kind: 1 for kind in MALFORMED_DEFECTS.values()}
    assert {i["file"] for i in summary["issues"]["items"]} == {
        f"{stem}.xml" for stem in MALFORMED_DEFECTS
    }
    splits = summary["splits"]
    assert splits["all"]["images"] == 10
    assert splits["trainval"]["images"] == splits["train"]["images"] + splits["val"]["images"]
    assert sum(splits["all"]["boxes_per_class"].values()) == splits["all"]["boxes"]
    circle = summary["box_sizes_px"]["circle"]
    assert 10 <= circle["width"]["min"] <= circle["width"]["median"] <= circle["width"]["max"]
    assert circle["width"]["max"] <= 40
    assert summary["image_sizes"] == {"160x120": 10}


def test_text_summary_has_the_split_table_and_the_issue_report(tmp_path: Path) -> None:
    root = make_voc_dataset(tmp_path / "flat", n_images=10, layout="flat", malformed=True)

    result = _data("--data", root, "--classes", "circle", "square")

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "layout: flat" in out and "index % 5 == 0 -> test" in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()
            if line.strip().startswith(("train", "val", "test", "all"))}
    # 12 sorted files: broken, img_00000..09, missing_image. Slots 0, 5, 10 are test, and
    # slot 0 (broken.xml) does not load: 2 test images.
    assert rows["all"][0] == "10" and rows["test"][0] == "2"
    assert "unknown_class" in out and "box skipped" in out
    assert "unparsable_xml" in out and "broken.xml" in out


def test_a_folder_that_is_not_a_dataset_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    result = _data("--data", tmp_path)

    assert result.returncode == 2
    assert "is not a dataset detectflow reads" in result.stderr
    for expected in ("Pascal VOC", "YOLO (data.yaml", "COCO (annotations/instances_"):
        assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_coco_and_yolo_summaries_match_the_voc_one(tmp_path: Path) -> None:
    from support.synthetic import voc_to_coco, voc_to_yolo

    voc = make_voc_dataset(tmp_path / "voc", n_images=10)
    summaries = {}
    for name, path in (("voc", voc), ("coco", voc_to_coco(voc, tmp_path / "coco")),
                       ("yolo", voc_to_yolo(voc, tmp_path / "yolo"))):
        result = _data("--data", path, "--json")
        assert result.returncode == 0, result.stderr
        summaries[name] = json.loads(result.stdout)

    assert [s["format"] for s in summaries.values()] == ["voc", "coco", "yolo"]
    for name in ("coco", "yolo"):
        assert summaries[name]["splits"] == summaries["voc"]["splits"], name
        assert summaries[name]["image_sizes"] == summaries["voc"]["image_sizes"]
        assert summaries[name]["issues"]["counts"] == {}
