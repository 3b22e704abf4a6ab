import json
import zipfile

import keras
import numpy as np
import pytest

from keras_transformer.optimizers import transformer_adam
from keras_transformer.schedules import TransformerSchedule, WarmupLinearDecay


def _paper(step, hidden_dim, warmup):
    # The paper's formula, where the model size is called d_model.
    return hidden_dim**-0.5 * min(step**-0.5, step * warmup**-1.5)


@pytest.mark.parametrize("step", [1, 100, 4000, 16000, 100000])
def test_transformer_schedule_values(step):
    schedule = TransformerSchedule(hidden_dim=512, warmup_steps=4000)
    np.testing.assert_allclose(
        float(schedule(step)), _paper(step, 512, 4000), rtol=1e-5
    )


def test_transformer_schedule_shape_and_safety():
    schedule = TransformerSchedule(hidden_dim=256, warmup_steps=400, scale=2.0)
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
    optimizer = transformer_adam(hidden_dim=128, warmup_steps=50)
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
        ({"hidden_dim": 0}, "hidden_dim=0"),
        ({"hidden_dim": 8, "warmup_steps": 0}, "warmup_steps=0"),
        ({"hidden_dim": 8, "warmup_steps": -5}, "warmup_steps=-5"),
        ({}, "hidden_dim=None"),
        ({"hidden_dim": 8, "d_model": 8}, "not both"),
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


def test_with_peak_reaches_the_peak():
    schedule = TransformerSchedule.with_peak(256, 100, 5e-4)
    np.testing.assert_allclose(float(schedule(100)), 5e-4, rtol=1e-5)
    assert schedule.hidden_dim == 256
    with pytest.raises(ValueError, match="peak_learning_rate=None"):
        TransformerSchedule.with_peak(256, 100)


def test_old_d_model_keyword_warns_and_gives_the_same_schedule():
    new = TransformerSchedule(hidden_dim=256, warmup_steps=400, scale=2.0)
    with pytest.warns(DeprecationWarning, match="d_model"):
        old = TransformerSchedule(d_model=256, warmup_steps=400, scale=2.0)
    assert old.get_config() == new.get_config()
    assert "d_model" not in new.get_config()
    assert float(old(123)) == float(new(123))
    with pytest.warns(DeprecationWarning, match="d_model"):
        peaked = TransformerSchedule.with_peak(
            d_model=256, warmup_steps=100, peak_learning_rate=5e-4
        )
    assert peaked.get_config() == (
        TransformerSchedule.with_peak(256, 100, 5e-4).get_config()
    )
    # The value is still checked, under its new name.
    with (
        pytest.warns(DeprecationWarning),
        pytest.raises(ValueError, match="hidden_dim=0"),
    ):
        TransformerSchedule(d_model=0)
    # Positional calls are unchanged.
    assert TransformerSchedule(256, 400, 2.0).get_config() == new.get_config()


def test_config_with_the_old_d_model_key_loads():
    config = TransformerSchedule(256, 400, 2.0).get_config()
    old_config = {"d_model": 256, "warmup_steps": 400, "scale": 2.0}
    with pytest.warns(DeprecationWarning, match="d_model"):
        revived = TransformerSchedule.from_config(old_config)
    assert revived.get_config() == config
    serialized = keras.saving.serialize_keras_object(revived)
    serialized["config"] = old_config
    with pytest.warns(DeprecationWarning, match="d_model"):
        revived = keras.saving.deserialize_keras_object(serialized)
    assert isinstance(revived, TransformerSchedule)
    assert revived.get_config() == config


def test_keras_file_with_the_old_d_model_key_loads(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(transformer_adam(128, warmup_steps=50), "mse")
    model.fit(np.ones((4, 3)), np.ones((4, 1)), epochs=2, verbose=0)
    path = tmp_path / "new.keras"
    model.save(path)
    old_path = tmp_path / "old.keras"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(old_path, "w") as out:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                rate = config["compile_config"]["optimizer"]["config"][
                    "learning_rate"
                ]["config"]
                rate["d_model"] = rate.pop("hidden_dim")
                data = json.dumps(config).encode()
            out.writestr(item, data)
    with pytest.warns(DeprecationWarning, match="d_model"):
        reloaded = keras.saving.load_model(old_path)
    assert reloaded.optimizer.get_config()["learning_rate"]["config"] == {
        "hidden_dim": 128,
        "warmup_steps": 50,
        "scale": 1.0,
    }
    np.testing.assert_allclose(
        float(reloaded.optimizer.learning_rate), _paper(2, 128, 50), rtol=1e-5
    )
