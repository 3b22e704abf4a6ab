"""Tests of the GPT application: model behaviour and cached generation."""

import keras
import numpy as np
import pytest
from keras_transformer.applications.gpt import (
    GPTDecoder,
    GPTGenerator,
    gpt_lm,
)
from keras_transformer.applications.presets import get_preset

from keras_transformer import generation

VOCAB = 61
CONFIG = dict(
    vocabulary_size=VOCAB,
    num_layers=2,
    hidden_dim=16,
    num_heads=2,
    intermediate_dim=32,
    max_sequence_length=24,
)
# Prompts of different lengths in one batch.
PROMPTS = [[2, 5, 7], [2, 9], [2, 4, 4, 4, 8, 11]]


def _model(**overrides):
    keras.utils.set_random_seed(7)
    return gpt_lm(**{**CONFIG, **overrides})


def _logits(model, token_ids):
    token_ids = np.asarray(token_ids, "int32")
    out = model(
        {"token_ids": token_ids, "padding_mask": token_ids != 0},
        training=False,
    )
    return keras.ops.convert_to_numpy(out)


def _greedy_by_recomputing(model, prompts, max_new_tokens, stop=None):
    """Greedy decoding that reruns the full model on the whole sequence."""
    results = []
    for prompt in prompts:
        sequence = list(prompt)
        new = []
        for _ in range(max_new_tokens):
            token = int(np.argmax(_logits(model, [sequence])[0, -1]))
            sequence.append(token)
            new.append(token)
            if token == stop:
                break
        results.append(new)
    return results


def test_shapes_dtype_and_inputs():
    model = _model()
    assert set(model.input) == {"token_ids", "padding_mask"}
    logits = _logits(model, [[2, 5, 6, 7, 0], [2, 3, 0, 0, 0]])
    assert logits.shape == (2, 5, VOCAB)
    assert logits.dtype == np.float32
    assert np.all(np.isfinite(logits))


def test_mixed_precision_logits_are_float32():
    model = _model(dtype="mixed_float16")
    out = model(
        {
            "token_ids": np.array([[2, 5, 6]]),
            "padding_mask": np.ones((1, 3), bool),
        }
    )
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    assert model.get_layer("decoder_block_0").compute_dtype == "float16"


def test_causality_future_tokens_do_not_change_past_logits():
    model = _model()
    a = _logits(model, [[2, 5, 6, 7, 8, 9]])
    b = _logits(model, [[2, 5, 6, 30, 40, 50]])
    np.testing.assert_allclose(a[:, :3], b[:, :3], atol=1e-5)
    assert not np.allclose(a[:, 3:], b[:, 3:], atol=1e-3)


def test_padding_after_the_text_leaves_real_logits_unchanged():
    model = _model()
    short = _logits(model, [[2, 5, 6]])
    padded = _logits(model, [[2, 5, 6, 0, 0]])
    np.testing.assert_allclose(short, padded[:, :3], atol=1e-5)


def test_output_projection_is_tied_to_token_embeddings():
    model = _model()
    embedding = model.get_layer("embeddings")
    d, v = CONFIG["hidden_dim"], VOCAB
    shapes = [tuple(w.shape) for w in model.weights]
    # The only [V, D] matrix is the token embedding; no [D, V] output kernel.
    assert shapes.count((v, d)) == 1 and (d, v) not in shapes
    # Zeroing the shared matrix zeroes the logits: they are h @ E^T.
    embedding.token_embeddings.assign(np.zeros((v, d), "float32"))
    np.testing.assert_array_equal(_logits(model, [[2, 5, 6]]), 0.0)


def test_token_and_position_tables_start_at_the_initializer_range():
    # GPT-2 draws both tables from narrow normals; a wide position table
    # would drown the token identities at the start of training.
    model = _model(hidden_dim=64, initializer_range=0.02)
    embedding = model.get_layer("embeddings")
    for variable in embedding.weights:
        std = float(np.std(keras.ops.convert_to_numpy(variable)))
        assert 0.015 < std < 0.025, (variable.path, std)


def test_parameter_count_matches_the_formula():
    model = _model()
    v, d, f, t = VOCAB, 16, 32, 24
    block = 3 * d * d + 3 * d + d * d + d + d * f + f + f * d + d + 4 * d
    expected = v * d + t * d + 2 * block + 2 * d
    assert model.count_params() == expected


