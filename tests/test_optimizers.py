"""`ScaledRateAdamW` and `bert_adamw` (backend-agnostic; also run on JAX)."""

import keras
import numpy as np
import pytest

from keras_transformer.optimizers import (
    ScaledRateAdamW,
    bert_adamw,
    transformer_adam,
)


def _model():
    # Functional: variable paths are "<layer>/<weight>" (as in the BERT
    # models), whatever the model's name.
    keras.utils.set_random_seed(1)
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, name="lower")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, name="upper")(hidden))


def _steps(model, optimizer, steps=3):
    """Weight changes after `steps` full-batch steps on fixed data."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype("float32")
    y = rng.normal(size=(16, 3)).astype("float32")
    before = {v.path: np.array(v) for v in model.trainable_variables}
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(x, y, batch_size=16, epochs=steps, verbose=0, shuffle=False)
    return {
        v.path: np.array(v) - before[v.path] for v in model.trainable_variables
    }


def test_each_variable_moves_by_its_factor_of_the_plain_update():
    # Adam's update is a function of the gradient history times the rate:
    # on the first step every variable sees the same gradients in both
    # runs, so a factor f makes that step exactly f times as large.
    options = dict(learning_rate=1e-2, weight_decay=0.0)
    plain = _steps(_model(), keras.optimizers.AdamW(**options), steps=1)
    factors = {"lower/kernel": 0.25, "lower/bias": 0.5}
    scaled = _steps(
        _model(), ScaledRateAdamW(rate_multipliers=factors, **options), steps=1
    )
    for path, change in plain.items():
        assert np.abs(change).max() > 1e-3  # every variable moved
        np.testing.assert_allclose(
            scaled[path], factors.get(path, 1.0) * change, rtol=1e-4, atol=1e-8
        )


def test_later_steps_keep_lower_layers_slower():
    options = dict(learning_rate=1e-2, weight_decay=0.0)
    plain = _steps(_model(), keras.optimizers.AdamW(**options))
    scaled = _steps(
        _model(),
        ScaledRateAdamW(rate_multipliers={"lower/kernel": 0.1}, **options),
    )
    ratio = (
        np.abs(scaled["lower/kernel"]).sum()
        / np.abs(plain["lower/kernel"]).sum()
    )
    assert 0.05 < ratio < 0.2


def test_multipliers_survive_a_keras_round_trip(tmp_path):
    model = _model()
    optimizer = bert_adamw(8, 1e-3, 10, rate_multipliers={"lower/kernel": 0.5})
    assert isinstance(optimizer, ScaledRateAdamW)
    _steps(model, optimizer, steps=1)
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(restored.optimizer, ScaledRateAdamW)
    assert restored.optimizer.rate_multipliers == {"lower/kernel": 0.5}
    # Without multipliers bert_adamw stays a plain AdamW.
    assert type(bert_adamw(8, 1e-3, 10)) is keras.optimizers.AdamW


@pytest.mark.parametrize("bad", [0, -1.0, True, "0.5", None])
def test_bad_multipliers_are_named(bad):
    with pytest.raises(ValueError, match=r"rate_multipliers\['lower/kernel'\]"):
        ScaledRateAdamW(rate_multipliers={"lower/kernel": bad})


def test_transformer_adam_old_d_model_keyword_warns_and_matches():
    options = dict(warmup_steps=10, clipnorm=1.0, name="adam")
    new = transformer_adam(hidden_dim=64, **options)
    with pytest.warns(DeprecationWarning, match="d_model"):
        old = transformer_adam(d_model=64, **options)
    assert old.get_config() == new.get_config()
    rate = new.get_config()["learning_rate"]["config"]
    assert rate == {"hidden_dim": 64, "warmup_steps": 10, "scale": 1.0}
    with pytest.warns(DeprecationWarning, match="d_model"):
        peaked = transformer_adam(d_model=64, peak_learning_rate=1e-3, name="a")
    assert peaked.get_config() == (
        transformer_adam(64, peak_learning_rate=1e-3, name="a").get_config()
    )
    with pytest.raises(ValueError, match="hidden_dim=None"):
        transformer_adam(warmup_steps=10)
    with pytest.raises(ValueError, match="not both"):
        transformer_adam(hidden_dim=64, d_model=64)
