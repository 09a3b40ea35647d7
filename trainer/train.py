"""Train a detector: VOC data -> preprocessing cache -> fit -> a run folder.

The fit: AdamW with linear warm-up + cosine decay, an exponential moving average of the
weights (evaluated and kept), validation mAP every few epochs on a split carved from the
training data (never the test split), early stopping, a wall-clock budget, and a checkpoint
each epoch for `--resume`.

Run folder:
  config.json  state.json  history.json  last.keras  best.weights.h5  training_curves.png
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from detectflow.evaluation.metrics import (
    EVAL_SCORE_THRESHOLD,
    GroundTruth,
    Predictions,
    evaluate_detections,
)
from detectflow.model.decode import decode_centernet
from detectflow.model.manifest import Decoding
from trainer import multiworker
from trainer.batches import ImageSet, TrainBatches, loader_threads, normalize
from trainer.cache import CachedSplit
from trainer.config import TrainConfig
from trainer.data import TrainingData, load_training_data
from trainer.ema import ModelEMA
from trainer.losses import box_giou_loss, heatmap_focal_loss
from trainer.model import LTRB_UNIT_PX, build_detector
from trainer.schedule import CosineSchedule
from trainer.warm_start import warm_start

log = logging.getLogger(__name__)

SMOOTHING = 3  # evaluations averaged to pick the best checkpoint (see ValidationCallback)


@dataclass
class RunResult:
    run_dir: Path
    best_fitness: float
    best_metrics: dict[str, Any]
    epochs_run: int
    minutes: float
    chief: bool = True  # False on the other workers of a multi-machine job: they export nothing


def fitness(map50: float, map50_95: float) -> float:
    """Checkpoint selection score, as Ultralytics does: mostly the strict metric."""
    return 0.1 * map50 + 0.9 * map50_95


BOX_VOTE_RADIUS = 1  # decode each peak's box from its 3x3 cells (detectflow.model.decode)


def decoding_spec(stride: int) -> Decoding:
    return Decoding(stride=stride, ltrb_unit_px=LTRB_UNIT_PX, box_vote_radius=BOX_VOTE_RADIUS)


def predict_split(
    model: Any, data: ImageSet, stride: int, batch_size: int = 8
) -> list[Predictions]:
    """Run the Keras model on cached (letterboxed) images; boxes in input pixels."""
    spec = decoding_spec(stride)
    predictions: list[Predictions] = []
    for start in range(0, len(data), batch_size):
        batch = normalize(data.images[start : start + batch_size])
        outputs = model(batch, training=False)
        heatmaps, ltrbs = np.asarray(outputs["heatmap"]), np.asarray(outputs["ltrb"])
        for heatmap, ltrb in zip(heatmaps, ltrbs, strict=True):
            raw = decode_centernet(heatmap, ltrb, spec, EVAL_SCORE_THRESHOLD)
            predictions.append(Predictions(raw.boxes_xyxy, raw.scores, raw.class_ids))
    return predictions


def ground_truths(data: CachedSplit) -> list[GroundTruth]:
    return [GroundTruth(data.boxes(i), data.class_ids(i), data.difficult(i))
            for i in range(len(data))]


def evaluate_model(
    model: Any, data: CachedSplit, classes: list[str], stride: int
) -> dict[str, Any]:
    report = evaluate_detections(ground_truths(data), predict_split(model, data, stride), classes)
    result: dict[str, Any] = report.to_dict()
    return result


class ValidationCallback(keras.callbacks.Callback):
    """Val mAP every `eval_every` epochs on the EMA weights; keeps the best; stops early.

    "Best" is judged on the mean fitness of the last SMOOTHING evaluations, not on one: with a
    few dozen validation images one evaluation is noise of several points (each object is
    a few % of recall), and a lucky spike would otherwise pick an undertrained checkpoint.
    """

    def __init__(
        self, run: RunState, data: TrainingData, config: TrainConfig, ema: ModelEMA
    ) -> None:
        super().__init__()
        self.ema = ema
        self.run = run
        self.data = data
        self.config = config

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs if logs is not None else {}
        last_epoch = epoch + 1 >= self.config.epochs
        over_budget = self.run.over_budget()
        if (epoch + 1) % self.config.eval_every == 0 or last_epoch or over_budget:
            self._evaluate(epoch, logs)
        if over_budget:
            log.warning("time budget reached; stopping", extra={"epoch": epoch + 1})
            self.model.stop_training = True
        self.run.record(epoch, logs)

    def _evaluate(self, epoch: int, logs: dict[str, Any]) -> None:
        with self.ema.swapped_in() as ema_model:
            metrics = evaluate_model(ema_model, self.data.val, self.data.classes,
                                     self.config.stride)
            score = self.run.smoothed_fitness(
                fitness(metrics["map50"] or 0.0, metrics["map50_95"] or 0.0))
            improved = score > self.run.best_fitness
            if improved:
                ema_model.save_weights(self.run.dir / "best.weights.h5")
                self.run.best_fitness, self.run.best_metrics = score, metrics
                self.run.best_epoch = epoch + 1
        logs["val_map50"] = metrics["map50"]
        logs["val_map50_95"] = metrics["map50_95"]
        evals_since_best = (epoch + 1 - self.run.best_epoch) // self.config.eval_every
        log.info(
            "validation",
            extra={"epoch": epoch + 1, "map50": round(metrics["map50"], 4),
                   "map50_95": round(metrics["map50_95"], 4), "best": improved},
        )
        if evals_since_best >= self.config.patience:
            log.info("early stop: no val improvement", extra={"epoch": epoch + 1})
            self.model.stop_training = True


class RunState:
    """What survives a restart: best score, history, epoch, elapsed time."""

    def __init__(self, run_dir: Path, config: TrainConfig) -> None:
        self.dir = run_dir
        self.config = config
        self.best_fitness = -1.0
        self.best_metrics: dict[str, Any] = {}
        self.best_epoch = 0
        self.epochs_done = 0
        self.history: dict[str, list[float | None]] = {}
        self.minutes_before = 0.0
        self.started = time.monotonic()

    @property
    def minutes(self) -> float:
        return self.minutes_before + (time.monotonic() - self.started) / 60

    def smoothed_fitness(self, latest: float) -> float:
        """Mean fitness of the SMOOTHING - 1 evaluations before this one, and this one."""
        past = [fitness(m50, m5095) for m50, m5095 in zip(
            self.history.get("val_map50", []), self.history.get("val_map50_95", []), strict=True)
            if m50 is not None and m5095 is not None]
        window = [*past[-(SMOOTHING - 1):], latest] if SMOOTHING > 1 else [latest]
        return float(np.mean(window))

    def over_budget(self) -> bool:
        return self.config.max_minutes is not None and self.minutes >= self.config.max_minutes

    def record(self, epoch: int, logs: dict[str, Any]) -> None:
        """One row per epoch; None where a series has no value that epoch (validation)."""
        self.epochs_done = epoch + 1
        rows = len(self.history.get("epoch", []))
        values = {"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}}
        for key in set(self.history) | set(values):
            column = self.history.setdefault(key, [None] * rows)
            column.append(values.get(key))
        (self.dir / "history.json").write_text(json.dumps(self.history, indent=1))
        self.save()

    def save(self) -> None:
        state = {
            "best_fitness": self.best_fitness, "best_metrics": self.best_metrics,
            "best_epoch": self.best_epoch, "epochs_done": self.epochs_done,
            "minutes": self.minutes, "history": self.history,
        }
        (self.dir / "state.json").write_text(json.dumps(state, indent=1))

    def restore(self) -> None:
        state = json.loads((self.dir / "state.json").read_text())
        self.best_fitness = state["best_fitness"]
        self.best_metrics = state["best_metrics"]
        self.best_epoch = state["best_epoch"]
        self.epochs_done = state["epochs_done"]
        self.minutes_before = state["minutes"]
        self.history = state["history"]


class PlainTail(keras.callbacks.Callback):
    """Switch mosaic and mixup off for the last `fraction` of the run (by steps or by the time
    budget, whichever is further: the learning-rate schedule's own progress), as YOLO's
    close_mosaic does: the model finishes on samples that look like real images."""

    def __init__(self, batches: TrainBatches, schedule: CosineSchedule, fraction: float) -> None:
        super().__init__()
        self.batches = batches
        self.schedule = schedule
        self.fraction = fraction

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        plain = self.schedule.progress() >= 1.0 - self.fraction
        if plain and self.batches.strong:
            log.info("plain samples from here on (no mosaic/mixup)", extra={"epoch": epoch + 1})
        self.batches.strong = not plain


class CheckpointCallback(keras.callbacks.Callback):
    """`last.keras` (weights + optimizer state) and `ema.npz` after every epoch."""

    def __init__(self, run_dir: Path, ema: ModelEMA) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.ema = ema

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        tmp = self.run_dir / "last.tmp.keras"
        self.model.save(tmp)
        os.replace(tmp, self.run_dir / "last.keras")
        self.ema.save(self.run_dir / "ema.tmp.npz")
        os.replace(self.run_dir / "ema.tmp.npz", self.run_dir / "ema.npz")


def make_strategy(config: TrainConfig) -> tf.distribute.Strategy:
    """One GPU/CPU: default; several GPUs: MirroredStrategy; TF_CONFIG (Vertex AI, several
    machines): MultiWorkerMirroredStrategy; `cpu_replicas` > 1: mirrored logical CPUs."""
    if "TF_CONFIG" in os.environ:
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    if config.cpu_replicas > 1:
        split_cpu(config.cpu_replicas)
        devices = [f"/cpu:{i}" for i in range(config.cpu_replicas)]
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()


def split_cpu(count: int) -> None:
    """Expose the CPU as `count` logical devices (must run before TensorFlow initializes)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    # (Listing *logical* devices first would initialize the runtime and forbid the split.)
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
    )


