"""The preprocessing cache: letterboxed pixels and mapped boxes, keyed so a rerun skips work."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import trainer.cache as cache_module
from detectflow.datasets.voc import load_voc
from detectflow.imaging import decode_image, letterbox
from trainer.cache import build_cache

INPUT = (80, 64)  # the 160x120 synthetic images scale by 0.5 into it, padded at the bottom


def _no_work(*args: object, **kwargs: object) -> None:
    raise AssertionError("a cache hit must not decode anything")


def test_images_and_boxes_are_letterboxed_into_input_pixels(voc_root: Path, tmp_path: Path) -> None:
    items = load_voc(voc_root).split("all")

    split = build_cache(items, INPUT, tmp_path / "cache", workers=1, progress=False)

    assert len(split) == 10 and split.images.shape == (10, 64, 80, 3)
    assert split.images.dtype == np.uint8 and split.input_size == INPUT
    assert split.image_ids == [a.image_id for a in items]
    np.testing.assert_allclose(split.scales, 0.5)
    assert split.original_sizes.tolist() == [[160, 120]] * 10
    for i, item in enumerate(items):
        np.testing.assert_allclose(split.boxes(i), item.boxes_xyxy * 0.5)
        np.testing.assert_array_equal(split.class_ids(i), item.class_ids)
        np.testing.assert_array_equal(split.difficult(i), item.difficult)
    expected, _ = letterbox(decode_image(items[3].image_path.read_bytes()), INPUT)
    np.testing.assert_array_equal(split.images[3], expected)
    assert (split.images[:, 60:] == 114).all()  # grey padding below the 80x60 image
    assert split.path is not None and split.path.parent == tmp_path / "cache"


def test_second_build_is_a_cache_hit_and_decodes_nothing(
    voc_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    items = load_voc(voc_root).split("train")
    first = build_cache(items, INPUT, tmp_path, workers=1, progress=False)
    monkeypatch.setattr(cache_module, "letterbox_item", _no_work)

    with caplog.at_level(logging.INFO, logger="trainer.cache"):
        second = build_cache(items, INPUT, tmp_path, workers=1, progress=False)

    assert "cache hit" in caplog.text
    assert second.path == first.path and second.data_hash == first.data_hash
    np.testing.assert_array_equal(second.images, first.images)
    np.testing.assert_array_equal(second.all_boxes, first.all_boxes)
    np.testing.assert_array_equal(second.offsets, first.offsets)
    assert second.image_ids == first.image_ids
    assert len(list(tmp_path.glob("*.npz"))) == 1


def test_key_changes_with_input_size_boxes_and_image_bytes(
    voc_root: Path, tmp_path: Path
) -> None:
    items = load_voc(voc_root).split("test")
    base = build_cache(items, INPUT, tmp_path, workers=1, progress=False)

    other_size = build_cache(items, (96, 64), tmp_path, workers=1, progress=False)
    xml = voc_root / "Annotations" / f"{items[0].image_id}.xml"
    text = xml.read_text()
    xml.write_text(text.replace("<xmin>", "<xmin>1", 1))  # e.g. 23 -> 123
    edited_boxes = build_cache(load_voc(voc_root).split("test"), INPUT, tmp_path, workers=1,
                               progress=False)
    xml.write_text(text)
    image = Image.open(items[1].image_path)
    image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(items[1].image_path, quality=95)
    edited_image = build_cache(load_voc(voc_root).split("test"), INPUT, tmp_path, workers=1,
                               progress=False)

    keys = {base.cache_key, other_size.cache_key, edited_boxes.cache_key, edited_image.cache_key}
    assert len(keys) == 4
    assert other_size.data_hash == base.data_hash  # same data, other settings
    assert len({base.data_hash, edited_boxes.data_hash, edited_image.data_hash}) == 3


def test_parallel_workers_give_the_same_result_as_one_process(
    voc_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    items = load_voc(voc_root).split("all")
    serial = build_cache(items, INPUT, tmp_path / "serial", workers=1, progress=False)
    # This process decodes from the end of the list while the worker starts; slow it down
    # (here only: the spawned worker imports the real code) so the worker gets a share.
    real = cache_module._prepare_counted

    def slow(*args: Any) -> Any:
        time.sleep(0.5)
        return real(*args)

    monkeypatch.setattr(cache_module, "_prepare_counted", slow)

    with caplog.at_level(logging.INFO, logger="trainer.cache"):
        parallel = build_cache(items, INPUT, tmp_path / "parallel", workers=2, progress=False)

    # The last build record is the parallel one (the serial build may be captured too when
    # an earlier test left the logger at INFO).
    built = [r for r in caplog.records if hasattr(r, "decoded_in_workers")][-1]
    assert 0 < built.decoded_in_workers < len(items)  # both processes decoded images
    np.testing.assert_array_equal(parallel.images, serial.images)
    np.testing.assert_array_equal(parallel.all_boxes, serial.all_boxes)
    assert parallel.image_ids == serial.image_ids
    assert parallel.cache_key == serial.cache_key


def test_undecodable_image_is_skipped_and_the_rest_is_kept(
    voc_root: Path, tmp_path: Path
) -> None:
    items = load_voc(voc_root).split("all")
    data = items[2].image_path.read_bytes()
    items[2].image_path.write_bytes(data[: len(data) // 3])  # truncated after loading

    split = build_cache(items, INPUT, tmp_path, workers=1, progress=False)

    assert split.skipped == [items[2].image_id]
    assert len(split) == 9 and items[2].image_id not in split.image_ids
    index = split.image_ids.index(items[3].image_id)
    np.testing.assert_allclose(split.boxes(index), items[3].boxes_xyxy * 0.5)


def test_damaged_cache_file_is_rebuilt(voc_root: Path, tmp_path: Path) -> None:
    items = load_voc(voc_root).split("val")
    first = build_cache(items, INPUT, tmp_path, workers=1, progress=False)
    assert first.path is not None
    first.path.write_bytes(b"garbage")

    again = build_cache(items, INPUT, tmp_path, workers=1, progress=False)

    np.testing.assert_array_equal(again.images, first.images)


def test_empty_split_gives_an_empty_cache(tmp_path: Path) -> None:
    split = build_cache([], INPUT, tmp_path, workers=1, progress=False)

    assert len(split) == 0 and split.all_boxes.shape == (0, 4)
    assert split.offsets.tolist() == [0]
