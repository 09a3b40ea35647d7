"""The recipe plan: what it measures in the labels and what it chooses (no TensorFlow)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from support.synthetic import make_voc_dataset

from trainer.plan import STRIDE8_MIN_OBJECT_PX, plan_training, profile_dataset


@dataclass(frozen=True)
class Labels:
    """The parts of a dataset Annotation the plan reads."""

    width: int
    height: int
    boxes_xyxy: np.ndarray
    class_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.class_ids)


def image_with(width: int, height: int, sides: list[tuple[float, int]]) -> Labels:
    """Square objects of the given (side px, class) placed along the diagonal."""
    boxes = [(i * 5.0, i * 5.0, i * 5.0 + side, i * 5.0 + side) for i, (side, _) in
             enumerate(sides)]
    return Labels(width, height, np.array(boxes, np.float32).reshape(-1, 4),
                  np.array([c for _, c in sides], np.int64))


def test_many_small_objects_get_fine_resolution_stride_4_and_crops() -> None:
    # 640x480 images, ~20 cells of 90 px and a few 30 px ones (the smallest class decides).
    items = [image_with(640, 480, [(90, 0)] * 18 + [(30, 1)] * 2) for _ in range(200)]
    profile = profile_dataset(items, ["cell", "platelet"])
    assert profile.class_median_size["platelet"] == pytest.approx(30 / np.sqrt(640 * 480), 1e-3)
    plan = plan_training(profile)
    width, height = plan.input_size
    assert width % 32 == 0 and height % 32 == 0 and width / height == pytest.approx(4 / 3, 0.1)
    assert 30 / np.sqrt(640 * 480) * np.sqrt(width * height) >= 30  # the goal the plan states
    assert plan.stride == 4
    assert plan.augment.crop == 256 and plan.augment.mosaic == 0
    assert len(plan.reasons) >= 5


def test_frame_filling_objects_get_whole_images_mosaic_and_stride_8() -> None:
    items = [image_with(500, 375, [(300, 0)]) for _ in range(120)]
    plan = plan_training(profile_dataset(items, ["raccoon"]))
    assert plan.stride == 8
    assert plan.augment.crop is None and plan.augment.mosaic == 1.0 and plan.augment.mixup > 0
    assert min(plan.input_size) >= STRIDE8_MIN_OBJECT_PX
    assert max(plan.input_size) <= 512  # never above the images' own size


def test_profile_refuses_data_without_boxes() -> None:
    with pytest.raises(ValueError, match="no boxes"):
        profile_dataset([image_with(100, 100, [])], ["a"])


def run_show_plan(data: Path, out: Path, *flags: str) -> tuple[dict, str]:
    result = subprocess.run(
        [sys.executable, "-m", "detectflow.cli", "train", "--data", str(data), "--out",
         str(out), "--show-plan", *flags], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout), result.stderr


def test_show_plan_prints_the_plan_and_flags_override_it(tmp_path: Path) -> None:
    data = make_voc_dataset(tmp_path / "voc", n_images=20)
    summary, printed = run_show_plan(data, tmp_path / "run")
    assert "plan (override any choice with its flag)" in printed and "stride" in printed
    planned = summary["config"]
    assert planned["plan"]["profile"]["images"] > 0 and planned["plan"]["overridden"] == []
    summary, printed = run_show_plan(data, tmp_path / "run", "--img-size", "128x96",
                                     "--stride", "8", "--crop", "0", "--mosaic", "0.5")
    config = summary["config"]
    assert (config["input_width"], config["input_height"], config["stride"]) == (128, 96, 8)
    assert config["augment"]["crop"] is None and config["augment"]["mosaic"] == 0.5
    assert config["plan"]["overridden"] == ["input_height", "input_width", "stride"]
    assert "overridden by flags" in printed


def test_show_plan_rejects_a_bad_probability(tmp_path: Path) -> None:
    data = make_voc_dataset(tmp_path / "voc", n_images=10)
    result = subprocess.run(
        [sys.executable, "-m", "detectflow.cli", "train", "--data", str(data), "--show-plan",
         "--mosaic", "1.5"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "probability" in result.stderr


def test_dense_isotropic_scenes_get_flips_and_turns_others_do_not() -> None:
    cells = [image_with(640, 480, [(90, 0)] * 12) for _ in range(50)]  # square, dense
    assert plan_training(profile_dataset(cells, ["cell"])).augment.rotate90
    people = [image_with(640, 480, [(90, 0)] * 12) for _ in range(50)]
    tall = [Labels(p.width, p.height, p.boxes_xyxy * np.array([1, 1, 0.5, 1], np.float32),
                   p.class_ids) for p in people]  # same scenes, every box twice as tall as wide
    assert not plan_training(profile_dataset(tall, ["person"])).augment.rotate90
    sparse = [image_with(640, 480, [(90, 0)]) for _ in range(50)]
    plan = plan_training(profile_dataset(sparse, ["cell"]))
    assert not plan.augment.rotate90 and not plan.augment.flip_vertical
