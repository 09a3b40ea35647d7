"""Preprocess a split once, in parallel processes, into a cache file the training reads.

Each image is decoded (type sniffed, EXIF-oriented, RGB: `detectflow.imaging.decode_image`,
the same code that serves uploads), letterboxed to the model input size and its boxes mapped
into input pixels. The work runs in a `concurrent.futures.ProcessPoolExecutor` and lands in
one `.npz` file:

    images          uint8   (N, H, W, 3)   letterboxed, top-left aligned, grey padding
    boxes           float32 (M, 4)         `xyxy` input pixels, all images concatenated
    offsets         int64   (N + 1,)       boxes of image i are boxes[offsets[i]:offsets[i+1]]
    class_ids       int64   (M,)
    difficult       bool    (M,)
    image_ids       str     (N,)
    scales          float32 (N,)           input_px = original_px * scale
    original_sizes  int64   (N, 2)         (width, height) of the upright original

The file name is a hash of (annotations + image file contents, input size, format version):
a second run with the same data and settings loads it and skips the work. Image contents are
hashed rather than (size, mtime) so the key, which the model bundle records as its data hash,
names the same data on every machine; hashing is ~1 GB/s, far cheaper than decoding.

Workers are started with "spawn": the trainer calls this after importing TensorFlow, and
forking a process that already runs TensorFlow's threads can deadlock.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from detectflow.datasets.voc import Annotation
from detectflow.imaging import ImageError, decode_image, letterbox

log = logging.getLogger(__name__)

CACHE_FORMAT_VERSION = 1
FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class CachedSplit:
    """Letterboxed images of one split and their boxes in input pixels (ragged, by offsets)."""

    images: npt.NDArray[np.uint8]
    all_boxes: FloatArray
    offsets: IntArray
    all_class_ids: IntArray
    all_difficult: BoolArray
    image_ids: list[str]
    scales: FloatArray
    original_sizes: IntArray
    data_hash: str  # annotations + image contents (what the bundle's manifest records)
    cache_key: str  # data_hash + input size + format version (the file name)
    path: Path | None = None
    skipped: list[str] = field(default_factory=list)  # image ids that failed to decode

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def input_size(self) -> tuple[int, int]:
        """(width, height) of the cached images."""
        return int(self.images.shape[2]), int(self.images.shape[1])

    def boxes(self, index: int) -> FloatArray:
        return self.all_boxes[self.offsets[index] : self.offsets[index + 1]]

    def class_ids(self, index: int) -> IntArray:
        return self.all_class_ids[self.offsets[index] : self.offsets[index + 1]]

    def difficult(self, index: int) -> BoolArray:
        return self.all_difficult[self.offsets[index] : self.offsets[index + 1]]

    def content_size(self, index: int) -> tuple[int, int]:
        """(width, height) of the image inside its letterbox (the rest is padding)."""
        width, height = self.input_size
        scale = float(self.scales[index])
        original_w, original_h = (int(v) for v in self.original_sizes[index])
        return (min(width, max(1, round(original_w * scale))),
                min(height, max(1, round(original_h * scale))))


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class _Task:
    image_path: str
    image_id: str
    boxes_xyxy: FloatArray
    input_size: tuple[int, int]


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class _Prepared:
    image_id: str
    pixels: npt.NDArray[np.uint8] | None
    boxes_xyxy: FloatArray
    scale: float
    original_size: tuple[int, int]
    error: str | None = None


def build_cache(
    items: Sequence[Annotation],
    input_size: tuple[int, int],
    cache_dir: str | Path,
    workers: int | None = None,
    progress: bool = True,
) -> CachedSplit:
    """Preprocess `items` for a model input of `input_size` (w, h), or load the cached result.

    `workers`: processes that decode, this one included (default: all cores); 1 runs
    everything in this process.
    """
    cache_dir = Path(cache_dir)
    data_hash = hash_items(items)
    key = cache_key(data_hash, input_size)
    path = cache_dir / f"preprocess-{key[:24]}.npz"
    if path.is_file():
        cached = _load(path, data_hash, key)
        if cached is not None:
            log.info("preprocessing cache hit: skipped decoding",
                     extra={"cache": str(path), "images": len(cached)})
            return cached
    n_workers = _worker_count(workers, len(items))
    start = time.perf_counter()
    prepared, in_workers = _run(items, input_size, n_workers, progress)
    decoded = time.perf_counter()
    split = _assemble(prepared, items, input_size, data_hash, key)
    _save(split, path)
    log.info("preprocessing cache built",
             extra={"cache": str(path), "images": len(split), "skipped": len(split.skipped),
                    "workers": n_workers, "decoded_in_workers": in_workers,
                    "decode_seconds": round(decoded - start, 3),
                    "write_seconds": round(time.perf_counter() - decoded, 3)})
    return dataclasses.replace(split, path=path)


def hash_items(items: Sequence[Annotation]) -> str:
    """Hash of every annotation (ids, sizes, boxes, classes) and every image file's bytes."""
    digest = hashlib.blake2b(digest_size=20)
    for item in items:
        digest.update(f"{item.image_id}\0{item.width}x{item.height}\0".encode())
        for array in (item.boxes_xyxy, item.class_ids, item.difficult):
            digest.update(np.ascontiguousarray(array).tobytes())
        digest.update(hashlib.blake2b(item.image_path.read_bytes(), digest_size=20).digest())
    return digest.hexdigest()


