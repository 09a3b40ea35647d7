"""PNG plots for evaluation and training: PR and F1 curves per class, the confusion matrix,
loss and mAP per epoch. (The grid of images with their boxes is `gallery`.)

matplotlib is imported inside the functions (it is a trainer dependency, and slow to import),
and used through `Figure` directly: no pyplot, no global backend switch, safe in threads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from detectflow.evaluation.confusion import ConfusionMatrix
from detectflow.evaluation.metrics import EvalReport
from detectflow.evaluation.thresholds import GRID, Calibration, F1Curves

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _new_figure(width: float, height: float, columns: int = 1) -> tuple[Figure, list[Axes]]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    axes = figure.subplots(1, columns, squeeze=False)[0]
    return figure, list(axes)


def _save(figure: Figure, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, format="png")
    return out


def plot_pr_curves(report: EvalReport, path: str | Path) -> Path:
    """One precision/recall curve per class at IoU 0.5, AP in the legend; returns the path."""
    figure, (axes,) = _new_figure(7.0, 5.5)
    for metrics in report.per_class:
        curve = report.pr_curves[metrics.name]
        if metrics.ap50 is None or not len(curve.recall):
            continue
        # The monotone envelope is what AP integrates, so that is what we draw.
        envelope = np.maximum.accumulate(curve.precision[::-1])[::-1]
        axes.step(
            np.concatenate(([0.0], curve.recall)),
            np.concatenate(([envelope[0]], envelope)),
            where="pre",
            linewidth=1.5,
            label=f"{metrics.name}  AP50 {metrics.ap50:.3f}",
        )
    mean = report.map50
    title = "Precision-recall at IoU 0.5"
    axes.set_title(title if mean is None else f"{title}   (mAP50 {mean:.3f})")
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.set_xlim(0.0, 1.0)
    axes.set_ylim(0.0, 1.02)
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="lower left")
    return _save(figure, path)


def plot_f1_curves(
    report: EvalReport, calibration: Calibration | None, path: str | Path, split: str = ""
) -> Path:
    """F1 against score threshold per class and their mean, the chosen threshold marked."""
    figure, (axes,) = _new_figure(7.0, 5.5)
    curves = []
    for metrics in report.per_class:
        if metrics.n_instances == 0:
            continue
        pr = report.pr_curves[metrics.name]
        curve = F1Curves.from_ranked(pr.recall, pr.precision, pr.scores)
        curves.append(curve)
        best = "" if metrics.best_threshold is None else f"  best {metrics.best_threshold:.2f}"
        axes.plot(GRID, curve.f1, linewidth=1.0, label=f"{metrics.name}{best}")
    if curves:
        axes.plot(GRID, np.mean([c.f1 for c in curves], axis=0), color="black", linewidth=2.5,
                  label="all classes")
    if calibration is not None:
        axes.axvline(calibration.score_threshold, color="black", linestyle="--", linewidth=1)
        axes.set_title(f"F1 against score threshold{_on(split)}: best "
                       f"{calibration.overall.f1:.2f} at {calibration.score_threshold:.3f}")
    else:
        axes.set_title(f"F1 against score threshold{_on(split)}")
    axes.set_xlabel("score threshold")
    axes.set_ylabel("F1 (IoU 0.5)")
    axes.set_xlim(0.0, 1.0)
    axes.set_ylim(0.0, 1.05)  # a class with F1 1.0 stays visible above the top edge
    axes.grid(alpha=0.3)
    if curves:
        axes.legend(loc="upper right")
    return _save(figure, path)


def plot_confusion_matrix(matrix: ConfusionMatrix, path: str | Path, split: str = "") -> Path:
    """Cells coloured by the share of each true class (column), with the counts written in."""
    size = 2.0 + 0.9 * len(matrix.labels)
    figure, (axes,) = _new_figure(size + 1.5, size)
    shares = matrix.column_normalized()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, fraction=0.046, label="share of the true class")
    ticks = np.arange(len(matrix.labels))
    axes.set_xticks(ticks, matrix.labels, rotation=45, ha="right")
    axes.set_yticks(ticks, matrix.labels)
    axes.set_xlabel("true")
    axes.set_ylabel("predicted")
    for row, col in np.ndindex(*matrix.matrix.shape):
        count = int(matrix.matrix[row, col])
        if count:
            axes.text(col, row, str(count), ha="center", va="center", fontsize=9,
                      color="white" if shares[row, col] > 0.5 else "black")
    axes.set_title(f"Confusion matrix{_on(split)}, score >= {matrix.score_threshold:.3f}, "
                   f"IoU > {matrix.iou_threshold:g}")
    return _save(figure, path)


def _on(split: str) -> str:
    return f" ({split})" if split else ""


def plot_training_curves(
    history: Mapping[str, Sequence[float | None]], path: str | Path
) -> Path:
    """Two panels per epoch: every `*loss*` series, and every `val_map*` series.

    `history["epoch"]`, when present, gives the x values; `None` marks an epoch without a
    value (validation runs every few epochs).
    """
    figure, (loss_axes, map_axes) = _new_figure(11.0, 4.5, columns=2)
    epochs = history.get("epoch")
    _plot_series(loss_axes, {k: v for k, v in history.items() if "loss" in k.lower()}, epochs)
    loss_axes.set_title("loss")
    losses = [x for k, v in history.items() if "loss" in k.lower() for x in v if x is not None]
    if losses and min(losses) > 0 and max(losses) / min(losses) > 20:
        loss_axes.set_yscale("log")  # early epochs would flatten the rest of the curve
    metrics = {k: v for k, v in history.items() if k.lower().startswith(("val_map", "map"))}
    _plot_series(map_axes, metrics, epochs)
    map_axes.set_title("validation mAP")
    map_axes.set_ylim(0.0, 1.0)
    return _save(figure, path)


def _plot_series(
    axes: Axes,
    series: Mapping[str, Sequence[float | None]],
    epochs: Sequence[float | None] | None = None,
) -> None:
    from matplotlib.ticker import MaxNLocator

    for name, values in series.items():
        x = np.asarray(epochs if epochs is not None and len(epochs) == len(values)
                       else np.arange(1, len(values) + 1), dtype=float)
        y = np.asarray([np.nan if v is None else v for v in values], dtype=float)
        known = ~np.isnan(y)
        axes.plot(x[known], y[known], marker="o" if known.sum() < 30 else None, markersize=3,
                  label=name)
    axes.set_xlabel("epoch")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(alpha=0.3)
    if series:
        axes.legend()
    else:
        axes.text(0.5, 0.5, "nothing recorded", ha="center", va="center",
                  transform=axes.transAxes)
