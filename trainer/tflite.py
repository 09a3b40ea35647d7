"""Keras model -> TFLite flatbuffers (float32, float16, post-training full-integer int8)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import tensorflow as tf

log = logging.getLogger(__name__)

RepresentativeData = Callable[[], Iterator[list[npt.NDArray[np.float32]]]]


def export_saved_model(model: Any, height: int, width: int, directory: Path) -> Path:
    """A batch-1, fixed-size SavedModel of the Keras model (weights frozen on conversion).

    Converting a `tf.function` over Keras 3 variables directly leaves READ_VARIABLE ops with
    no values in the flatbuffer; the SavedModel route freezes them.
    """
    spec = tf.TensorSpec((1, height, width, 3), tf.float32, name="image")
    model.export(str(directory), format="tf_saved_model", input_signature=[spec], verbose=False)
    return directory


def convert(
    saved_model_dir: Path,
    mode: str,
    representative_data: RepresentativeData | None = None,
) -> bytes:
    """mode: float32 | float16 | int8 (full integer, uint8 input, float32 outputs)."""
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
    if mode == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "int8":
        if representative_data is None:
            raise ValueError("int8 conversion needs representative data")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_data
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.float32
    elif mode != "float32":
        raise ValueError(f"unknown TFLite mode {mode!r}")
    flatbuffer: bytes = converter.convert()
    return flatbuffer


def output_positions(
    flatbuffer: bytes, sample: npt.NDArray[np.float32], reference: dict[str, npt.NDArray[Any]]
) -> dict[str, int]:
    """Which interpreter output is which: matched by comparing with the Keras outputs.

    Output order in a converted model is not a documented contract; shapes alone cannot tell
    a 4-class heatmap from the 4-channel ltrb map. Values can.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    tensor: npt.NDArray[Any] = sample[None].astype(np.float32)
    if detail["dtype"] != np.float32:
        scale, zero = detail["quantization"]
        tensor = np.clip(np.round(tensor / scale + zero), 0, 255).astype(detail["dtype"])
    interpreter.set_tensor(detail["index"], tensor)
    interpreter.invoke()
    outputs = [interpreter.get_tensor(d["index"])[0].astype(np.float32)
               for d in interpreter.get_output_details()]
    positions: dict[str, int] = {}
    for name, expected in reference.items():
        errors = [
            float(np.abs(out - expected).mean()) if out.shape == expected.shape else np.inf
            for out in outputs
        ]
        positions[name] = int(np.argmin(errors))
    if len(set(positions.values())) != len(positions):
        raise RuntimeError(f"could not tell the model outputs apart: {positions}")
    return positions