def test_cached_greedy_equals_full_recompute_and_compiles_once():
    model = _model()
    decoder = GPTDecoder(model)
    expected = _greedy_by_recomputing(model, PROMPTS, 8)
    assert decoder.generate(PROMPTS, max_new_tokens=8) == expected
    assert decoder.trace_count == 1
    # Same shapes, other prompts: the compiled program is reused.
    others = [[2, 13, 1], [2, 40], [2, 6, 6, 6, 6, 12]]
    expected = _greedy_by_recomputing(model, others, 8)
    assert decoder.generate(others, max_new_tokens=8) == expected
    assert decoder.trace_count == 1


def test_eager_decode_with_step_fn_matches_compiled_generate():
    model = _model()
    decoder = GPTDecoder(model)
    prompt, token_ids, prompt_mask, lengths = decoder.prepare(PROMPTS, 5)
    cache = decoder.empty_cache(np.array(prompt), len(token_ids[0]))
    output = generation.decode(
        decoder.step_fn,
        np.array(token_ids),
        np.array(prompt_mask),
        cache,
        "greedy",
        start_index=min(lengths),
    )
    eager = decoder.completions(
        keras.ops.convert_to_numpy(output).tolist(), lengths, 5, None
    )
    assert eager == _greedy_by_recomputing(model, PROMPTS, 5)


def test_stop_tokens_end_rows_and_are_kept():
    model = _model()
    decoder = GPTDecoder(model)
    free = decoder.generate(PROMPTS, max_new_tokens=6)
    stop = free[0][2]
    stopped = decoder.generate(PROMPTS, 6, stop_token_ids=[stop])
    assert stopped == _greedy_by_recomputing(model, PROMPTS, 6, stop=stop)
    assert stopped[0] == free[0][: free[0].index(stop) + 1]


def test_seed_reproducibility_and_runtime_temperature():
    model = _model()
    decoder = GPTDecoder(model)
    sampler = generation.TopKSampler(k=20, temperature=1.0)
    first = decoder.generate(PROMPTS, 10, sampler, seed=42)
    assert decoder.generate(PROMPTS, 10, sampler, seed=42) == first
    assert decoder.generate(PROMPTS, 10, sampler, seed=43) != first
    hotter = generation.TopKSampler(k=20, temperature=3.0)
    decoder.generate(PROMPTS, 10, hotter, seed=42)
    # The temperature is a run-time input: still one compiled loop.
    assert decoder.trace_count == 1


def test_long_prompts_keep_their_last_tokens():
    decoder = GPTDecoder(_model())
    prompt, token_ids, _, lengths = decoder.prepare(
        [list(range(1, 40)), [2, 3]], max_new_tokens=4
    )
    assert lengths == [20, 2]
    assert prompt[0] == list(range(20, 40))
    assert len(token_ids[0]) == 24


def test_keras_file_round_trip(tmp_path):
    model = _model(dropout=0.1)
    tokens = [[2, 5, 6, 7]]
    path = str(tmp_path / "gpt.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(
        _logits(model, tokens), _logits(restored, tokens), atol=1e-6
    )
    decoder = GPTDecoder(restored)
    assert decoder.max_sequence_length == CONFIG["max_sequence_length"]
    assert len(decoder.blocks) == CONFIG["num_layers"]


def test_presets_build_and_errors_name_the_argument():
    config = get_preset("gpt", "tiny")
    assert sorted(config)[:2] == ["dropout", "hidden_dim"]
    assert {"small", "gpt2"} <= set(
        __import__(
            "keras_transformer.applications.presets", fromlist=["x"]
        ).GPT_PRESETS
    )
    with pytest.raises(ValueError, match="Received: num_heads=3"):
        gpt_lm(**{**CONFIG, "num_heads": 3})
    with pytest.raises(ValueError, match="Received: num_layers=0"):
        gpt_lm(**{**CONFIG, "num_layers": 0})
    decoder = GPTDecoder(_model())
    with pytest.raises(ValueError, match="max_new_tokens=24"):
        decoder.generate([[2]], max_new_tokens=24)
    with pytest.raises(ValueError, match="empty prompt"):
        decoder.generate([[2], []], max_new_tokens=2)
    with pytest.raises(ValueError, match="gpt_lm"):
        GPTDecoder(keras.Sequential([keras.layers.Dense(2)], name="other"))


def test_deprecated_gpt_generator_warns_and_is_a_gpt_decoder():
    model = _model()
    with pytest.warns(DeprecationWarning, match="GPTDecoder"):
        old = GPTGenerator(model)
    assert isinstance(old, GPTDecoder)
    new = GPTDecoder(model)
    assert old.generate(PROMPTS, max_new_tokens=4) == new.generate(
        PROMPTS, max_new_tokens=4
    )
    with (
        pytest.warns(DeprecationWarning),
        pytest.raises(ValueError, match="gpt_lm"),
    ):
        GPTGenerator(keras.Sequential([keras.layers.Dense(2)], name="other"))
