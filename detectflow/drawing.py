"""Draw detections on an image (Pillow only): `predict --save-dir` and the web app's /annotated."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from detectflow.detection import Detection

# A fixed, high-contrast palette (Ultralytics' order): class k is always the same colour.
# Ultralytics' colours, reordered so the first classes differ in hue (not three warm tones),
# and none of the first few disappears on pink/purple stained microscopy.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 194, 255), (72, 249, 10), (255, 178, 29), (255, 56, 56), (132, 56, 255),
    (0, 212, 187), (255, 55, 199), (207, 210, 49), (0, 24, 236), (255, 112, 31),
    (26, 147, 52), (203, 56, 255), (44, 153, 168), (255, 157, 151), (100, 115, 255),
    (146, 204, 23), (52, 69, 147), (61, 219, 134), (82, 0, 133), (255, 149, 200),
)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

MIN_FONT_SIZE = 10
MAX_FONT_SIZE = 160  # px: a label on a 7,000-px photo; more only costs memory and time
MAX_LINE_WIDTH = 40


def class_colour(class_id: int) -> tuple[int, int, int]:
    return PALETTE[class_id % len(PALETTE)]


@lru_cache(maxsize=16)
def _font(size: int) -> Font:
    return ImageFont.load_default(size=size)


def draw_detections(
    image: Image.Image,
    detections: Sequence[Detection],
    classes: Sequence[str] | None = None,
    box_scale: tuple[float, float] = (1.0, 1.0),
) -> Image.Image:
    """A copy of `image` with each box, its label and score drawn in its class colour.

    `classes` (the model's class list), when given, keys colours by the label's place in it,
    so records that only kept labels still get the colours the model's classes have.
    `box_scale` (x, y) maps the boxes (xyxy, pixels of the original) onto `image` when it is a
    reduced copy of the original. Line width and text size scale with the image, so small and
    large images both read well.
    """
    canvas = image.convert("RGB")  # always a copy
    draw = ImageDraw.Draw(canvas)
    line_width, font_size = stroke_sizes(canvas.size)
    font = _font(font_size)
    for detection in detections:
        colour = class_colour(_colour_index(detection, classes))
        x0, y0, x1, y1 = detection.box_xyxy
        x0, x1 = x0 * box_scale[0], x1 * box_scale[0]
        y0, y1 = y0 * box_scale[1], y1 * box_scale[1]
        draw.rectangle((x0, y0, x1, y1), outline=colour, width=line_width)
        _draw_label(draw, f"{detection.label} {detection.score:.2f}", (x0, y0), colour, font,
                    canvas.size)
    return canvas


def stroke_sizes(size: tuple[int, int]) -> tuple[int, int]:
    """(line width, font size) in pixels for an image of `size`: they grow with the image, so
    small and large images both read well, but stay bounded by its shorter side and by a
    fixed cap, so a 4,999,000x8 strip neither asks FreeType for a 110,000-px font nor draws
    15,000-px lines."""
    long_side, short_side = max(size), min(size)
    line_width = min(max(1, round(0.003 * (size[0] + size[1]))), max(1, short_side // 8),
                     MAX_LINE_WIDTH)
    font_size = min(max(MIN_FONT_SIZE, round(0.022 * long_side)),
                    max(MIN_FONT_SIZE, short_side // 2), MAX_FONT_SIZE)
    return line_width, font_size


def _colour_index(detection: Detection, classes: Sequence[str] | None) -> int:
    if classes is not None and detection.label in classes:
        return list(classes).index(detection.label)
    return detection.class_id


def _draw_label(
    draw: ImageDraw.ImageDraw,
    text: str,
    corner: tuple[float, float],
    colour: tuple[int, int, int],
    font: Font,
    image_size: tuple[int, int],
) -> None:
    """Text on a filled tab above the box's top-left corner (inside the box at the top edge)."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    width, height = right - left + 4, bottom - top + 4
    x = min(max(corner[0], 0), max(image_size[0] - width, 0))
    y = corner[1] - height if corner[1] - height >= 0 else max(corner[1], 0)
    draw.rectangle((x, y, x + width, y + height), fill=colour)
    draw.text((x + 2 - left, y + 2 - top), text, fill=_text_colour(colour), font=font)


def _text_colour(background: tuple[int, int, int]) -> tuple[int, int, int]:
    red, green, blue = background
    luminance = 0.299 * red + 0.587 * green + 0.114 * blue
    return (0, 0, 0) if luminance > 150 else (255, 255, 255)
