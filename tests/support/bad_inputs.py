"""A corpus of awkward uploads, generated in memory (no files committed), with what each must
produce: a result ("done") or an error record with a stable code ("failed").

`corpus(sample_jpeg)` builds every case; `MAX_BYTES` is the byte limit the pipeline under
test must be configured with (small, so the "too large" case stays small).
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

MAX_BYTES = 2_000_000  # configure DETECTFLOW_MAX_IMAGE_BYTES / Settings.max_image_bytes


@dataclass(frozen=True)
class Case:
    name: str
    filename: str
    data: bytes
    content_type: str
    expect: str  # "done" or "failed"
    code: str | None = None  # ErrorInfo.code when failed
    size: tuple[int, int] | None = None  # expected (width, height) of the result, when done


def _encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **params)
    return buffer.getvalue()


def _cells(width: int = 96, height: int = 64, mode: str = "RGB") -> Image.Image:
    """A small picture with some structure (not a flat colour)."""
    ys, xs = np.mgrid[0:height, 0:width]
    rgb = np.stack([(xs * 255 // max(width - 1, 1)), (ys * 255 // max(height - 1, 1)),
                    ((xs + ys) % 64) * 4], axis=-1).astype(np.uint8)
    return Image.fromarray(rgb).convert(mode)


def _noise(width: int = 96, height: int = 64) -> Image.Image:
    rng = np.random.default_rng(1)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb's shape)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(
        b"IEND", b"")


def _exif_rotated_jpeg() -> bytes:
    """A 80x40 JPEG whose EXIF says "rotate 90° clockwise" (orientation 6): upright 40x80."""
    img = _cells(80, 40)
    exif = Image.Exif()
    exif[0x0112] = 6
    return _encode(img, "JPEG", exif=exif.tobytes(), quality=90)


def _animated_gif() -> bytes:
    frames = [_cells(64, 48).convert("P"), _cells(64, 48).rotate(180).convert("P")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100,
                   loop=0)
    return buffer.getvalue()


def _png16() -> bytes:
    ramp = (np.arange(64 * 48, dtype=np.uint32).reshape(48, 64) * 20).astype(np.uint16)
    return _encode(Image.fromarray(ramp), "PNG")


def _big_random_jpeg(min_bytes: int) -> bytes:
    """A valid JPEG larger than `min_bytes` (noise compresses badly)."""
    rng = np.random.default_rng(0)
    side = 1200
    while True:
        noise = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        data = _encode(Image.fromarray(noise), "JPEG", quality=100)
        if len(data) > min_bytes:
            return data
        side = int(side * 1.4)


def corpus(sample_jpeg: bytes) -> list[Case]:
    """Every case; `sample_jpeg` is a real photo (a committed BCCD sample)."""
    sample = Image.open(io.BytesIO(sample_jpeg))
    w, h = sample.size
    cases = [
        Case("empty file", "empty.jpg", b"", "image/jpeg", "failed", "empty"),
        Case("text named .jpg", "notes.jpg", b"just some text, not pixels\n" * 20,
             "image/jpeg", "failed", "not_an_image"),
        Case("html named .png", "page.png", b"<html><body><img src=x onerror=alert(1)>"
             b"</body></html>", "image/png", "failed", "not_an_image"),
        Case("truncated JPEG", "truncated.jpg", _half(sample_jpeg),
             "image/jpeg", "failed", "corrupt"),
        Case("truncated PNG", "truncated.png", _half(_encode(_noise(), "PNG")), "image/png",
             "failed", "corrupt"),
        Case("PNG declaring 100000x100000", "bomb.png", _png_declaring(100_000, 100_000),
             "image/png", "failed", "too_many_pixels"),
        Case("real 8000x6000 PNG (48 MP)", "huge.png",
             _encode(Image.new("L", (8000, 6000)), "PNG"), "image/png", "failed",
             "too_many_pixels"),
        Case("file over the byte limit", "heavy.jpg", _big_random_jpeg(MAX_BYTES),
             "image/jpeg", "failed", "too_large"),
        Case("1x1 image", "dot.png", _encode(Image.new("RGB", (1, 1), "red"), "PNG"),
             "image/png", "failed", "too_small"),
        Case("PPM (unsupported type)", "image.ppm", _encode(_cells(), "PPM"),
             "image/x-portable-pixmap", "failed", "unsupported_format"),
        Case("16-bit grey PNG", "sixteen.png", _png16(), "image/png", "done", size=(64, 48)),
        Case("CMYK JPEG", "cmyk.jpg", _encode(_cells(mode="CMYK"), "JPEG"), "image/jpeg",
             "done", size=(96, 64)),
        Case("grey JPEG", "grey.jpg", _encode(_cells(mode="L"), "JPEG"), "image/jpeg", "done",
             size=(96, 64)),
        Case("RGBA PNG", "alpha.png", _encode(_cells(mode="RGBA"), "PNG"), "image/png", "done",
             size=(96, 64)),
        Case("palette PNG", "palette.png", _encode(_cells().convert("P"), "PNG"), "image/png",
             "done", size=(96, 64)),
        Case("animated GIF", "anim.gif", _animated_gif(), "image/gif", "done", size=(64, 48)),
        Case("WebP", "cells.webp", _encode(_cells(), "WEBP"), "image/webp", "done",
             size=(96, 64)),
        Case("BMP", "cells.bmp", _encode(_cells(), "BMP"), "image/bmp", "done", size=(96, 64)),
        Case("TIFF", "cells.tiff", _encode(_cells(), "TIFF"), "image/tiff", "done",
             size=(96, 64)),
        Case("EXIF-rotated photo", "rotated.jpg", _exif_rotated_jpeg(), "image/jpeg", "done",
             size=(40, 80)),
        Case("very thin 8x900 image", "thin.png", _encode(_cells(8, 900), "PNG"), "image/png",
             "done", size=(8, 900)),
        Case("JPEG with trailing garbage", "trailing.jpg", sample_jpeg + b"\x00garbage" * 50,
             "image/jpeg", "done", size=(w, h)),
        Case("JPEG sent as text/plain", "cells.jpg", sample_jpeg, "text/plain", "done",
             size=(w, h)),
        Case("PNG named .jpg", "really-a-png.jpg", _encode(_cells(), "PNG"), "image/jpeg",
             "done", size=(96, 64)),
        Case("name with ../ path tricks", "../../etc/passwd.jpg", sample_jpeg, "image/jpeg",
             "done", size=(w, h)),
        Case("name with backslashes", "..\\..\\windows\\cells.jpg", sample_jpeg, "image/jpeg",
             "done", size=(w, h)),
        Case("name with spaces", "my blood cells (1).jpg", sample_jpeg, "image/jpeg", "done",
             size=(w, h)),
        Case("unicode name", "血液 échantillon ✓.jpg", sample_jpeg, "image/jpeg", "done",
             size=(w, h)),
        Case("name of dots only", "...", sample_jpeg, "image/jpeg", "done", size=(w, h)),
    ]
    return cases
