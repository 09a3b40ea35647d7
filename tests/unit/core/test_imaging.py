"""detectflow.imaging: sniffing, safe decoding (limits, EXIF orientation, modes), letterboxing."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from detectflow.imaging import (
    PAD_VALUE,
    ImageError,
    ImageLimits,
    Letterbox,
    decode_image,
    letterbox,
    load_image,
    sniff_image,
)


def _encode(img: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **options)
    return buffer.getvalue()


def _marked(size: tuple[int, int] = (64, 48)) -> Image.Image:
    """Grey image with a red 8x8 marker in its stored top-left corner."""
    img = Image.new("RGB", size, (90, 90, 90))
    img.paste((255, 0, 0), (0, 0, 8, 8))
    return img


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that *declares* width x height (its pixels are never decoded)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


# --- sniff_image ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp"), ("BMP", "image/bmp"),
     ("GIF", "image/gif"), ("TIFF", "image/tiff")],
)
def test_sniff_accepts_common_formats_from_their_bytes(fmt: str, mime: str) -> None:
    info = sniff_image(_encode(_marked(), fmt))

    assert (info.format, info.width, info.height, info.mime_type) == (fmt, 64, 48, mime)


def test_multi_picture_jpeg_from_cameras_is_a_jpeg() -> None:
    data = _encode(_marked(), "MPO", save_all=True, append_images=[Image.new("RGB", (64, 48))])

    info = sniff_image(data)

    assert (info.format, info.mime_type) == ("JPEG", "image/jpeg")
    assert decode_image(data).getpixel((2, 2))[0] > 200  # the primary picture


@pytest.mark.parametrize(
    ("data", "limits", "code"),
    [
        (b"", ImageLimits(), "empty"),
        (b"%PDF-1.4 not an image", ImageLimits(), "not_an_image"),
        (b"x" * 2000, ImageLimits(max_bytes=1000), "too_large"),
        (_png_header_only(8000, 6000), ImageLimits(), "too_many_pixels"),
        (_png_header_only(100_000, 100_000), ImageLimits(), "too_many_pixels"),  # bomb
        (_png_header_only(4, 4), ImageLimits(), "too_small"),
    ],
)
def test_sniff_rejects_with_a_stable_code(data: bytes, limits: ImageLimits, code: str) -> None:
    with pytest.raises(ImageError) as caught:
        sniff_image(data, limits)

    assert caught.value.code == code
    assert str(caught.value)  # a sentence for people


def test_sniff_rejects_formats_outside_the_list() -> None:
    with pytest.raises(ImageError) as caught:
        sniff_image(_encode(_marked((32, 32)), "ICO"))

    assert caught.value.code == "unsupported_format"


# --- decode_image -----------------------------------------------------------------------------

# EXIF orientation -> where the stored top-left marker appears in the upright image.
ORIENTATIONS = {
    1: ((64, 48), (2, 2)),
    2: ((64, 48), (61, 2)),  # mirrored
    3: ((64, 48), (61, 45)),  # rotated 180
    4: ((64, 48), (2, 45)),
    5: ((48, 64), (2, 2)),  # transposed
    6: ((48, 64), (45, 2)),  # rotated 90 clockwise for display
    7: ((48, 64), (45, 61)),
    8: ((48, 64), (2, 61)),
}


@pytest.mark.parametrize("orientation", sorted(ORIENTATIONS))
def test_decode_applies_exif_orientation(orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _encode(_marked(), "JPEG", exif=exif, quality=95)

    img = decode_image(data)

    size, marker = ORIENTATIONS[orientation]
    assert img.size == size and img.mode == "RGB"
    red, green, _ = img.getpixel(marker)
    assert red > 200 and green < 60


def test_decode_flags_a_truncated_file_as_corrupt() -> None:
    data = _encode(Image.effect_noise((256, 256), 60).convert("RGB"), "JPEG")

    with pytest.raises(ImageError) as caught:
        decode_image(data[: len(data) // 2])

    assert caught.value.code == "corrupt"


@pytest.mark.parametrize(
    ("img", "fmt", "expected"),
    [
        (Image.new("RGBA", (16, 16), (255, 0, 0, 0)), "PNG", (255, 255, 255)),  # onto white
        (Image.new("LA", (16, 16), (0, 255)), "PNG", (0, 0, 0)),
        (Image.new("L", (16, 16), 77), "PNG", (77, 77, 77)),
        (Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", (255, 0, 0)),
        (Image.fromarray(np.full((16, 16), 65535, np.uint16)), "PNG", (255, 255, 255)),
    ],
)
def test_decode_turns_any_mode_into_rgb(img: Image.Image, fmt: str,
                                        expected: tuple[int, int, int]) -> None:
    out = decode_image(_encode(img, fmt))

    assert out.mode == "RGB"
    assert np.allclose(out.getpixel((8, 8)), expected, atol=3)


def test_decode_palette_with_transparency_composites_on_white() -> None:
    img = Image.new("P", (16, 16), 0)
    img.putpalette([10, 20, 30] + [0, 0, 0] * 255)
    data = _encode(img, "PNG", transparency=0)

    assert decode_image(data).getpixel((3, 3)) == (255, 255, 255)


def test_draft_decoding_shrinks_large_jpegs_but_keeps_enough_pixels() -> None:
    data = _encode(Image.new("RGB", (1600, 1200), (10, 200, 10)), "JPEG")

    img = decode_image(data, draft_size=(384, 288))

    assert 384 <= img.width < 1600 and 288 <= img.height < 1200


# --- letterbox --------------------------------------------------------------------------------


def test_letterbox_scales_top_left_and_pads_grey() -> None:
    pixels, placement = letterbox(Image.new("RGB", (100, 50), (255, 0, 0)), (64, 64))

    assert pixels.shape == (64, 64, 3) and pixels.dtype == np.uint8
    assert placement == Letterbox(scale=0.64, original_size=(100, 50), input_size=(64, 64))
    assert (pixels[:32, :, 0] == 255).all()  # the image: 64x32 at the top
    assert (pixels[32:] == PAD_VALUE).all()  # grey below


def test_letterbox_maps_boxes_back_to_the_original_and_clips() -> None:
    _, placement = letterbox(Image.new("RGB", (640, 480)), (384, 288))
    input_boxes = np.array([[60, 30, 120, 90], [350, 250, 400, 300]], np.float32)

    original = placement.to_original(input_boxes)

    assert placement.scale == pytest.approx(0.6)
    np.testing.assert_allclose(original[0], [100, 50, 200, 150], rtol=1e-6)
    np.testing.assert_allclose(original[1], [583.333, 416.667, 640, 480], rtol=1e-5)


def test_letterbox_of_a_draft_decoded_image_maps_to_the_full_original() -> None:
    small = Image.new("RGB", (400, 300))

    pixels, placement = letterbox(small, (200, 150), original_size=(1600, 1200))

    assert pixels.shape == (150, 200, 3)
    np.testing.assert_allclose(placement.to_original(np.array([[0, 0, 200, 150]], np.float32)),
                               [[0, 0, 1600, 1200]])


def test_letterbox_round_trips_through_a_dict() -> None:
    _, placement = letterbox(Image.new("RGB", (90, 60)), (64, 48))

    assert Letterbox.from_dict(placement.to_dict()) == placement


def test_load_image_takes_paths_bytes_and_pil_images(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "a.png"
    _marked().save(path)

    for source in (path, str(path), path.read_bytes(), Image.open(path)):
        img = load_image(source)
        assert img.size == (64, 48) and img.mode == "RGB"


def test_16_bit_grey_keeps_its_brightness() -> None:
    """A dim 16-bit image stays dim (16-bit range -> 8 bits), it is not stretched to white."""
    dim = Image.fromarray(np.full((16, 16), 4112, dtype=np.uint16))  # 4112 / 257 = 16

    pixels = np.asarray(decode_image(_encode(dim, "PNG")))

    assert pixels.shape == (16, 16, 3) and int(pixels.max()) == 16
