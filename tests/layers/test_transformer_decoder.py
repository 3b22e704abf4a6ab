import keras
import numpy as np
import pytest

from keras_transformer.layers import (
    TransformerDecoder,
    empty_self_attention_cache,
)
from tests.test_case import check_layer


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _seq(batch=2, length=6, dim=16, seed=0):
    rng = np.random.RandomState(seed)
    return rng.normal(size=(batch, length, dim)).astype("float32")


def test_shared_checks_decoder_only(tmp_path):
    check_layer(
        TransformerDecoder,
        {"intermediate_dim": 32, "num_heads": 2, "normalize_first": True},
        {"decoder_sequence": _seq()},
        (2, 6, 16),
        tmp_path,
    )


def test_shared_checks_with_cross_attention(tmp_path):
    check_layer(
        TransformerDecoder,
        {"intermediate_dim": 32, "num_heads": 2, "dropout": 0.1},
        {
            "decoder_sequence": _seq(),
            "encoder_sequence": _seq(length=8, seed=1),
        },
        (2, 6, 16),
        tmp_path,
    )


@pytest.mark.parametrize("cross", [False, True])
def test_causality(cross):
    block = TransformerDecoder(32, 2)
    x, memory = _seq(), _seq(length=8, seed=1)
    args = (memory,) if cross else ()
    out = _np(block(x, *args))
    changed = x.copy()
    changed[:, 3:] += 4.0
    out2 = _np(block(changed, *args))
    np.testing.assert_allclose(out[:, :3], out2[:, :3], atol=1e-5)
    assert not np.allclose(out[:, 3:], out2[:, 3:])


def test_cross_attention_uses_encoder_padding_mask():
    block = TransformerDecoder(32, 2)
    x, memory = _seq(length=4), _seq(length=8, seed=1)
    enc_mask = np.ones((2, 8), bool)
    enc_mask[0, 5:] = False
    dec_mask = np.ones((2, 4), bool)
    out = _np(
        block(
            x,
            memory,
            decoder_padding_mask=dec_mask,
            encoder_padding_mask=enc_mask,
        )
    )
    changed = memory.copy()
    changed[0, 5:] = 50.0
    out2 = _np(
        block(
            x,
            changed,
            decoder_padding_mask=dec_mask,
            encoder_padding_mask=enc_mask,
        )
    )
    np.testing.assert_allclose(out, out2, atol=1e-5)


def test_implicit_masks_from_embeddings():
    embed = keras.layers.Embedding(30, 16, mask_zero=True)
    block = TransformerDecoder(32, 2)
    dec = embed(np.array([[4, 5, 6, 0]]))
    enc_a = embed(np.array([[7, 8, 0, 0, 0]]))
    enc_b = embed(np.array([[7, 8, 0, 0, 0, 0, 0]]))
    out_a = _np(block(dec, enc_a))
    out_b = _np(block(dec, enc_b))
    np.testing.assert_allclose(out_a[0, :3], out_b[0, :3], atol=1e-5)


@pytest.mark.parametrize("cross", [False, True])
def test_cached_decoding_equals_full_pass(cross):
    block = TransformerDecoder(32, 2, normalize_first=cross)
    x, memory = _seq(length=7), _seq(length=5, seed=2)
    full = _np(block(x, memory) if cross else block(x))
    cache = empty_self_attention_cache(2, 7, 2, 8)
    cross_cache = block.compute_cross_attention_cache(memory) if cross else None
    outs = []
    for i in range(7):
        out, cache = block(
            x[:, i : i + 1],
            self_attention_cache=cache,
            self_attention_cache_update_index=i,
            cross_attention_cache=cross_cache,
        )
        outs.append(_np(out))
    np.testing.assert_allclose(np.concatenate(outs, 1), full, atol=1e-5)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="uses tf.function"
)
def test_cached_decoding_in_xla_function():
    block = TransformerDecoder(32, 2)
    x = _seq(length=5)
    full = _np(block(x))

    import tensorflow as tf

    @tf.function(jit_compile=True)
    def step(token, cache, index):
        return block(
            token,
            self_attention_cache=cache,
            self_attention_cache_update_index=index,
        )

    cache = empty_self_attention_cache(2, 5, 2, 8)
    outs = []
    for i in range(5):
        out, cache = step(x[:, i : i + 1], cache, tf.constant(i))
        outs.append(_np(out))
    np.testing.assert_allclose(np.concatenate(outs, 1), full, atol=1e-5)
    assert step.experimental_get_tracing_count() == 1


def test_errors_name_the_problem():
    gpt_block = TransformerDecoder(32, 2)
    gpt_block(_seq())
    with pytest.raises(ValueError, match="without cross-attention"):
        gpt_block(_seq(), _seq())
    seq2seq = TransformerDecoder(32, 2)
    seq2seq(_seq(), _seq())
    with pytest.raises(ValueError, match="encoder_sequence=None"):
        seq2seq(_seq())
    with pytest.raises(ValueError, match="num_heads=5"):
        TransformerDecoder(32, 5)(_seq())
    with pytest.raises(ValueError, match="activation='nope'"):
        TransformerDecoder(32, 2, activation="nope")


def test_positional_call_in_functional_model():
    dec_in = keras.Input((5, 16))
    enc_in = keras.Input((7, 16))
    out = TransformerDecoder(32, 2)(dec_in, enc_in)
    assert tuple(out.shape) == (None, 5, 16)
    model = keras.Model([dec_in, enc_in], out)
    result = model([_seq(length=5), _seq(length=7, seed=1)])
    assert tuple(result.shape) == (2, 5, 16)
