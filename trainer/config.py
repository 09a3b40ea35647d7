"""Training configuration: one typed object, saved in the run folder and in the manifest."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from trainer.augment import AugmentConfig
from trainer.model import ModelConfig


@dataclass
class TrainConfig:
    data: str
    out: str = "runs/detect"
    name: str = "detector"
    classes: list[str] | None = None
    input_width: int = 384
    input_height: int = 288
    train_split: str = "trainval"
    val_split: str | None = None  # None: carve `val_fraction` of train_split (never test)
    val_fraction: float = 0.15
    epochs: int = 100
    batch_size: int = 16  # global batch (split over replicas)
    learning_rate: float = 4e-3
    weight_decay: float = 5e-4
    box_loss_weight: float = 2.0  # GIoU loss weight against the heatmap focal loss (1.0)
    warmup_epochs: int = 3
    ema_momentum: float = 0.998
    width: float = 1.0
    stride: int = 4  # output stride of the network (4 or 8)
    eval_every: int = 2  # epochs
    patience: int = 20  # evaluations without improvement (smoothed) before stopping early
    max_minutes: float | None = None  # wall-clock budget for the fit
    seed: int = 0
    workers: int | None = None  # preprocessing processes (None: all cores)
    init_from: str | None = None  # a bundle or run folder to start from (trainer/warm_start.py)
    cpu_replicas: int = 0  # >1: MirroredStrategy over that many logical CPU devices (tests)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    plan: dict[str, Any] = field(default_factory=dict)  # what trainer/plan.py saw and chose

    @property
    def input_size(self) -> tuple[int, int]:
        return self.input_width, self.input_height

    def model_config(self, num_classes: int) -> ModelConfig:
        return ModelConfig(num_classes, width=self.width, stride=self.stride)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        values = dict(data)
        values["augment"] = AugmentConfig(**values.get("augment", {}))
        return cls(**values)
