"""Batches for `model.fit`: augmented samples and their heatmap/ltrb targets, built in numpy.

`TrainBatches` is a Keras `PyDataset`. Keras builds its batches ahead of the training step: in
one tf.data thread by default, or with `workers` > 1 in that many threads (Pillow and numpy
release the GIL for most of the work), so a fast accelerator is not left waiting for the CPU;
`loader_threads` chooses.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

import keras
import numpy as np
import numpy.typing as npt

from detectflow.model.manifest import Preprocessing
from trainer.augment import AugmentConfig, Sample, augment, full_sample
from trainer.model import LTRB_UNIT_PX
from trainer.targets import LTRB_TARGET_CHANNELS, make_targets


class ImageSet(Protocol):
    """What the preprocessing cache provides (trainer/cache.py: CachedSplit)."""

    @property
    def images(self) -> npt.NDArray[np.uint8]: ...

    def __len__(self) -> int: ...
    def boxes(self, index: int) -> npt.NDArray[np.float32]: ...
    def class_ids(self, index: int) -> npt.NDArray[np.int64]: ...
    def content_size(self, index: int) -> tuple[int, int]: ...


PREPROCESSING = Preprocessing()


def normalize(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """uint8 pixels -> model input, exactly as the bundle's manifest tells the runtime to."""
    prep = PREPROCESSING
    return pixels.astype(np.float32) * np.float32(prep.scale) + np.float32(prep.offset)


def sample_size(augment_config: AugmentConfig, input_size: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of a training sample: the square crop, or the whole model input."""
    crop = augment_config.crop
    return (crop, crop) if crop is not None else input_size


def loader_threads() -> int:
    """Batch-building threads: a quarter of the CPUs, at least one. On 2 cores that is one
    (training already uses both); a GPU machine with 16 vCPUs gets 4."""
    return max(1, (os.cpu_count() or 1) // 4)


class TrainBatches(keras.utils.PyDataset):
    """An epoch = every training image once (as the first image of its sample), in a new random
    order, freshly augmented. `strong` (mosaic, mixup) is switched off for the last part of the
    run by `trainer.train` (YOLO's close_mosaic): the model ends on images like the real ones."""

    def __init__(
        self,
        data: ImageSet,
        num_classes: int,
        batch_size: int,
        augment_config: AugmentConfig,
        seed: int,
        input_size: tuple[int, int],
        stride: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.data = data
        self.num_classes = num_classes
        self.batch_size = batch_size
        self.augment_config = augment_config
        self.seed = seed
        self.size = sample_size(augment_config, input_size)
        self.stride = stride
        self.strong = True
        self.epoch = 0
        self._order = self._shuffle()

    def _shuffle(self) -> npt.NDArray[np.int64]:
        return np.random.default_rng((self.seed, self.epoch)).permutation(len(self.data))

    def __len__(self) -> int:
        return max(1, len(self.data) // self.batch_size)

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._order = self._shuffle()

    def content(self, index: int) -> Sample:
        """Image `index` without its letterbox padding, with its boxes and labels."""
        width, height = self.data.content_size(index)
        pixels = self.data.images[index][:height, :width]
        return pixels, self.data.boxes(index), self.data.class_ids(index)

    def sample(self, index: int, rng: np.random.Generator) -> Sample:
        if self.augment_config.crop is not None:
            return augment(*self.content(index), self.augment_config, rng)
        return full_sample(self.content, index, len(self.data), self.size,
                           self.augment_config, rng, strong=self.strong)

    def __getitem__(self, index: int) -> tuple[Any, dict[str, Any]]:
        rng = np.random.default_rng((self.seed, self.epoch, index))
        width, height = self.size
        out_h, out_w = height // self.stride, width // self.stride
        images = np.zeros((self.batch_size, height, width, 3), dtype=np.float32)
        heatmaps = np.zeros((self.batch_size, out_h, out_w, self.num_classes), dtype=np.float32)
        ltrb = np.zeros((self.batch_size, out_h, out_w, LTRB_TARGET_CHANNELS), dtype=np.float32)
        picks = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        for slot, item in enumerate(picks):
            pixels, boxes, labels = self.sample(int(item), rng)
            images[slot] = normalize(pixels)
            heatmaps[slot], ltrb[slot] = make_targets(
                boxes, labels, (out_h, out_w), self.num_classes, self.stride, LTRB_UNIT_PX
            )
        return images, {"heatmap": heatmaps, "ltrb": ltrb}
