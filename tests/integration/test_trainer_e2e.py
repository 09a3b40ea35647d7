"""The one short, real training path: synthetic VOC -> train -> export (float, int8, QAT int8)
-> load with LiteRT -> detect. Plus the same training step under tf.distribute with two
logical CPU devices. A few training steps only: the full BCCD run is a benchmark."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from detectflow.cli import main
from detectflow.model import Detector, Manifest

# Real TensorFlow training and export (QAT included): minutes on two cores, more under load.
pytestmark = [pytest.mark.tensorflow, pytest.mark.slow, pytest.mark.timeout(1800)]

TRAIN_ARGS = ["--img-size", "160x128", "--crop", "96", "--batch", "8", "--epochs", "2",
              "--eval-every", "1", "--seed", "1"]


@pytest.fixture(scope="module")
def trained_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from support.synthetic import make_voc_dataset

    root = tmp_path_factory.mktemp("train")
    data = make_voc_dataset(root / "voc", n_images=24, seed=3)
    out = root / "run"
    code = main(["train", "--data", str(data), "--out", str(out), "--name", "shapes",
                 *TRAIN_ARGS, "--formats", "float32,int8,qat", "--qat-epochs", "1"])
    assert code == 0
    return out / "bundle"


def test_bundle_has_every_export_with_metrics(trained_bundle: Path) -> None:
    manifest = Manifest.read(trained_bundle)
    assert manifest.name == "shapes"
    assert manifest.classes == ["circle", "square", "triangle"]
    assert (manifest.input.width, manifest.input.height) == (160, 128)
    assert set(manifest.exports) == {"float32", "int8", "qat", "default"}
    assert manifest.export in ("int8", "qat")
    for export in manifest.exports.values():
        path = trained_bundle / export.file
        assert path.stat().st_size == export.size_bytes > 0
        assert export.map50 is not None and 0.0 <= export.map50 <= 1.0
        assert export.latency_ms is not None and export.latency_ms > 0
        assert sorted(export.outputs.values()) == [0, 1]
    # integer exports store weights in one byte: clearly smaller than float32
    assert manifest.exports["int8"].size_bytes < 0.5 * manifest.exports["float32"].size_bytes
    assert (trained_bundle / "pr_curves.png").is_file()
    assert {"val", "test"} <= set(manifest.metrics["exports"]["int8"])


def test_int8_exports_agree_with_float(trained_bundle: Path) -> None:
    """Quantization error on the raw outputs stays small (the same image, three runtimes)."""
    manifest = Manifest.read(trained_bundle)
    pixels = (np.random.default_rng(0).random((128, 160, 3)) * 255).astype(np.uint8)
    outputs = {
        fmt: Detector.load(trained_bundle, model_file=manifest.exports[fmt].file).infer(pixels)
        for fmt in ("float32", "int8", "qat")
    }
    float_heatmap, float_ltrb, _ = outputs["float32"]
    for fmt in ("int8", "qat"):
        heatmap, ltrb, _ = outputs[fmt]
        assert heatmap.shape == float_heatmap.shape and ltrb.shape == float_ltrb.shape
    # PTQ calibrates on the same weights: its outputs track float closely
    assert np.abs(outputs["int8"][0] - float_heatmap).mean() < 0.05


def test_detector_returns_boxes_in_original_pixels(trained_bundle: Path, tmp_path: Path) -> None:
    from PIL import Image

    image = Image.new("RGB", (320, 240), (30, 30, 30))
    detector = Detector.load(trained_bundle)
    detections = detector.detect(image, score_threshold=0.0)
    assert 0 < len(detections) <= detector.manifest.decoding.max_detections
    for det in detections:
        x0, y0, x1, y1 = det.box_xyxy
        assert 0 <= x0 < x1 <= 320 and 0 <= y0 < y1 <= 240
        assert det.label in detector.classes


def test_same_training_step_under_mirrored_strategy(tmp_path: Path) -> None:
    """tf.distribute: the fit runs mirrored over 2 logical CPU devices (own process, since the
    logical device split must happen before TensorFlow initializes)."""
    from support.synthetic import make_voc_dataset

    data = make_voc_dataset(tmp_path / "voc", n_images=16, seed=4)
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "detectflow.cli", "train", "--data", str(data), "--out", str(out),
         *TRAIN_ARGS[:-4], "--epochs", "1", "--cpu-replicas", "2", "--no-export"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "DETECTFLOW_PROGRESS": "0"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "replicas=2" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["epochs"] == 1
    assert (out / "best.weights.h5").is_file() and (out / "last.keras").is_file()


def test_resume_continues_the_run(tmp_path: Path) -> None:
    """`--resume` picks up the checkpoint, optimizer, EMA and history where the run stopped."""
    from support.synthetic import make_voc_dataset

    data = make_voc_dataset(tmp_path / "voc", n_images=16, seed=5)
    out = tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(out), *TRAIN_ARGS[:-4], "--no-export"]
    assert main([*args, "--epochs", "1"]) == 0
    first = json.loads((out / "state.json").read_text())
    assert first["epochs_done"] == 1
    assert main(["train", "--out", str(out), "--resume", "--epochs", "2", "--no-export"]) == 0
    state = json.loads((out / "state.json").read_text())
    assert state["epochs_done"] == 2
    assert state["history"]["epoch"] == [1, 2]
    assert state["minutes"] > first["minutes"]


def test_a_run_starts_from_a_bundle(trained_bundle: Path, tmp_path: Path) -> None:
    """--init-from: the exported bundle carries float weights; a new run starts from them."""
    from support.synthetic import make_voc_dataset

    assert (trained_bundle / "weights.npz").is_file()
    data = make_voc_dataset(tmp_path / "voc", n_images=16, seed=6)
    result = subprocess.run(
        [sys.executable, "-m", "detectflow.cli", "train", "--data", str(data), "--out",
         str(tmp_path / "run"), *TRAIN_ARGS[:-4], "--epochs", "1", "--no-export",
         "--init-from", str(trained_bundle)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "DETECTFLOW_PROGRESS": "0"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "warm start" in result.stderr and "same_classes=True" in result.stderr


def test_two_worker_processes_train_together_and_only_the_chief_writes(tmp_path: Path) -> None:
    """MultiWorkerMirroredStrategy from TF_CONFIG, as on Vertex AI: two processes on this
    machine, one replica each, gradients all-reduced between them."""
    from support.synthetic import make_voc_dataset

    from detectflow.launcher.testing import free_port

    data = make_voc_dataset(tmp_path / "voc", n_images=16, seed=7)
    cluster = {"worker": [f"localhost:{free_port()}", f"localhost:{free_port()}"]}
    workers = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "detectflow.cli", "train", "--data", str(data), "--out",
             str(tmp_path / f"out{index}"), *TRAIN_ARGS[:-4], "--epochs", "1",
             "--formats", "int8"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "TF_CONFIG": tf_config, "DETECTFLOW_PROGRESS": "0"}))
    outputs = [worker.communicate(timeout=900) for worker in workers]
    for worker, (_, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr[-3000:]
        assert "replicas=2" in stderr and "multi-worker training" in stderr
    chief, other = (json.loads(stdout) for stdout, _ in outputs)
    assert chief["chief"] and chief["bundle"] and (tmp_path / "out0" / "bundle").is_dir()
    assert not other["chief"] and other["run"] is None and "bundle" not in other
    assert not (tmp_path / "out1").exists()  # the other worker writes nothing of its own