def use_mixed_precision_on_gpu() -> None:
    if tf.config.list_physical_devices("GPU"):
        keras.mixed_precision.set_global_policy("mixed_float16")
        log.info("mixed precision on (float16 compute, float32 outputs)")


def compile_model(model: Any, config: TrainConfig) -> None:
    # The learning rate is a plain variable, set every step by trainer.schedule.CosineSchedule.
    optimizer = keras.optimizers.AdamW(
        learning_rate=config.learning_rate, weight_decay=config.weight_decay,
        global_clipnorm=10.0,
    )
    optimizer.exclude_from_weight_decay(var_names=["bn", "bias"])
    model.compile(
        optimizer=optimizer,
        loss={"heatmap": heatmap_focal_loss, "ltrb": box_giou_loss},
        loss_weights={"heatmap": 1.0, "ltrb": config.box_loss_weight},
    )


def is_chief() -> bool:
    """Only one worker of a multi-machine job writes the run folder."""
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}"))
    task = cluster.get("task", {})
    return task.get("type", "chief") == "chief" or (
        task.get("type") == "worker" and task.get("index", 0) == 0 and "chief" not in
        cluster.get("cluster", {})
    )


def train(config: TrainConfig, resume: bool = False) -> RunResult:
    keras.utils.set_random_seed(config.seed)
    chief = is_chief()
    # Every worker of a multi-machine job trains; only the chief writes the run folder.
    run_dir = Path(config.out) if chief else Path(tempfile.mkdtemp(prefix="detectflow-worker-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    strategy = make_strategy(config)
    use_mixed_precision_on_gpu()
    data = load_training_data(config, run_dir)
    (run_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
    run = RunState(run_dir, config)
    batches = TrainBatches(
        data.train, len(data.classes), config.batch_size, config.augment, config.seed,
        input_size=config.input_size, stride=config.stride, workers=loader_threads(),
    )
    with strategy.scope():
        if resume and (run_dir / "last.keras").is_file():
            model = keras.models.load_model(run_dir / "last.keras")
            run.restore()
            log.info("resuming", extra={"epoch": run.epochs_done})
        else:
            model = build_detector(config.model_config(len(data.classes)))
            if config.init_from:
                warm_start(model, Path(config.init_from), data.classes)
            compile_model(model, config)
    if multiworker.is_multi_worker(strategy):
        multiworker.enable(model, strategy)
    log.info(
        "training", extra={"params": model.count_params(), "train_images": len(data.train),
                           "val_images": len(data.val), "replicas": strategy.num_replicas_in_sync,
                           "epochs": config.epochs, "steps_per_epoch": len(batches)},
    )
    ema = ModelEMA(config.ema_momentum)
    if resume and (run_dir / "ema.npz").is_file():
        ema.load(run_dir / "ema.npz")
    schedule = CosineSchedule(
        config.learning_rate, total_steps=config.epochs * len(batches),
        warmup_steps=config.warmup_epochs * len(batches), minutes_elapsed=lambda: run.minutes,
        budget_minutes=config.max_minutes,
    )
    callbacks: list[Any] = [schedule, PlainTail(batches, schedule, config.augment.plain_tail),
                            ema, ValidationCallback(run, data, config, ema)]
    if chief:
        callbacks.append(CheckpointCallback(run_dir, ema))
    model.fit(
        batches, epochs=config.epochs, initial_epoch=run.epochs_done, callbacks=callbacks,
        verbose=1 if os.environ.get("DETECTFLOW_PROGRESS", "1") == "1" else 2,
    )
    run.save()
    finish_run(run, data)
    if not chief:  # its copy of the run was scratch space
        shutil.rmtree(run_dir, ignore_errors=True)
    return RunResult(run_dir, run.best_fitness, run.best_metrics, run.epochs_done, run.minutes,
                     chief=chief)


def finish_run(run: RunState, data: TrainingData) -> None:
    """Training curves and the data summary beside the weights."""
    (run.dir / "data.json").write_text(json.dumps(data.summary(), indent=2))
    try:
        from detectflow.evaluation.plots import plot_training_curves

        plot_training_curves(run.history, run.dir / "training_curves.png")
    except ImportError:  # matplotlib is part of the `train` extra; plots are a bonus
        log.warning("matplotlib missing: no training curves plot")
