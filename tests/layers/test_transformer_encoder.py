import keras
import numpy as np
import pytest

from keras_transformer.layers import TransformerEncoder
from tests.test_case import check_layer


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _seq(batch=2, length=6, dim=16, seed=0):
    rng = np.random.RandomState(seed)
    return rng.normal(size=(batch, length, dim)).astype("float32")


@pytest.mark.parametrize("normalize_first", [False, True])
def test_shared_checks(tmp_path, normalize_first):
    check_layer(
        TransformerEncoder,
        {
            "intermediate_dim": 32,
            "num_heads": 2,
            "dropout": 0.1,
            "intermediate_dropout": 0.2,
            "activation": "gelu",
            "normalize_first": normalize_first,
        },
        {"inputs": _seq()},
        (2, 6, 16),
        tmp_path,
    )


def test_padding_invariance():
    block = TransformerEncoder(32, 2)
    x = _seq()
    mask = np.array([[1, 1, 1, 0, 0, 0], [1] * 6], bool)
    out = _np(block(x, padding_mask=mask))
    changed = x.copy()
    changed[0, 3:] = -7.0
    out2 = _np(block(changed, padding_mask=mask))
    np.testing.assert_allclose(out[0, :3], out2[0, :3], atol=1e-5)
    np.testing.assert_allclose(out[1], out2[1], atol=1e-5)


def test_implicit_mask_in_functional_model():
    ids = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(30, 16, mask_zero=True)(ids)
    block = TransformerEncoder(32, 2)
    model = keras.Model(ids, block(x))
    a = np.array([[5, 6, 7, 0, 0]], "int32")
    b = np.array([[5, 6, 7, 0, 0, 0, 0]], "int32")
    # Extra padding must not change the real tokens' outputs.
    np.testing.assert_allclose(
        _np(model(a))[0, :3], _np(model(b))[0, :3], atol=1e-5
    )


def test_attention_mask_and_scores():
    block = TransformerEncoder(32, 2)
    x = _seq(batch=1, length=4)
    attention_mask = np.tril(np.ones((1, 4, 4), bool))
    out, scores = block(
        x, attention_mask=attention_mask, return_attention_scores=True
    )
    assert _np(scores).shape == (1, 2, 4, 4)
    np.testing.assert_allclose(np.triu(_np(scores)[0, 0], 1), 0.0, atol=1e-7)
    changed = x.copy()
    changed[0, 3] += 3.0
    out2 = block(changed, attention_mask=attention_mask)
    np.testing.assert_allclose(_np(out)[0, :3], _np(out2)[0, :3], atol=1e-5)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="num_heads=3"):
        TransformerEncoder(32, 3)(_seq())
    with pytest.raises(ValueError, match="dropout=-0.1"):
        TransformerEncoder(32, 2, dropout=-0.1)
    with pytest.raises(ValueError, match="activation='swishy'"):
        TransformerEncoder(32, 2, activation="swishy")
    with pytest.raises(ValueError, match="intermediate_dim=0"):
        TransformerEncoder(0, 2)
    with pytest.raises(ValueError, match="layer_norm_epsilon=0"):
        TransformerEncoder(32, 2, layer_norm_epsilon=0)
    with pytest.raises(ValueError, match="intermediate_dropout=1.5"):
        TransformerEncoder(32, 2, intermediate_dropout=1.5)


def test_intermediate_dropout_is_the_only_random_part():
    x = _seq()
    # dropout=0: the feed-forward hidden dropout alone makes training
    # outputs random; at its default of 0, training equals inference.
    plain = TransformerEncoder(32, 2)
    np.testing.assert_allclose(
        _np(plain(x, training=True)), _np(plain(x, training=False)), atol=1e-6
    )
    noisy = TransformerEncoder(32, 2, intermediate_dropout=0.5)
    inference = _np(noisy(x, training=False))
    assert np.abs(_np(noisy(x, training=True)) - inference).max() > 1e-3
    np.testing.assert_allclose(_np(noisy(x)), inference, atol=1e-6)


def test_positional_padding_mask_in_functional_model():
    x_in = keras.Input((6, 16))
    mask_in = keras.Input((6,), dtype="bool")
    out = TransformerEncoder(32, 2)(x_in, mask_in)
    assert tuple(out.shape) == (None, 6, 16)
