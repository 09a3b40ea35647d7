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


# --- F1 curves, confusion matrix, prediction grid ---------------------------------------------


def test_f1_curves_png_marks_the_calibrated_threshold(tmp_path: Path) -> None:
    from detectflow.evaluation.plots import plot_f1_curves
    from detectflow.evaluation.thresholds import calibrate

    report = _report()

    out = plot_f1_curves(report, calibrate(report), tmp_path / "f1.png", split="val")

    with Image.open(out) as img:
        assert img.size == (700, 550)
        rgb = np.asarray(img.convert("RGB")).astype(int)
    # the mean curve and the threshold line are black; the class curves in their colours
    assert (rgb.sum(axis=2) < 40).sum() > 500
    bluish = (rgb[:, :, 2] - rgb[:, :, 0] > 80) & (rgb[:, :, 1] < 200)
    assert bluish.sum() > 300  # the 'cell' curve at F1 1.0 up to its score 0.9


def test_confusion_matrix_png_shades_each_true_class_column(tmp_path: Path) -> None:
    from detectflow.evaluation.confusion import confusion_matrix
    from detectflow.evaluation.plots import plot_confusion_matrix

    gts = [GroundTruth([[0, 0, 10, 10], [20, 20, 40, 40]], [0, 1])]
    preds = [Predictions([[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.8], [0, 1])]
    matrix = confusion_matrix(gts, preds, ["cell", "other"], score_threshold=0.5)

    out = plot_confusion_matrix(matrix, tmp_path / "cm.png", split="test")

    with Image.open(out) as img:
        rgb = np.asarray(img.convert("RGB")).astype(int)
    # full columns (share 1.0) take the darkest "Blues" colour, (8, 48, 107)
    assert (np.abs(rgb - (8, 48, 107)).sum(axis=2) < 10).sum() > 1000


def test_prediction_grid_puts_the_image_with_errors_first(tmp_path: Path) -> None:
    from support.synthetic import make_voc_dataset

    from detectflow.datasets import load_dataset
    from detectflow.evaluation.gallery import COLUMNS, HEADER_PX, TILE_PX, prediction_grid

    dataset = load_dataset(make_voc_dataset(tmp_path / "voc", n_images=6))
    items = dataset.split("all")
    preds = [Predictions(a.boxes_xyxy, np.full(len(a), 0.9), a.class_ids) for a in items]
    worst = items[4]
    preds[4] = Predictions(worst.boxes_xyxy[1:], np.full(len(worst) - 1, 0.9),
                           worst.class_ids[1:])  # misses one box

    out = prediction_grid(items, preds, dataset.classes, 0.5, tmp_path / "grid.png")

    with Image.open(out) as img:
        # 160x120 images: 320x240 tiles, 4 a row
        assert img.size == (COLUMNS * TILE_PX, HEADER_PX + 2 * (240 + 18))
        grid = np.asarray(img.convert("RGB")).astype(int)
    with Image.open(worst.image_path) as source:
        scale = TILE_PX / source.width
        expected = np.asarray(source.convert("RGB").resize(
            (TILE_PX, round(source.height * scale)))).astype(int)
    first_tile = grid[HEADER_PX:HEADER_PX + expected.shape[0], :TILE_PX]
    # the same picture (boxes drawn over a few percent of it)
    assert np.median(np.abs(first_tile - expected)) < 8
