"""Start a run from an earlier model (`detectflow train --init-from SOURCE`).

SOURCE is a model bundle that carries its float weights (`weights.npz`, written by every
export) or a training run folder (`best.weights.h5` + `config.json` + `data.json`). Every
layer whose name and shapes match is copied. The class head (`hm_out`) is copied only when the
class lists are equal, name for name: other classes get a new head. A source with another
width copies nothing useful and is refused; another output stride or input size is fine (the
network is fully convolutional; a stride-8 source lacks the stride-4 neck level, which then
starts fresh).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from detectflow.model.manifest import Manifest
from trainer.config import TrainConfig
from trainer.model import build_detector
from trainer.weights import (
    WEIGHTS_NPZ,
    CopyReport,
    copy_into,
    load_weights_by_name,
    weights_by_layer,
)

log = logging.getLogger(__name__)

CLASS_HEAD = "hm_out"


class WarmStartError(ValueError):
    """The source cannot seed this model (missing, or an incompatible network)."""


def source_classes(source: Path) -> list[str]:
    if (source / WEIGHTS_NPZ).is_file():
        return Manifest.read(source).classes
    if (source / "best.weights.h5").is_file() and (source / "data.json").is_file():
        classes: list[str] = json.loads((source / "data.json").read_text())["classes"]
        return classes
    raise WarmStartError(
        f"--init-from {source}: neither a bundle with {WEIGHTS_NPZ} nor a finished run folder "
        "(best.weights.h5, data.json)")


def warm_start(model: Any, source: Path, classes: list[str]) -> CopyReport:
    """Copy the source's weights into `model` (built for `classes`); report what was copied."""
    same_classes = source_classes(source) == list(classes)
    exclude = () if same_classes else (CLASS_HEAD,)
    if (source / WEIGHTS_NPZ).is_file():
        report = load_weights_by_name(model, source / WEIGHTS_NPZ, exclude)
    else:
        report = copy_into(model, weights_by_layer(_run_model(source)), exclude)
    if len(report.copied) < len(report.copied + report.skipped + report.missing) // 2:
        raise WarmStartError(
            f"--init-from {source}: only {len(report.copied)} layers match this network "
            f"(another --width?); shapes differ in {report.skipped[:5]}")
    log.info("warm start", extra={"source": str(source), "same_classes": same_classes,
                                  **report.to_dict()})
    return report


def _run_model(run: Path) -> Any:
    config = TrainConfig.from_dict(json.loads((run / "config.json").read_text()))
    classes = json.loads((run / "data.json").read_text())["classes"]
    model = build_detector(config.model_config(len(classes)))
    model.load_weights(run / "best.weights.h5")
    return model
