"""The per-step callbacks of the fit, on a tiny Keras model: the weight average follows the
weights it averages, and the learning-rate schedule counts the steps it was given."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.tensorflow


def tiny_model():  # type: ignore[no-untyped-def]
    import keras

    inputs = keras.Input((4,))
    hidden = keras.layers.BatchNormalization()(keras.layers.Dense(8)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    return model


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype(np.float32)
    return x, x.sum(axis=1, keepdims=True)


def test_ema_at_momentum_zero_is_the_live_weights_after_every_step() -> None:
    from trainer.ema import ModelEMA

    model, ema = tiny_model(), ModelEMA(momentum=0.0)
    model.fit(*data(), batch_size=8, epochs=2, callbacks=[ema], verbose=0)
    assert float(ema.updates.numpy()) == 8  # 4 steps per epoch
    for weight, shadow in zip(model.weights, ema.shadow, strict=True):  # BN statistics too
        np.testing.assert_allclose(shadow.numpy(), weight.numpy(), rtol=1e-6)


def test_ema_lags_behind_the_weights_at_a_high_momentum() -> None:
    from trainer.ema import ModelEMA

    model = tiny_model()
    start = [w.numpy().copy() for w in model.weights]
    ema = ModelEMA(momentum=0.999)
    model.fit(*data(), batch_size=8, epochs=3, callbacks=[ema], verbose=0)
    kernel = 0  # the first Dense kernel
    moved = np.abs(model.weights[kernel].numpy() - start[kernel]).mean()
    averaged = np.abs(ema.shadow[kernel].numpy() - start[kernel]).mean()
    assert 0 < averaged < moved
    with ema.swapped_in() as swapped:
        np.testing.assert_allclose(swapped.weights[kernel].numpy(), ema.shadow[kernel].numpy())
    assert np.abs(model.weights[kernel].numpy() - start[kernel]).mean() == pytest.approx(moved)


def test_schedule_sets_each_step_from_its_own_count_and_resumes_from_the_optimizer() -> None:
    from trainer.schedule import CosineSchedule, cosine_with_warmup

    model = tiny_model()
    schedule = CosineSchedule(0.1, total_steps=8, warmup_steps=2,
                              minutes_elapsed=lambda: 0.0, budget_minutes=None)
    model.fit(*data(), batch_size=8, epochs=1, callbacks=[schedule], verbose=0)
    assert schedule.steps == 4 and schedule.progress() == 0.5
    # A resumed fit starts from the optimizer's step counter, not from zero.
    resumed = CosineSchedule(0.1, total_steps=8, warmup_steps=2,
                             minutes_elapsed=lambda: 0.0, budget_minutes=None)
    model.fit(*data(), batch_size=8, epochs=1, callbacks=[resumed], verbose=0)
    assert resumed.steps == 8
    last = float(model.optimizer.learning_rate.numpy())
    assert last == pytest.approx(cosine_with_warmup(7 / 8, resumed.warmup, 0.1), rel=1e-5)
