"""Quantization-aware training (QAT) -> int8 TFLite, in its own process.

tensorflow-model-optimization only quantizes tf_keras (Keras 2) models, and importing it
switches the whole process to legacy Keras (tensorflow/model-optimization#1119). So this
module runs as `python -m trainer.qat`, rebuilds the *same* architecture with tf_keras
(trainer/model.py takes the Keras module as an argument), copies the float weights by layer
name, fine-tunes with fake-quantization for a few epochs, and converts to full-integer int8.
"""

from __future__ import annotations

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"  # before TensorFlow is imported, process-wide

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("trainer.qat")

WEIGHTS_FILE = "float_weights.npz"  # written by trainer/export.py (trainer/weights.py format)


def read_config(run_dir: Path) -> Any:
    from trainer.config import TrainConfig

    return TrainConfig.from_dict(json.loads((run_dir / "config.json").read_text()))


def build_qat_model(run_dir: Path, num_classes: int) -> Any:
    import tensorflow_model_optimization as tfmot
    import tf_keras

    from trainer.model import build_detector
    from trainer.weights import load_weights_by_name

    model_config = read_config(run_dir).model_config(num_classes)
    float_model = build_detector(model_config, keras=tf_keras, list_outputs=True)
    copied = load_weights_by_name(float_model, run_dir / WEIGHTS_FILE)
    log.info("float weights copied into the tf_keras model (%d layers)", len(copied.copied))
    return tfmot.quantization.keras.quantize_model(float_model)


def fine_tune(model: Any, run_dir: Path, epochs: int, learning_rate: float) -> None:
    import tensorflow as tf
    import tf_keras

    from trainer.batches import TrainBatches
    from trainer.data import load_training_data
    from trainer.losses import box_giou_loss, heatmap_focal_loss

    config = read_config(run_dir)
    data = load_training_data(config, run_dir)
    batches = TrainBatches(data.train, len(data.classes), config.batch_size, config.augment,
                           config.seed + 1, input_size=config.input_size, stride=config.stride)
    batches.strong = False  # fine-tune on plain samples, like the end of the float training

    def generate() -> Any:
        for _ in range(epochs):
            for i in range(len(batches)):
                images, targets = batches[i]
                yield images, (targets["heatmap"], targets["ltrb"])
            batches.on_epoch_end()

    width, height = batches.size
    out_w, out_h = width // config.stride, height // config.stride
    spec = (
        tf.TensorSpec((None, height, width, 3), tf.float32),
        (tf.TensorSpec((None, out_h, out_w, len(data.classes)), tf.float32),
         tf.TensorSpec((None, out_h, out_w, 5), tf.float32)),
    )
    dataset = tf.data.Dataset.from_generator(generate, output_signature=spec).prefetch(2)
    steps = len(batches)
    schedule = tf_keras.optimizers.schedules.CosineDecay(learning_rate, epochs * steps, 0.05)
    model.compile(optimizer=tf_keras.optimizers.Adam(schedule),
                  loss=[heatmap_focal_loss, box_giou_loss],
                  loss_weights=[1.0, config.box_loss_weight])
    model.fit(dataset, epochs=epochs, steps_per_epoch=steps, verbose=2)


def convert_qat(model: Any, height: int, width: int) -> bytes:
    """Fixed batch-1 input of the serving size (the model itself trained on smaller crops)."""
    import tensorflow as tf

    serve = tf.function(lambda image: model(image, training=False))
    concrete = serve.get_concrete_function(tf.TensorSpec((1, height, width, 3), tf.float32))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.float32
    flatbuffer: bytes = converter.convert()
    return flatbuffer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.qat", description=__doc__)
    parser.add_argument("--run", type=Path, required=True, help="training run folder")
    parser.add_argument("--out", type=Path, required=True, help="where to write the .tflite")
    parser.add_argument("--num-classes", type=int, required=True)
    parser.add_argument("--input-size", type=int, nargs=2, required=True, metavar=("W", "H"))
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    model = build_qat_model(args.run, args.num_classes)
    fine_tune(model, args.run, args.epochs, args.learning_rate)
    args.out.write_bytes(convert_qat(model, height=args.input_size[1], width=args.input_size[0]))
    log.info("QAT int8 model written to %s (%d bytes)", args.out, args.out.stat().st_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
