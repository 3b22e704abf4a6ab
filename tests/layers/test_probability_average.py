import keras
import numpy as np
import pytest

from keras_transformer.layers import ProbabilityAverage


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_softmax_of_the_output_is_the_mean_probability():
    rng = np.random.default_rng(0)
    logits = [rng.normal(scale=4.0, size=(5, 6)).astype("float32")
              for _ in range(3)]  # fmt: skip
    out = np.asarray(ProbabilityAverage()(logits))
    expected = np.mean([_softmax(x) for x in logits], axis=0)
    np.testing.assert_allclose(np.exp(out), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(_softmax(out), expected, rtol=1e-5, atol=1e-7)
    assert out.dtype == np.float32
    # Member order does not matter; a shift of one member's logits neither.
    np.testing.assert_allclose(
        np.asarray(ProbabilityAverage()([logits[2], logits[0], logits[1] + 7])),
        out,
        rtol=1e-5,
        atol=1e-6,
    )


def test_extreme_logits_stay_finite():
    a = np.array([[1000.0, -1000.0]], "float32")
    b = np.array([[-1000.0, 1000.0]], "float32")
    out = np.asarray(ProbabilityAverage()([a, b]))
    np.testing.assert_allclose(np.exp(out), [[0.5, 0.5]], atol=1e-6)


def test_needs_a_list_of_two_and_round_trips():
    with pytest.raises(ValueError, match="two or more"):
        ProbabilityAverage()([np.zeros((1, 3), "float32")])
    layer = ProbabilityAverage(name="avg")
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(restored, ProbabilityAverage) and restored.name == "avg"
