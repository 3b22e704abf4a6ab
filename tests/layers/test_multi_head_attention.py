import keras
import numpy as np
import pytest

from keras_transformer.layers import MultiHeadAttention
from tests.test_case import check_layer


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _seq(batch=2, length=6, dim=16, seed=0):
    return (
        np.random.RandomState(seed)
        .normal(size=(batch, length, dim))
        .astype("float32")
    )


def test_self_attention_shared_checks(tmp_path):
    check_layer(
        MultiHeadAttention,
        {"num_heads": 2, "dropout": 0.1},
        {"query": _seq()},
        (2, 6, 16),
        tmp_path,
        call_kwargs={"use_causal_mask": True},
    )


def test_cross_attention_shared_checks(tmp_path):
    check_layer(
        MultiHeadAttention,
        {"num_heads": 4, "key_dim": 8, "output_dim": 12},
        {"query": _seq(), "value": _seq(length=9, dim=10, seed=1)},
        (2, 6, 12),
        tmp_path,
    )


def test_causality():
    layer = MultiHeadAttention(num_heads=2)
    x = _seq()
    out = _np(layer(x, use_causal_mask=True))
    changed = x.copy()
    changed[:, 4:] += 5.0
    out2 = _np(layer(changed, use_causal_mask=True))
    np.testing.assert_allclose(out[:, :4], out2[:, :4], atol=1e-5)
    assert not np.allclose(out[:, 4:], out2[:, 4:])


def test_padding_invariance_and_scores():
    layer = MultiHeadAttention(num_heads=2)
    x = _seq()
    mask = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], bool)
    out, scores = layer(x, padding_mask=mask, return_attention_scores=True)
    changed = x.copy()
    changed[0, 4:] = 100.0
    out2 = layer(changed, padding_mask=mask)
    np.testing.assert_allclose(_np(out)[0, :4], _np(out2)[0, :4], atol=1e-5)
    scores = _np(scores)
    assert scores.shape == (2, 2, 6, 6)
    np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(scores[0, :, :, 4:], 0.0, atol=1e-7)


def test_implicit_mask_equals_explicit_padding_mask():
    embed = keras.layers.Embedding(20, 16, mask_zero=True)
    ids = np.array([[3, 4, 5, 0, 0]])
    x = embed(ids)
    layer = MultiHeadAttention(num_heads=2)
    implicit = _np(layer(x))
    explicit = _np(layer(x, padding_mask=ids != 0))
    unmasked = _np(layer(x, padding_mask=np.ones_like(ids, bool)))
    np.testing.assert_allclose(implicit, explicit, atol=1e-6)
    assert not np.allclose(implicit[0, :3], unmasked[0, :3])


def test_fully_masked_row_is_finite():
    layer = MultiHeadAttention(num_heads=2)
    out = layer(_seq(), padding_mask=np.zeros((2, 6), bool))
    assert np.all(np.isfinite(_np(out)))


def test_self_attention_cache_matches_full_pass():
    layer = MultiHeadAttention(num_heads=2)
    x = _seq(batch=2, length=7)
    full = _np(layer(x, use_causal_mask=True))
    cache = np.zeros((2, 2, 7, 2, 8), "float32")
    # Prefill the first three positions at once, then one step at a time.
    out, cache = layer(
        x[:, :3], use_causal_mask=True, cache=cache, cache_update_index=0
    )
    steps = [_np(out)]
    for i in range(3, 7):
        out, cache = layer(
            x[:, i : i + 1],
            use_causal_mask=True,
            cache=cache,
            cache_update_index=i,
        )
        steps.append(_np(out))
    np.testing.assert_allclose(np.concatenate(steps, 1), full, atol=1e-5)


def test_cross_attention_cache_matches_full_pass():
    layer = MultiHeadAttention(num_heads=2)
    q, memory = _seq(), _seq(length=9, seed=3)
    mask = np.ones((2, 9), bool)
    mask[1, 5:] = False
    full = _np(layer(q, memory, padding_mask=mask))
    cache = layer.compute_key_value(memory)
    assert tuple(cache.shape) == (2, 2, 9, 2, 8)
    cached = _np(layer(q, cache=cache, padding_mask=mask))
    np.testing.assert_allclose(cached, full, atol=1e-5)


def test_matches_reference_formula():
    layer = MultiHeadAttention(num_heads=2, use_bias=False)
    x = _seq(batch=1, length=4, dim=8)
    out = _np(layer(x))
    qkv = _np(layer.qkv_dense.kernel)  # [D, 3, N, H]
    wo = _np(layer.output_dense.kernel)  # [N, H, D]
    result = np.zeros((4, 8))
    for n in range(2):
        q, k, v = (x[0] @ qkv[:, j, n] for j in range(3))
        s = q @ k.T / np.sqrt(4)
        p = np.exp(s - s.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        result += (p @ v) @ wo[n]
    np.testing.assert_allclose(out[0], result, atol=1e-5)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="num_heads=3"):
        MultiHeadAttention(num_heads=3)(_seq())
    with pytest.raises(ValueError, match="dropout=-0.5"):
        MultiHeadAttention(num_heads=2, dropout=-0.5)
    with pytest.raises(ValueError, match="num_heads=0"):
        MultiHeadAttention(num_heads=0)
    layer = MultiHeadAttention(num_heads=2)
    layer(_seq())
    with pytest.raises(ValueError, match="cache_update_index=None"):
        layer(_seq(), cache=np.zeros((2, 2, 6, 2, 8), "float32"))
