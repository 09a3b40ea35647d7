"""The JPEG behind GET /api/images/{id}/annotated, bounded in size, concurrency and memory.

Drawing on the original is what made 30 concurrent requests on one 40-megapixel PNG hold
9 GB: every request decoded the whole image and redrew it. Here a render

- is made at most `max_side` pixels on its longer side (the boxes scaled to it); JPEGs decode
  at a reduced DCT scale (Pillow's draft), other formats are reduced right after decoding,
  before any colour conversion copies them;
- waits for one of `concurrency` render slots (briefly: past `wait_s` the answer is a 503
  that says to retry), so memory is bounded by slots x one decoded image;
- is cached (image id, result version, size, score cut-off, class list), bounded in bytes,
  so a burst on one image renders it once;
- gives the freed memory back to the system afterwards on glibc (malloc_trim), where freed
  blocks of large images otherwise stay in the process's heap.

`Image.MAX_IMAGE_PIXELS` and the upload limits still apply: the bytes are sniffed first.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import io
import logging
import sys
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import cast

import anyio
from PIL import Image

from detectflow.detection import Detection
from detectflow.drawing import draw_detections
from detectflow.imaging import ImageError, ImageLimits, sniff_image, to_rgb
from detectflow.records import ResultRecord

log = logging.getLogger(__name__)

JPEG_QUALITY = 88
# EXIF orientation -> the transpose that makes the picture upright (as ImageOps.exif_transpose).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Decoded images smaller than this leave little behind; trimming after them is not worth it.
_TRIM_AFTER_PIXELS = 4_000_000


class RenderBusy(Exception):
    """Every render slot stayed taken for the whole wait."""


@dataclass(frozen=True, slots=True)
class RenderKey:
    """What a render depends on: the same key, the same JPEG."""

    image_id: str
    result_version: str
    max_side: int
    min_score: float
    classes: tuple[str, ...] | None


def result_version(record: ResultRecord) -> str:
    """A short fingerprint of a result: a reprocessed image gets a new render."""
    return hashlib.blake2b(record.model_dump_json().encode(), digest_size=8).hexdigest()


def render_annotated(data: bytes, detections: Sequence[Detection], classes: Sequence[str] | None,
                     upright_size: tuple[int, int] | None, max_side: int, limits: ImageLimits
                     ) -> bytes:
    """A JPEG of the upload at most `max_side` px on its longer side with `detections` (xyxy,
    pixels of the upright original of `upright_size`) drawn on it. Raises ImageError."""
    info = sniff_image(data, limits)
    try:
        with Image.open(io.BytesIO(data)) as opened:
            orientation = _orientation(opened)
            # thumbnail: draft for JPEG, then reduce() by whole factors and a final resample,
            # all on the decoded mode (palette and 16-bit images are not widened first).
            opened.thumbnail((max_side, max_side), Image.Resampling.BILINEAR, reducing_gap=1.0)
            image = opened.transpose(_UPRIGHT[orientation]) if orientation in _UPRIGHT \
                else opened.copy()
        image = to_rgb(image)
    except ImageError:
        raise
    except Exception as err:
        raise ImageError("corrupt", f"The image could not be decoded: {err}") from err
    if upright_size is None:
        turned = orientation in (5, 6, 7, 8)
        upright_size = (info.height, info.width) if turned else (info.width, info.height)
    scale = (image.width / upright_size[0], image.height / upright_size[1])
    drawn = draw_detections(image, detections, classes, box_scale=scale)
    out = io.BytesIO()
    drawn.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(0x0112, 1))
    except Exception:  # a damaged EXIF block: show the pixels as stored
        return 1


class RenderCache:
    """Least recently used JPEGs, at most `max_bytes` in all (thread-safe)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[RenderKey, tuple[bytes, str]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: RenderKey) -> tuple[bytes, str] | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: RenderKey, jpeg: bytes, filename: str) -> None:
        if len(jpeg) > self.max_bytes:
            return
        with self._lock:
            previous = self._items.pop(key, None)
            if previous is not None:
                self._bytes -= len(previous[0])
            self._items[key] = (jpeg, filename)
            self._bytes += len(jpeg)
            while self._bytes > self.max_bytes:
                _, (old, _) = self._items.popitem(last=False)
                self._bytes -= len(old)

    def drop_image(self, image_id: str) -> None:
        """Forget every render of an image (it was deleted)."""
        with self._lock:
            for key in [k for k in self._items if k.image_id == image_id]:
                self._bytes -= len(self._items.pop(key)[0])

    @property
    def size_bytes(self) -> int:
        return self._bytes


class AnnotatedRenderer:
    """Render slots, the cache and the render itself, one per app."""

    def __init__(self, max_side: int, concurrency: int, wait_s: float, cache_bytes: int,
                 limits: ImageLimits, trim_memory: bool = True) -> None:
        self.max_side = max_side
        self.wait_s = wait_s
        self.limits = limits
        self.trim_memory = trim_memory
        self.cache = RenderCache(cache_bytes)
        self._slots = anyio.Semaphore(concurrency)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """One render slot, waited for at most `wait_s`; RenderBusy past that."""
        try:
            with anyio.fail_after(self.wait_s):
                await self._slots.acquire()
        except TimeoutError as err:
            raise RenderBusy from err
        try:
            yield
        finally:
            self._slots.release()

    def render(self, data: bytes, record: ResultRecord, detections: Sequence[Detection],
               classes: Sequence[str] | None) -> bytes:
        """The JPEG (blocking: run it in a worker thread, inside a slot)."""
        upright = (record.image.width, record.image.height) if record.image else None
        try:
            return render_annotated(data, detections, classes, upright, self.max_side,
                                    self.limits)
        finally:
            if self.trim_memory and upright and upright[0] * upright[1] >= _TRIM_AFTER_PIXELS:
                release_freed_memory()


def _glibc_malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # musl and others have no malloc_trim
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return cast(Callable[[int], int], trim)


_MALLOC_TRIM = _glibc_malloc_trim()


def release_freed_memory() -> None:
    """Hand freed heap pages back to the system (glibc; a no-op elsewhere). Pillow frees a
    large image's blocks to malloc, which keeps them in the heap of the thread that decoded
    it; malloc_trim(0) returns the free pages of every arena."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
