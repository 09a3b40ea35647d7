"""A grid of evaluated images with predictions drawn against ground truth (PNG, Pillow only).

The images with the most errors at the serving threshold come first, so the grid shows
what to fix: boxes the model misses (thick white), boxes it invents, and wrong classes.
Each tile: ground truth in white, predictions scoring >= the threshold in their class
colour with label and score, and a caption with the counts (matching as `confusion`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

from detectflow.datasets.dataset import Annotation
from detectflow.drawing import class_colour
from detectflow.evaluation.confusion import ImageMatch, match_image
from detectflow.evaluation.metrics import GroundTruth, Predictions

TILE_PX = 320
COLUMNS = 4
MAX_IMAGES = 12
CAPTION_PX = 18
HEADER_PX = 24
BACKGROUND = (24, 24, 24)
WHITE = (255, 255, 255)


def prediction_grid(
    items: Sequence[Annotation],
    predictions: Sequence[Predictions],
    classes: Sequence[str],
    score_threshold: float,
    path: str | Path,
    max_images: int = MAX_IMAGES,
    split: str = "",
) -> Path:
    """Draw up to `max_images` of `items` (most errors first) into one PNG; returns its path."""
    matches = [match_image(GroundTruth(a.boxes_xyxy, a.class_ids, a.difficult), p,
                           score_threshold) for a, p in zip(items, predictions, strict=True)]
    order = sorted(range(len(items)), key=lambda i: (-matches[i].errors, items[i].image_id))
    chosen = order[:max_images]
    # Tiles as tall as the tallest chosen image needs at TILE_PX wide (square at most).
    height = min(TILE_PX, max((round(TILE_PX * items[i].height / max(items[i].width, 1))
                               for i in chosen), default=TILE_PX))
    tiles = [_tile(items[i], predictions[i], matches[i], classes, score_threshold, height)
             for i in chosen]
    rows = max(1, -(-len(tiles) // COLUMNS))
    columns = min(COLUMNS, max(1, len(tiles)))
    canvas = Image.new("RGB", (columns * TILE_PX, HEADER_PX + rows * (height + CAPTION_PX)),
                       BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    where = f"{split}: " if split else ""
    draw.text((6, 5), f"{where}ground truth white (thick: missed); predictions >= "
              f"{score_threshold:.3f} in class colour; most errors first",
              fill=WHITE, font=_font(13))
    for n, tile in enumerate(tiles):
        canvas.paste(tile, ((n % COLUMNS) * TILE_PX,
                            HEADER_PX + (n // COLUMNS) * (height + CAPTION_PX)))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    # 256 colours: a third of the bytes of full-colour PNG, and the boxes stay crisp.
    canvas.quantize(256).save(out, format="PNG", optimize=True)
    return out


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _tile(
    item: Annotation, prediction: Predictions, match: ImageMatch, classes: Sequence[str],
    score_threshold: float, height: int,
) -> Image.Image:
    tile = Image.new("RGB", (TILE_PX, height + CAPTION_PX), BACKGROUND)
    draw = ImageDraw.Draw(tile)
    try:
        with Image.open(item.image_path) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")  # boxes are upright pixels
    except Exception:  # Pillow raises many types for a file that is not an image
        draw.text((6, height // 2), f"{item.image_id}: unreadable", fill=WHITE, font=_font(12))
        return tile
    scale = min(TILE_PX / image.width, height / image.height)
    image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    tile.paste(image, (0, 0))
    missed = set(match.missed)
    for g, box in enumerate(item.boxes_xyxy):
        draw.rectangle(tuple(float(v) * scale for v in box), outline=WHITE,
                       width=3 if g in missed else 1)
    boxes, scores, class_ids = prediction.arrays()
    for box, score, class_id in zip(boxes, scores, class_ids, strict=True):
        if score < score_threshold:
            continue
        corner = (float(box[0]) * scale, float(box[1]) * scale)
        colour = class_colour(int(class_id))
        draw.rectangle(tuple(float(v) * scale for v in box), outline=colour, width=2)
        draw.text((corner[0] + 2, corner[1] + 1), f"{classes[int(class_id)]} {score:.2f}",
                  fill=colour, font=_font(10))
    wrong = len(match.pairs) - match.true_positives
    caption = (f"{item.image_id[:22]}  TP {match.true_positives}  wrong class {wrong}  "
               f"false {len(match.false_detections)}  missed {len(match.missed)}")
    draw.text((4, height + 3), caption, fill=WHITE, font=_font(11))
    return tile
