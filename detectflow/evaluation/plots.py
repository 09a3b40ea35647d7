"""PNG plots for evaluation and training: PR curves per class, loss and mAP per epoch.

matplotlib is imported inside the functions (it is a trainer dependency, and slow to import),
and used through `Figure` directly: no pyplot, no global backend switch, safe in threads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from detectflow.evaluation.metrics import EvalReport

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
