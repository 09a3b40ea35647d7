"""Safe image decoding and the letterbox transform shared by trainer, functions and frontend.

Everything that turns untrusted bytes into pixels goes through `decode_image`, so the rules
(type sniffed from bytes, size and pixel caps, EXIF orientation, any mode -> RGB) hold everywhere.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

# Formats we accept, as Pillow names them after sniffing the bytes (never the file name).
ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF"})
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000
MIN_SIDE = 8
PAD_VALUE = 114  # grey letterbox padding, as YOLO-family detectors use


class ImageError(ValueError):
    """A permanent, user-facing problem with an input image.

    `code` is stable and machine-readable; `str(err)` is a sentence a person understands.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class ImageLimits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    min_side: int = MIN_SIDE


DEFAULT_LIMITS = ImageLimits()


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What sniffing the header told us, before any pixel is decoded."""

    format: str
    width: int
    height: int
    mime_type: str


def sniff_image(data: bytes, limits: ImageLimits = DEFAULT_LIMITS) -> ImageInfo:
    """Check type, byte size and declared pixel count from the header alone (cheap)."""
    if not data:
        raise ImageError("empty", "The file is empty (0 bytes).")
    if len(data) > limits.max_bytes:
        raise ImageError(
            "too_large",
            f"The file is {len(data) / 1e6:.1f} MB; the limit is {limits.max_bytes / 1e6:.0f} MB.",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError("too_many_pixels", f"The image declares too many pixels: {err}") from err
    except Exception as err:  # Pillow raises several types for "not an image"
        raise ImageError("not_an_image", "The file is not an image we can read.") from err
    with img:
        # Pillow names JPEGs that carry extra pictures (most camera and many phone photos)
        # "MPO"; they are JPEG files, and decoding reads their primary picture.
        fmt = "JPEG" if img.format == "MPO" else (img.format or "unknown")
        width, height = img.size
        mime = Image.MIME.get(fmt, "application/octet-stream")
    if fmt not in ACCEPTED_FORMATS:
        raise ImageError(
            "unsupported_format",
            f"Images of type {fmt} are not supported; use JPEG, PNG, WebP, BMP, GIF or TIFF.",
        )
    if width * height > limits.max_pixels:
        raise ImageError(
            "too_many_pixels",
            f"The image is {width}x{height} pixels; the limit is {limits.max_pixels / 1e6:.0f} "
            "megapixels.",
        )
    if min(width, height) < limits.min_side:
        raise ImageError(
            "too_small",
            f"The image is {width}x{height} pixels; each side must be at least "
            f"{limits.min_side} pixels.",
        )
    return ImageInfo(format=fmt, width=width, height=height, mime_type=mime)


def decode_image(
    data: bytes,
    limits: ImageLimits = DEFAULT_LIMITS,
    draft_size: tuple[int, int] | None = None,
) -> Image.Image:
    """Decode untrusted bytes into an upright RGB image.

    `draft_size` lets JPEG decode at a reduced scale (1/2, 1/4, 1/8) when the caller only needs
    at least that many pixels: several times faster for large photos. Boxes must then be mapped
    with the returned image's size, which `letterbox` and `Detector` do.
    """
    sniff_image(data, limits)
    try:
        img: Image.Image = Image.open(io.BytesIO(data))
        if draft_size is not None and img.format == "JPEG" and _orientation(img) in (0, 1):
            img.draft("RGB", draft_size)
        img.load()
        img = ImageOps.exif_transpose(img) or img
        return to_rgb(img)
    except ImageError:
        raise
    except Exception as err:
        raise ImageError(
            "corrupt", f"The image could not be decoded (truncated or damaged): {err}"
        ) from err


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(0x0112, 1))
    except Exception:
        return 1


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode (grey, palette, alpha, CMYK, 16-bit) -> 8-bit RGB."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # Pillow's own conversion clips 16-bit values at 255; map the 16-bit range onto 8 bits
        # (not each image's own maximum, which would turn a dim image white).
        arr = np.asarray(img, dtype=np.float32)
        grey = np.clip(arr / 257.0, 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        grey = ((arr - lo) * (255.0 / max(hi - lo, 1e-9))).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def load_image(source: str | Path | bytes | Image.Image, limits: ImageLimits = DEFAULT_LIMITS
               ) -> Image.Image:
    """Path, bytes or PIL image -> upright RGB image (files are read and checked like uploads)."""
    if isinstance(source, Image.Image):
        return to_rgb(ImageOps.exif_transpose(source) or source)
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    return decode_image(data, limits)


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How an original image was placed into the model input (top-left aligned, then padded).

    input_xy = original_xy * scale. Sizes are (width, height).
    """

    scale: float
    original_size: tuple[int, int]
    input_size: tuple[int, int]

    def to_original(self, boxes_xyxy: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Map `xyxy` boxes from model-input pixels to original-image pixels (clipped)."""
        out = boxes_xyxy / np.float32(self.scale)
        width, height = self.original_size
        out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0.0, width)
        out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0.0, height)
        return out.astype(np.float32)

    def to_dict(self) -> dict[str, object]:
        return {
            "scale": self.scale,
            "original_size": list(self.original_size),
            "input_size": list(self.input_size),
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Letterbox:
        original = [int(v) for v in data["original_size"]]  # type: ignore[attr-defined]
        model_input = [int(v) for v in data["input_size"]]  # type: ignore[attr-defined]
        return cls(
            scale=float(data["scale"]),  # type: ignore[arg-type]
            original_size=(original[0], original[1]),
            input_size=(model_input[0], model_input[1]),
        )


def letterbox(
    img: Image.Image,
    input_size: tuple[int, int],
    original_size: tuple[int, int] | None = None,
) -> tuple[npt.NDArray[np.uint8], Letterbox]:
    """Resize keeping aspect ratio to fit `input_size` (w, h), pad right/bottom with grey.

    `original_size` is the size boxes should map back to, when `img` was decoded smaller than
    the original (JPEG draft mode); defaults to `img.size`.
    """
    in_w, in_h = input_size
    orig_w, orig_h = original_size or img.size
    scale_to_input = min(in_w / img.width, in_h / img.height)
    new_w = max(1, round(img.width * scale_to_input))
    new_h = max(1, round(img.height * scale_to_input))
    resized = img.resize((new_w, new_h), Image.Resampling.BILINEAR) if (
        (new_w, new_h) != img.size
    ) else img
    canvas = np.full((in_h, in_w, 3), PAD_VALUE, dtype=np.uint8)
    canvas[:new_h, :new_w] = np.asarray(resized, dtype=np.uint8)
    scale = min(in_w / orig_w, in_h / orig_h)
    return canvas, Letterbox(scale=scale, original_size=(orig_w, orig_h), input_size=input_size)
