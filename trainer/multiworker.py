"""Keras 3 `fit` under MultiWorkerMirroredStrategy (several machines: TF_CONFIG, Vertex AI).

Keras 3.15's TensorFlow trainer breaks with more than one worker (keras-team/keras#20585,
open; tensorflow/tensorflow#72388): it averages the first batch across workers only to learn
its shapes (`strategy.reduce` of eager per-replica values fails), and it averages scalar
logs with `axis=0`, which has no axis 0. Both are bookkeeping, not the training step: the
gradients are still all-reduced by the strategy. `enable` replaces the two pieces for the
current process: shapes come from this worker's own share of the batch, and scalars are
averaged over every replica. tests/integration/test_trainer_e2e.py trains with two worker
processes to keep this honest when Keras changes.
"""

from __future__ import annotations

import logging
import types
from typing import Any

import tensorflow as tf

log = logging.getLogger(__name__)


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    return bool(strategy.extended._in_multi_worker_mode())  # the test Keras itself uses


def enable(model: Any, strategy: tf.distribute.Strategy) -> None:
    """Patch `model` and Keras' log reduction for multi-worker training (see module doc)."""
    import keras.src.backend.tensorflow.trainer as keras_trainer

    model._maybe_symbolic_build = types.MethodType(_build_from_local_batch, model)
    if not getattr(keras_trainer.reduce_per_replica, "detectflow_patch", False):
        original = keras_trainer.reduce_per_replica

        def reduce_per_replica(values: Any, strat: Any, reduction: str) -> Any:
            if reduction in ("auto", "mean") and is_multi_worker(strat):
                return tf.nest.map_structure(lambda v: strat.reduce("MEAN", v, axis=None),
                                             values)
            return original(values, strat, reduction)

        reduce_per_replica.detectflow_patch = True  # type: ignore[attr-defined]
        keras_trainer.reduce_per_replica = reduce_per_replica
    log.info("multi-worker training: Keras fit patched (keras-team/keras#20585)",
             extra={"replicas": strategy.num_replicas_in_sync})


def _build_from_local_batch(self: Any, iterator: Any = None, data_batch: Any = None) -> None:
    if iterator is not None:
        local = self.distribute_strategy.experimental_local_results
        for _, _, batches in iterator:
            data_batch = tf.nest.map_structure(
                lambda v: local(v)[0] if isinstance(v, tf.distribute.DistributedValues) else v,
                next(batches))
            break
    with self.distribute_strategy.scope():
        self._symbolic_build(data_batch=data_batch)

