import keras
import numpy as np
import pytest

from keras_transformer.optimizers import transformer_adam
from keras_transformer.schedules import TransformerSchedule, WarmupLinearDecay


def _paper(step, d_model, warmup):
    return d_model**-0.5 * min(step**-0.5, step * warmup**-1.5)


@pytest.mark.parametrize("step", [1, 100, 4000, 16000, 100000])
def test_transformer_schedule_values(step):
    schedule = TransformerSchedule(d_model=512, warmup_steps=4000)
    np.testing.assert_allclose(
        float(schedule(step)), _paper(step, 512, 4000), rtol=1e-5
    )


def test_transformer_schedule_shape_and_safety():
    schedule = TransformerSchedule(d_model=256, warmup_steps=400, scale=2.0)
    assert np.isfinite(float(schedule(0))) and float(schedule(0)) > 0
    peak = float(schedule(400))
    np.testing.assert_allclose(peak, schedule.peak_learning_rate(), rtol=1e-5)
    np.testing.assert_allclose(peak, 2.0 * (256 * 400) ** -0.5, rtol=1e-5)
    # Linear warmup, then inverse square root decay.
    np.testing.assert_allclose(float(schedule(200)), peak / 2, rtol=1e-5)
    np.testing.assert_allclose(float(schedule(1600)), peak / 2, rtol=1e-5)


def test_transformer_schedule_serializes_and_drives_adam():
    schedule = TransformerSchedule(128, 50)
    revived = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(schedule)
    )
    assert revived.get_config() == schedule.get_config()
    optimizer = transformer_adam(d_model=128, warmup_steps=50)
    assert (optimizer.beta_1, optimizer.beta_2, optimizer.epsilon) == (
        0.9,
        0.98,
        1e-9,
    )
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer, "mse")
    model.fit(np.ones((4, 3)), np.ones((4, 1)), epochs=3, verbose=0)
    np.testing.assert_allclose(
        float(optimizer.learning_rate), _paper(3, 128, 50), rtol=1e-5
    )


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"d_model": 0}, "d_model=0"),
        ({"d_model": 8, "warmup_steps": 0}, "warmup_steps=0"),
        ({"d_model": 8, "warmup_steps": -5}, "warmup_steps=-5"),
    ],
)
def test_transformer_schedule_bad_args(kwargs, name):
    with pytest.raises(ValueError, match=name):
        TransformerSchedule(**kwargs)


def test_warmup_linear_decay():
    schedule = WarmupLinearDecay(1e-3, warmup_steps=10, total_steps=110)
    np.testing.assert_allclose(float(schedule(5)), 5e-4, rtol=1e-5)
    np.testing.assert_allclose(float(schedule(60)), 5e-4, rtol=1e-5)
    np.testing.assert_allclose(float(schedule(500)), 0.0, atol=1e-9)
    with pytest.raises(ValueError, match="total_steps=5"):
        WarmupLinearDecay(1e-3, warmup_steps=10, total_steps=5)
