"""Weights by layer name: the QAT hand-over, bundle weights and --init-from (builds small
Keras models, no training)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.tensorflow


def build(num_classes: int, stride: int = 4, width: float = 0.5):  # type: ignore[no-untyped-def]
    from trainer.model import ModelConfig, build_detector

    return build_detector(ModelConfig(num_classes, width=width, stride=stride),
                          input_shape=(64, 64, 3))


def randomize(model) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    for layer in model.layers:
        layer.set_weights([rng.normal(size=w.shape).astype(w.dtype) for w in layer.get_weights()])


def test_a_saved_model_loads_back_exactly(tmp_path: Path) -> None:
    from trainer.weights import load_weights_by_name, save_weights

    source, target = build(2), build(2)
    randomize(source)
    report = load_weights_by_name(target, save_weights(source, tmp_path / "w.npz"))
    assert not report.skipped and not report.missing and report.copied
    image = np.random.default_rng(1).normal(size=(1, 64, 64, 3)).astype(np.float32)
    for key, value in source(image, training=False).items():
        np.testing.assert_allclose(target(image, training=False)[key], value, rtol=1e-5)


def test_other_classes_get_a_new_head_and_another_stride_a_new_neck_level(tmp_path: Path) -> None:
    from trainer.weights import load_weights_by_name, save_weights

    path = save_weights(build(2), tmp_path / "w.npz", dtype="float16")
    three_classes = load_weights_by_name(build(3), path)
    assert three_classes.skipped == ["hm_out"]
    stride8 = build(2, stride=8)
    report = load_weights_by_name(stride8, path)
    assert not report.missing and not report.skipped  # stride 8 uses a subset of the layers
    stride4 = load_weights_by_name(build(2, stride=4), save_weights(stride8, tmp_path / "8.npz"))
    assert any(name.startswith(("lat2", "smooth2")) for name in stride4.missing)


def test_warm_start_from_a_run_folder_keeps_the_head_only_for_the_same_classes(
    tmp_path: Path,
) -> None:
    from trainer.config import TrainConfig
    from trainer.warm_start import WarmStartError, warm_start

    run = tmp_path / "run"
    run.mkdir()
    source = build(2)
    randomize(source)
    source.save_weights(run / "best.weights.h5")
    (run / "config.json").write_text(json.dumps(TrainConfig(data="x", width=0.5).to_dict()))
    (run / "data.json").write_text(json.dumps({"classes": ["cat", "dog"]}))
    same = warm_start(build(2), run, ["cat", "dog"])
    assert "hm_out" in same.copied
    renamed = warm_start(build(2), run, ["dog", "cat"])  # same count, other meaning
    assert "hm_out" in renamed.missing and "hm_out" not in renamed.copied
    with pytest.raises(WarmStartError, match="width"):
        warm_start(build(2, width=1.0), run, ["cat", "dog"])
    with pytest.raises(WarmStartError, match="neither a bundle"):
        warm_start(build(2), tmp_path, ["cat", "dog"])
