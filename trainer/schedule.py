"""Learning-rate schedule: linear warm-up, then cosine decay, over steps *or* wall time.

With a time budget (`--max-minutes`), progress is whichever is further along, steps or
minutes, so the cosine anneals fully by the end of the budget instead of being cut off at a
high learning rate (as Ultralytics' `time=` argument does by re-planning epochs).

Steps are counted here, in Python: reading the optimizer's step counter before every batch
waits for the previous step to finish, and that wait (plus a stall of the input pipeline)
cost ~130 ms of a ~620 ms CPU step (runs/ measurements in docs/benchmarks.md, "Training step").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import keras

FINAL_FRACTION = 0.02  # the last learning rate, relative to the peak
WARMUP_START = 0.05  # the first learning rate, relative to the peak


def cosine_with_warmup(progress: float, warmup: float, peak: float) -> float:
    """Learning rate at `progress` in [0, 1] of the run; `warmup` is a fraction of it too."""
    if progress < warmup:
        return peak * (WARMUP_START + (1 - WARMUP_START) * progress / warmup)
    decay = min(1.0, (progress - warmup) / max(1e-9, 1 - warmup))
    return peak * (FINAL_FRACTION + (1 - FINAL_FRACTION) * 0.5 * (1 + math.cos(math.pi * decay)))


class CosineSchedule(keras.callbacks.Callback):
    def __init__(
        self,
        peak: float,
        total_steps: int,
        warmup_steps: int,
        minutes_elapsed: Callable[[], float],
        budget_minutes: float | None,
    ) -> None:
        super().__init__()
        self.peak = peak
        self.total_steps = max(1, total_steps)
        self.warmup = min(0.5, warmup_steps / self.total_steps)
        self.minutes_elapsed = minutes_elapsed
        self.budget = budget_minutes
        self.steps = 0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.steps = int(self.model.optimizer.iterations.numpy())  # > 0 on --resume

    def progress(self) -> float:
        by_steps = self.steps / self.total_steps
        if self.budget:
            return max(by_steps, self.minutes_elapsed() / self.budget)
        return by_steps

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        lr = cosine_with_warmup(min(1.0, self.progress()), self.warmup, self.peak)
        self.model.optimizer.learning_rate.assign(lr)
        self.steps += 1

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            logs["lr"] = float(self.model.optimizer.learning_rate.numpy())
