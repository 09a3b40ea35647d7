"""Network weights as a plain `.npz` of arrays keyed `<layer name>/<index>`.

One portable format for three uses: Keras 3 -> tf_keras for quantization-aware training (the
two builds of trainer/model.py share layer names), the `weights.npz` a bundle carries so a new
run can start from it (`detectflow train --init-from`), and partial copies between models that
differ in their head (other classes) or neck (other stride): a layer is copied when its name
and every array shape match, and left as initialised otherwise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

WEIGHTS_NPZ = "weights.npz"


@dataclass
class CopyReport:
    copied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # in the file, but another shape
    missing: list[str] = field(default_factory=list)  # in the model, not in the file

    def to_dict(self) -> dict[str, Any]:
        return {"copied": len(self.copied), "skipped": self.skipped, "missing": self.missing}


def save_weights(model: Any, path: Path, dtype: str = "float32") -> Path:
    """Every layer's weights (BN statistics included); float16 halves a bundle's copy."""
    arrays: dict[str, Any] = {f"{layer.name}/{i}": np.asarray(w).astype(dtype)
                              for layer in model.layers for i, w in enumerate(layer.get_weights())}
    with path.open("wb") as file:
        np.savez_compressed(file, allow_pickle=False, **arrays)
    return path


def load_weights_by_name(model: Any, path: Path, exclude: tuple[str, ...] = ()) -> CopyReport:
    """Copy what matches from the `.npz` at `path` into `model` (see the module docstring)."""
    stored = np.load(path)
    by_layer: dict[str, list[Any]] = {}
    for key in sorted(stored.files, key=lambda k: int(k.rsplit("/", 1)[1])):
        by_layer.setdefault(key.rsplit("/", 1)[0], []).append(stored[key])
    return copy_into(model, by_layer, exclude)


def weights_by_layer(model: Any) -> dict[str, list[Any]]:
    return {layer.name: layer.get_weights() for layer in model.layers if layer.get_weights()}


def copy_into(
    model: Any, source: dict[str, list[Any]], exclude: tuple[str, ...] = ()
) -> CopyReport:
    """Set each layer of `model` named in `source` whose array shapes all match."""
    report = CopyReport()
    for layer in model.layers:
        current = layer.get_weights()
        if not current:
            continue
        arrays = source.get(layer.name)
        if arrays is None or layer.name in exclude:
            report.missing.append(layer.name)
        elif [a.shape for a in arrays] != [w.shape for w in current]:
            report.skipped.append(layer.name)
        else:
            layer.set_weights([a.astype(w.dtype) for a, w in zip(arrays, current, strict=True)])
            report.copied.append(layer.name)
    return report