def cache_key(data_hash: str, input_size: tuple[int, int]) -> str:
    text = f"v{CACHE_FORMAT_VERSION}:{data_hash}:{input_size[0]}x{input_size[1]}"
    return hashlib.blake2b(text.encode(), digest_size=20).hexdigest()


def _worker_count(workers: int | None, n_items: int) -> int:
    wanted = workers if workers is not None else (os.cpu_count() or 1)
    return max(1, min(wanted, n_items))


def _run(
    items: Sequence[Annotation], input_size: tuple[int, int], workers: int, progress: bool
) -> tuple[list[_Prepared], int]:
    """Prepared images in order, and how many of them spawned workers decoded."""
    tasks = [_Task(str(a.image_path), a.image_id, a.boxes_xyxy, input_size) for a in items]
    bar = tqdm(total=len(tasks), desc=f"preprocess ({workers} proc)", unit="img",
               file=sys.stderr, disable=not progress, leave=False)
    with bar:
        if workers == 1:
            return [_prepare_counted(task, bar) for task in tasks], 0
        return _run_pool(tasks, workers, bar)


def _prepare_counted(task: _Task, bar: tqdm) -> _Prepared:
    result = letterbox_item(task)
    bar.update()
    return result


def _run_pool(tasks: list[_Task], workers: int, bar: tqdm) -> tuple[list[_Prepared], int]:
    """`workers` processes in all: this one plus `workers - 1` spawned ones.

    Spawned interpreters take ~0.3 s to start, as long as decoding a few hundred small
    JPEGs. So this process does not wait: it takes chunks from the end of the list while no
    worker has claimed them, and the pool works from the front.
    """
    size = max(1, min(16, len(tasks) // (workers * 8)))
    chunks = [tasks[i : i + size] for i in range(0, len(tasks), size)]
    results: list[list[_Prepared] | None] = [None] * len(chunks)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers - 1, mp_context=context) as pool:
        futures = [pool.submit(prepare_chunk, chunk) for chunk in chunks]
        for index in reversed(range(len(chunks))):
            if not futures[index].cancel():  # a worker has it: the rest are theirs too
                break
            results[index] = [_prepare_counted(task, bar) for task in chunks[index]]
        pending = {futures[i]: i for i, done in enumerate(results) if done is None}
        for future in as_completed(pending):
            results[pending[future]] = future.result()
            bar.update(len(chunks[pending[future]]))
    in_workers = sum(len(chunks[i]) for i in pending.values())
    return [result for chunk in results if chunk is not None for result in chunk], in_workers


def prepare_chunk(tasks: list[_Task]) -> list[_Prepared]:
    return [letterbox_item(task) for task in tasks]


def letterbox_item(task: _Task) -> _Prepared:
    """Decode, orient and letterbox one image; map its boxes. Runs in a worker process."""
    try:
        image = decode_image(Path(task.image_path).read_bytes())
    except (ImageError, OSError) as err:
        return _Prepared(task.image_id, None, task.boxes_xyxy, 0.0, (0, 0), str(err))
    pixels, placement = letterbox(image, task.input_size)
    boxes = (task.boxes_xyxy * np.float32(placement.scale)).astype(np.float32)
    return _Prepared(task.image_id, pixels, boxes, placement.scale, placement.original_size)


def _assemble(
    prepared: list[_Prepared],
    items: Sequence[Annotation],
    input_size: tuple[int, int],
    data_hash: str,
    key: str,
) -> CachedSplit:
    for p in prepared:
        if p.error is not None:
            log.warning("image skipped: could not be decoded",
                        extra={"image_id": p.image_id, "error": p.error})
    kept = [(p, p.pixels, a) for p, a in zip(prepared, items, strict=True)
            if p.pixels is not None]
    width, height = input_size
    images = np.empty((len(kept), height, width, 3), dtype=np.uint8)
    for i, (_, pixels, _) in enumerate(kept):
        images[i] = pixels
    counts = [len(a.class_ids) for _, _, a in kept]
    return CachedSplit(
        images=images,
        all_boxes=_concat([p.boxes_xyxy for p, _, _ in kept], (0, 4)).astype(np.float32),
        offsets=np.concatenate(([0], np.cumsum(counts))).astype(np.int64),
        all_class_ids=_concat([a.class_ids for _, _, a in kept], (0,)).astype(np.int64),
        all_difficult=_concat([a.difficult for _, _, a in kept], (0,)).astype(np.bool_),
        image_ids=[p.image_id for p, _, _ in kept],
        scales=np.asarray([p.scale for p, _, _ in kept], dtype=np.float32),
        original_sizes=np.asarray(
            [p.original_size for p, _, _ in kept], dtype=np.int64
        ).reshape(-1, 2),
        data_hash=data_hash,
        cache_key=key,
        skipped=[p.image_id for p in prepared if p.pixels is None],
    )


def _concat(arrays: list[npt.NDArray[Any]], empty_shape: tuple[int, ...]) -> npt.NDArray[Any]:
    return np.concatenate(arrays) if arrays else np.zeros(empty_shape)


def _save(split: CachedSplit, path: Path) -> None:
    """Write atomically: a crash mid-write leaves no half file that a later run would trust."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as tmp:
            np.savez(
                tmp,
                images=split.images,
                boxes=split.all_boxes,
                offsets=split.offsets,
                class_ids=split.all_class_ids,
                difficult=split.all_difficult,
                image_ids=np.asarray(split.image_ids, dtype=str),
                scales=split.scales,
                original_sizes=split.original_sizes,
                skipped=np.asarray(split.skipped, dtype=str),
                data_hash=np.asarray(split.data_hash),
                cache_key=np.asarray(split.cache_key),
                format_version=np.asarray(CACHE_FORMAT_VERSION),
            )
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _load(path: Path, data_hash: str, key: str) -> CachedSplit | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["cache_key"]) != key:
                raise ValueError("cache key does not match its file name")
            return CachedSplit(
                images=data["images"],
                all_boxes=data["boxes"],
                offsets=data["offsets"],
                all_class_ids=data["class_ids"],
                all_difficult=data["difficult"],
                image_ids=[str(i) for i in data["image_ids"]],
                scales=data["scales"],
                original_sizes=data["original_sizes"],
                data_hash=data_hash,
                cache_key=key,
                path=path,
                skipped=[str(i) for i in data["skipped"]],
            )
    except Exception as err:  # a damaged or foreign file: rebuild it
        log.warning("preprocessing cache unreadable, rebuilding",
                    extra={"cache": str(path), "error": str(err)})
        return None
