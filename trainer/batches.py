"""Batches for `model.fit`: augmented crops and their heatmap/box targets, built in numpy."""

from __future__ import annotations

import math
from typing import Any, Protocol

import keras
import numpy as np
import numpy.typing as npt

from detectflow.model.manifest import Preprocessing
from trainer.augment import AugmentConfig, augment
from trainer.model import STRIDE
from trainer.targets import make_targets


class ImageSet(Protocol):
    """What the preprocessing cache provides (trainer/cache.py: CachedSplit)."""

    @property
    def images(self) -> npt.NDArray[np.uint8]: ...

    def __len__(self) -> int: ...
    def boxes(self, index: int) -> npt.NDArray[np.float32]: ...
    def class_ids(self, index: int) -> npt.NDArray[np.int64]: ...


PREPROCESSING = Preprocessing()


def normalize(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """uint8 pixels -> model input, exactly as the bundle's manifest tells the runtime to."""
    prep = PREPROCESSING
    return pixels.astype(np.float32) * np.float32(prep.scale) + np.float32(prep.offset)


class TrainBatches(keras.utils.PyDataset):
    """An epoch = every training image once, in a new random order, freshly augmented."""

    def __init__(
        self,
        data: ImageSet,
        num_classes: int,
        batch_size: int,
        augment_config: AugmentConfig,
        seed: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.data = data
        self.num_classes = num_classes
        self.batch_size = batch_size
        self.augment_config = augment_config
        self.seed = seed
        self.epoch = 0
        self._order = self._shuffle()

    def _shuffle(self) -> npt.NDArray[np.int64]:
        return np.random.default_rng((self.seed, self.epoch)).permutation(len(self.data))

    def __len__(self) -> int:
        return max(1, len(self.data) // self.batch_size)

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._order = self._shuffle()

    def __getitem__(self, index: int) -> tuple[Any, dict[str, Any]]:
        rng = np.random.default_rng((self.seed, self.epoch, index))
        crop = self.augment_config.crop
        out = crop // STRIDE
        images = np.zeros((self.batch_size, crop, crop, 3), dtype=np.float32)
        heatmaps = np.zeros((self.batch_size, out, out, self.num_classes), dtype=np.float32)
        box_targets = np.zeros((self.batch_size, out, out, 5), dtype=np.float32)
        picks = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        for slot, item in enumerate(picks):
            pixels, boxes, labels = augment(
                self.data.images[item], self.data.boxes(item), self.data.class_ids(item),
                self.augment_config, rng,
            )
            images[slot] = normalize(pixels)
            heatmaps[slot], box_targets[slot] = make_targets(
                boxes, labels, (out, out), self.num_classes, STRIDE
            )
        return images, {"heatmap": heatmaps, "ltrb": box_targets}


def steps_per_epoch(num_images: int, batch_size: int) -> int:
    return max(1, math.floor(num_images / batch_size))
