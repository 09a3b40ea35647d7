"""PNG plots: PR curves from an EvalReport, training curves from a history dict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from detectflow.evaluation.metrics import EvalReport, GroundTruth, Predictions, evaluate_detections
from detectflow.evaluation.plots import plot_pr_curves, plot_training_curves


def _report() -> EvalReport:
    gts = [GroundTruth([[0, 0, 10, 10], [20, 20, 40, 40]], [0, 1])]
    preds = [Predictions([[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.4], [0, 1])]
    return evaluate_detections(gts, preds, ["cell", "other", "absent"])


def _distinct_colours(path: Path) -> int:
    with Image.open(path) as img:
        assert img.format == "PNG"
        pixels = np.asarray(img.convert("RGB")).reshape(-1, 3)
    return len(np.unique(pixels, axis=0))


def test_pr_curves_png_has_a_curve_per_class_with_ground_truth(tmp_path: Path) -> None:
    out = plot_pr_curves(_report(), tmp_path / "plots" / "pr.png")

    assert out == tmp_path / "plots" / "pr.png"
    with Image.open(out) as img:
        assert img.size == (700, 550)
        rgb = np.asarray(img.convert("RGB")).astype(int)
    # matplotlib's first two line colours (tab:blue, tab:orange) are drawn; nothing crashed
    # on the class without ground truth.
    for colour in ((31, 119, 180), (255, 127, 14)):
        assert (np.abs(rgb - colour).sum(axis=2) < 30).sum() > 50


def test_training_curves_png_has_two_panels(tmp_path: Path) -> None:
    history = {
        "loss": [4.0, 2.0, 1.0, 0.8],
        "val_loss": [4.2, 2.5, 1.4, 1.2],
        "val_map50": [0.1, 0.4, 0.6, 0.7],
        "lr": [1e-3, 1e-3, 5e-4, 1e-4],
    }

    out = plot_training_curves(history, tmp_path / "curves.png")

    with Image.open(out) as img:
        assert img.size == (1100, 450)
    assert _distinct_colours(out) > 20


def test_training_curves_cope_with_an_empty_history(tmp_path: Path) -> None:
    out = plot_training_curves({}, tmp_path / "empty.png")

    assert out.stat().st_size > 0


def test_training_curves_place_sparse_validation_at_its_epochs(tmp_path: Path) -> None:
    """Validation runs every few epochs: None rows are skipped, x is the epoch number, and
    `heatmap_loss` (which contains "map") stays out of the mAP panel."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    captured: list[Figure] = []
    original = Figure.savefig

    def capture(self: Figure, *args: object, **kwargs: object) -> None:
        captured.append(self)
        original(self, *args, **kwargs)

    history = {
        "epoch": [1, 2, 3, 4],
        "heatmap_loss": [3.0, 2.0, 1.5, 1.2],
        "val_map50": [None, 0.5, None, 0.7],
    }
    Figure.savefig = capture  # type: ignore[method-assign]
    try:
        plot_training_curves(history, tmp_path / "curves.png")
    finally:
        Figure.savefig = original  # type: ignore[method-assign]
    loss_axes, map_axes = captured[0].axes
    assert [line.get_label() for line in map_axes.get_lines()] == ["val_map50"]
    x, y = map_axes.get_lines()[0].get_data()
    assert list(x) == [2.0, 4.0] and list(y) == [0.5, 0.7]
    assert [line.get_label() for line in loss_axes.get_lines()] == ["heatmap_loss"]
