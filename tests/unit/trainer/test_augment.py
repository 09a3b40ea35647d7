"""Box-aware augmentation: crops, mosaic, scale/shift, mixup (numpy only, fast).

The images are white squares on black, so a box that still frames its object can be checked
by looking at the pixels under it.
"""

from __future__ import annotations

import numpy as np
import pytest

from trainer.augment import (
    MIN_VISIBLE_FRACTION,
    AugmentConfig,
    Sample,
    augment,
    clip_boxes,
    full_sample,
    mosaic,
    scale_and_shift,
)


def boxes(*rows: tuple[float, float, float, float]) -> np.ndarray:
    return np.array(rows, dtype=np.float32).reshape(-1, 4)


def squares_image(height: int, width: int, squares: list[tuple[int, int, int]]) -> Sample:
    """Black image with white squares (x0, y0, side); returns it with their boxes."""
    image = np.zeros((height, width, 3), np.uint8)
    for x0, y0, side in squares:
        image[y0 : y0 + side, x0 : x0 + side] = 255
    found = boxes(*[(x0, y0, x0 + side, y0 + side) for x0, y0, side in squares])
    return image, found, np.arange(len(squares), dtype=np.int64)


def assert_boxes_frame_white(image: np.ndarray, found: np.ndarray) -> None:
    height, width = image.shape[:2]
    for x0, y0, x1, y1 in found:
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
        inside = image[int(y0) + 2 : int(y1) - 2, int(x0) + 2 : int(x1) - 2]
        if inside.size:
            assert inside.mean() > 150, (x0, y0, x1, y1)


def test_clip_keeps_a_mostly_visible_box_clipped_and_drops_a_mostly_hidden_one() -> None:
    kept, labels = clip_boxes(boxes((-10, 0, 30, 40), (-35, 0, 5, 40)), np.array([1, 2]), 100, 100)
    np.testing.assert_allclose(kept, boxes((0, 0, 30, 40)))  # 75 % visible: kept, clipped
    assert labels.tolist() == [1]  # 12.5 % visible (< MIN_VISIBLE_FRACTION): dropped
    assert MIN_VISIBLE_FRACTION > 0.125


def test_scale_and_shift_moves_boxes_with_the_pixels() -> None:
    image, found, labels = squares_image(100, 100, [(40, 40, 20)])
    out, moved, kept = scale_and_shift(image, found, labels, (200, 160), 1.5, (10.0, -5.0))
    # centre (50, 50) -> (100 + 10, 80 - 5); the square's half side 10 -> 15
    np.testing.assert_allclose(moved, boxes((95, 60, 125, 90)))
    assert out.shape == (160, 200, 3) and kept.tolist() == [0]
    assert_boxes_frame_white(out, moved)


def test_mosaic_puts_four_images_around_its_centre() -> None:
    sources = [squares_image(80, 100, [(30, 20, 30)]) for _ in range(4)]
    canvas, found, labels = mosaic(sources, (100, 80), np.random.default_rng(0))
    assert canvas.shape == (160, 200, 3)
    assert len(found) == 4 and len(labels) == 4  # each square fits inside its tile
    assert_boxes_frame_white(canvas, found)


@pytest.mark.parametrize("seed", range(8))
def test_full_samples_keep_boxes_on_their_objects(seed: int) -> None:
    sources = [squares_image(96, 128, [(10 + 9 * i, 20, 40), (80, 50, 30)]) for i in range(5)]
    config = AugmentConfig(crop=None, mosaic=1.0, mixup=0.0, scale_min=0.5, scale_max=1.5,
                           flip_vertical=True, rotate90=True, colour=0.0)
    image, found, labels = full_sample(lambda i: sources[i], 0, 5, (128, 96), config,
                                       np.random.default_rng(seed))
    assert image.shape == (96, 128, 3) and len(found) == len(labels)
    assert_boxes_frame_white(image, found)


def test_mixup_blends_two_samples_and_keeps_both_sets_of_boxes() -> None:
    first = squares_image(64, 64, [(4, 4, 20)])
    second = squares_image(64, 64, [(36, 36, 20)])
    config = AugmentConfig(crop=None, mixup=1.0, scale_min=1.0, scale_max=1.0, translate=0.0,
                           flip_horizontal=False, colour=0.0)
    # The partner is drawn at random (it may be the image itself): take the first seed that
    # draws the other one.
    for seed in range(20):
        image, found, _ = full_sample(lambda i: (first, second)[i], 0, 2, (64, 64), config,
                                      np.random.default_rng(seed))
        if len(found) == 2 and not np.allclose(found[0], found[1]):
            break
    else:
        pytest.fail("no seed drew the second image as the mixup partner")
    np.testing.assert_allclose(sorted(found.tolist()), [[4, 4, 24, 24], [36, 36, 56, 56]])
    assert 60 < image[14, 14, 0] < 200 and 60 < image[46, 46, 0] < 200  # both half-bright


def test_plain_samples_use_neither_mosaic_nor_mixup() -> None:
    source = squares_image(64, 64, [(10, 10, 20)])
    config = AugmentConfig(crop=None, mosaic=1.0, mixup=1.0, scale_min=1.0, scale_max=1.0,
                           translate=0.0, flip_horizontal=False, colour=0.0)
    image, found, _ = full_sample(lambda i: source, 0, 3, (64, 64), config,
                                  np.random.default_rng(0), strong=False)
    np.testing.assert_array_equal(image, source[0])
    np.testing.assert_allclose(found, source[1])


@pytest.mark.parametrize("seed", range(5))
def test_augment_keeps_boxes_inside_the_crop_and_on_their_objects(seed: int) -> None:
    """A white square on black: after augmentation each box still frames white pixels."""
    image, found, labels = squares_image(288, 384, [(200, 100, 60)])
    config = AugmentConfig(crop=256, flip_vertical=True, rotate90=True, colour=0.0)
    crop, out_boxes, out_labels = augment(image, found, labels, config,
                                          np.random.default_rng(seed))
    assert crop.shape == (256, 256, 3)
    assert len(out_boxes) == len(out_labels)
    assert_boxes_frame_white(crop, out_boxes)
