"""Drawing detections: class colours, label tabs, and the input image left untouched."""

from __future__ import annotations

import numpy as np
from PIL import Image

from detectflow.detection import Detection
from detectflow.drawing import class_colour, draw_detections


def test_boxes_are_drawn_in_their_class_colour_on_a_copy() -> None:
    image = Image.new("RGB", (200, 150), (128, 128, 128))
    detections = [
        Detection("a", 0, 0.91, (20.0, 40.0, 80.0, 120.0)),
        Detection("b", 1, 0.55, (100.0, 10.0, 190.0, 60.0)),
    ]

    drawn = draw_detections(image, detections)

    assert np.asarray(image).max() == 128  # the input is untouched
    pixels = np.asarray(drawn)
    assert tuple(pixels[80, 20]) == class_colour(0)  # left edge of box a
    assert tuple(pixels[35, 190]) == class_colour(1)  # right edge of box b
    assert tuple(pixels[80, 50]) == (128, 128, 128)  # inside stays clear
    # A label tab sits above box a: its colour and some text pixels.
    tab = pixels[25:39, 21:60]
    assert (tab == class_colour(0)).all(axis=2).mean() > 0.4
    assert not (tab == class_colour(0)).all(axis=2).all()


def test_colour_follows_the_label_in_the_given_class_list() -> None:
    image = Image.new("RGB", (100, 100))
    detection = Detection("WBC", 0, 0.9, (10.0, 30.0, 60.0, 90.0))

    drawn = np.asarray(draw_detections(image, [detection], classes=["Platelets", "RBC", "WBC"]))

    assert tuple(drawn[60, 10]) == class_colour(2)


def test_label_stays_inside_the_image_at_the_top_left_corner() -> None:
    image = Image.new("L", (64, 48))  # any mode; drawn as RGB

    drawn = draw_detections(image, [Detection("x", 3, 0.5, (0.0, 0.0, 64.0, 48.0))])

    assert drawn.mode == "RGB" and drawn.size == (64, 48)
    assert (np.asarray(drawn)[2:8, 2:10] == class_colour(3)).all(axis=2).any()
