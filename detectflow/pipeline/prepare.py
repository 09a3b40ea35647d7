"""Upload bytes -> model-input pixels, and the work object that carries them to the infer stage.

The work object is an uncompressed `.npz` (compressing costs more CPU than it saves in
transfer here): `pixels` (H, W, 3) uint8 letterboxed to the model input, and `letterbox`, the
JSON of the `Letterbox` that maps boxes back to the original image.
"""

from __future__ import annotations

import io
import json
import math
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from detectflow.imaging import ImageLimits, Letterbox, decode_image, letterbox, sniff_image


@dataclass(frozen=True, slots=True)
class PreparedImage:
    pixels: npt.NDArray[np.uint8]
    placement: Letterbox
    timings_ms: dict[str, float]


def prepare_image(data: bytes, input_size: tuple[int, int], limits: ImageLimits
                  ) -> PreparedImage:
    """Validate, decode (JPEG at reduced scale when that is all the model needs), orient,
    letterbox. Raises `ImageError` for bad input."""
    start = time.perf_counter()
    info = sniff_image(data, limits)
    scale = min(input_size[0] / info.width, input_size[1] / info.height)
    # Ask JPEG draft mode for exactly the letterboxed size: it picks the largest 1/2^k scale
    # that still covers it, often making the resize below a no-op.
    draft = (math.ceil(info.width * scale), math.ceil(info.height * scale)) if scale < 1 else None
    img = decode_image(data, limits, draft_size=draft)
    decoded = time.perf_counter()
    # Draft decoding happens only for un-rotated JPEGs, so a smaller image means drafted and
    # the header's size is the original one; otherwise the decoded (upright) size is.
    drafted = img.size not in ((info.width, info.height), (info.height, info.width))
    original = (info.width, info.height) if drafted else img.size
    pixels, placement = letterbox(img, input_size, original_size=original)
    done = time.perf_counter()
    return PreparedImage(pixels, placement, {
        "decode_ms": round((decoded - start) * 1e3, 3),
        "resize_ms": round((done - decoded) * 1e3, 3),
    })


def encode_prepared(pixels: npt.NDArray[np.uint8], placement: Letterbox) -> bytes:
    buffer = io.BytesIO()
    meta = np.frombuffer(json.dumps(placement.to_dict()).encode(), dtype=np.uint8)
    np.savez(buffer, pixels=pixels, letterbox=meta)
    return buffer.getvalue()


def decode_prepared(data: bytes) -> tuple[npt.NDArray[np.uint8], Letterbox]:
    """Raises ValueError for anything that is not a work object we wrote."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            pixels = npz["pixels"]
            placement = Letterbox.from_dict(json.loads(npz["letterbox"].tobytes()))
    except (OSError, KeyError, TypeError, ValueError, EOFError) as err:
        raise ValueError(f"not a prepared image: {err}") from err
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"prepared pixels have shape {pixels.shape} / {pixels.dtype}")
    return pixels, placement


def fit_to_input(pixels: npt.NDArray[np.uint8], placement: Letterbox,
                 input_size: tuple[int, int]) -> tuple[npt.NDArray[np.uint8], Letterbox]:
    """Re-letterbox prepared pixels when the model changed between the stages (new version
    with another input size); a no-op otherwise."""
    if placement.input_size == input_size:
        return pixels, placement
    width, height = placement.original_size
    content = pixels[: max(1, round(height * placement.scale)),
                     : max(1, round(width * placement.scale))]
    return letterbox(Image.fromarray(content), input_size, original_size=(width, height))
