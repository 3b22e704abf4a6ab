"""Tests of keras_transformer.generation.decode with fake step functions."""

import itertools

import keras
import numpy as np
import pytest
from keras import ops

from keras_transformer import generation
from tests.generation.helpers import buffer as _buffer
from tests.generation.helpers import jit
from tests.generation.helpers import to_numpy as _np

BACKEND = keras.backend.backend()


def _successor_step(vocab):
    """Fake model that always prefers token (previous + 1) % vocab."""

    def step_fn(token_ids, index, cache):
        logits = ops.one_hot((token_ids + 1) % vocab, vocab) * 5.0
        return logits, cache

    return step_fn


def _table_step(log_probs):
    """Fake first-order model: logits = log_probs[previous token]."""
    table = ops.convert_to_tensor(np.asarray(log_probs, "float32"))

    def step_fn(token_ids, index, cache):
        return ops.take(table, token_ids, axis=0), cache

    return step_fn


def _history_logits(history, index, vocab):
    """Logits depending on every token up to `index` (numpy twin below)."""
    length = history.shape[-1]
    positions = ops.arange(length, dtype="int32")
    weights = ops.cast(positions + 1, "float32")
    seen = ops.where(
        positions[None, :] <= index, ops.cast(history, "float32"), 0.0
    )
    total = ops.sum(seen * weights, axis=1)  # [B]
    vocab_ids = ops.cast(ops.arange(vocab), "float32")
    return 3.0 * ops.sin(
        0.37 * total[:, None]
        + 1.1 * vocab_ids[None, :]
        + 0.5 * ops.cast(index, "float32")
    )


def _history_logits_np(history, index, vocab):
    weights = np.arange(1, len(history) + 1)
    total = float(
        np.sum(np.asarray(history[: index + 1]) * weights[: index + 1])
    )
    return 3.0 * np.sin(0.37 * total + 1.1 * np.arange(vocab) + 0.5 * index)


def _history_step(vocab):
    """Fake cached model: the cache holds every token fed so far [B, L]."""

    def step_fn(token_ids, index, cache):
        history = cache["history"]
        length = history.shape[-1]
        here = ops.arange(length, dtype="int32")[None, :] == index
        history = ops.where(here, token_ids[:, None], history)
        return _history_logits(history, index, vocab), {"history": history}

    return step_fn


def _log_softmax_np(logits):
    logits = logits - logits.max()
    return logits - np.log(np.exp(logits).sum())


# Trap for greedy search. Tokens: 0 pad, 1 start, 2 A, 3 B, 4 C, 5 D, 6 E,
# 7 stop. Greedy takes A (0.6) then E (0.4): 0.24. Beam search finds B (0.4)
# then C (0.9): 0.36.
_TRAP_PROBS = {
    1: {2: 0.6, 3: 0.4},
    2: {4: 0.3, 5: 0.3, 6: 0.4},
    3: {4: 0.9, 5: 0.1},
    4: {7: 1.0},
    5: {7: 1.0},
    6: {7: 1.0},
}


def _trap_log_probs(vocab=8):
    table = np.full((vocab, vocab), 1e-9)
    for prev, row in _TRAP_PROBS.items():
        for token, prob in row.items():
            table[prev, token] = prob
    for prev in (0, 7):
        table[prev] = 1.0 / vocab
    table /= table.sum(axis=1, keepdims=True)
    return np.log(table)


def test_greedy_known_answer_with_ragged_prompts():
    token_ids, prompt_mask = _buffer([[3], [5, 9, 2]], 6)
    out = generation.decode(
        _successor_step(10),
        token_ids,
        prompt_mask,
        None,
        "greedy",
        start_index=1,
    )
    assert out.dtype == "int32"
    np.testing.assert_array_equal(
        _np(out), [[3, 4, 5, 6, 7, 8], [5, 9, 2, 3, 4, 5]]
    )


def test_default_prompt_mask_and_empty_cache():
    token_ids = np.array([[4, 0, 0, 0]], "int32")
    out = generation.decode(
        _successor_step(10), token_ids, None, {}, "greedy", start_index=1
    )
    np.testing.assert_array_equal(_np(out), [[4, 5, 6, 7]])


@pytest.mark.parametrize(
    "sampler",
    ["random", generation.TopKSampler(k=4), generation.BeamSampler(3)],
    ids=["random", "top_k", "beam"],
)
def test_prompt_tokens_preserved(sampler):
    rng = np.random.default_rng(0)
    table = rng.normal(size=(12, 12)).astype("float32")
    prompts = [[1, 2], [3, 4, 5, 6, 7], [8, 9, 10]]
    token_ids, prompt_mask = _buffer(prompts, 9, fill=11)
    out = _np(
        generation.decode(
            _table_step(table),
            token_ids,
            prompt_mask,
            {},
            sampler,
            start_index=2,
            seed=4,
        )
    )
    for row, prompt in enumerate(prompts):
        assert out[row, : len(prompt)].tolist() == prompt
    assert out.shape == (3, 9)


def test_stop_tokens_and_padding():
    # Row 1 has the stop token inside its prompt: that does not stop it.
    token_ids, prompt_mask = _buffer([[3], [6, 1]], 8)
    out = generation.decode(
        _successor_step(10),
        token_ids,
        prompt_mask,
        None,
        generation.GreedySampler(),
        start_index=1,
        stop_token_ids=[6],
        pad_token_id=-1,
    )
    np.testing.assert_array_equal(
        _np(out),
        [[3, 4, 5, 6, -1, -1, -1, -1], [6, 1, 2, 3, 4, 5, 6, -1]],
    )


@pytest.mark.skipif(BACKEND != "tensorflow", reason="counts eager calls")
def test_loop_exits_early_when_all_rows_stopped():
    calls = []
    step = _successor_step(10)

    def counting_step(token_ids, index, cache):
        calls.append(int(index))
        return step(token_ids, index, cache)

    token_ids, prompt_mask = _buffer([[1], [2]], 12)
    out = generation.decode(
        counting_step,
        token_ids,
        prompt_mask,
        None,
        "greedy",
        start_index=1,
        stop_token_ids=[3, 4],
        pad_token_id=0,
    )
    assert calls == [0, 1]
    np.testing.assert_array_equal(_np(out)[:, :4], [[1, 2, 3, 0], [2, 3, 0, 0]])
    assert (_np(out)[:, 4:] == 0).all()


def test_cache_is_threaded_through_the_loop():
    vocab, length = 7, 6
    token_ids, prompt_mask = _buffer([[2], [5, 1, 3]], length)
    cache = {"history": ops.zeros((2, length), "int32")}
    out = _np(
        generation.decode(
            _history_step(vocab),
            token_ids,
            prompt_mask,
            cache,
            "greedy",
            start_index=1,
        )
    )
    for row, prompt in enumerate([[2], [5, 1, 3]]):
        expected = list(prompt)
        for index in range(len(prompt), length):
            logits = _history_logits_np(expected, index - 1, vocab)
            expected.append(int(np.argmax(logits)))
        assert out[row].tolist() == expected


def test_seeds_make_sampling_reproducible():
    table = np.zeros((50, 50), "float32")  # uniform next-token logits
    token_ids, prompt_mask = _buffer([[1]] * 4, 16)

    def run(seed):
        return _np(
            generation.decode(
                _table_step(table),
                token_ids,
                prompt_mask,
                None,
                generation.RandomSampler(),
                start_index=1,
                seed=seed,
            )
        )

    first = run(11)
    np.testing.assert_array_equal(first, run(11))
    assert (first[:, 1:] != run(12)[:, 1:]).mean() > 0.5
    # The step index is folded into the seed: tokens vary along a row and
    # across rows.
    assert len(set(first[0, 1:].tolist())) > 5
    assert (first[0] != first[1]).any()


def test_beam_search_escapes_greedy_trap():
    log_probs = _trap_log_probs()
    step = _table_step(log_probs)
    token_ids, prompt_mask = _buffer([[1], [1, 2]], 5)
    kwargs = dict(start_index=1, stop_token_ids=[7], return_scores=True)
    greedy, greedy_scores = generation.decode(
        step, token_ids, prompt_mask, None, "greedy", **kwargs
    )
    beam, beam_scores = generation.decode(
        step, token_ids, prompt_mask, None, generation.BeamSampler(2), **kwargs
    )
    np.testing.assert_array_equal(
        _np(greedy), [[1, 2, 6, 7, 0], [1, 2, 6, 7, 0]]
    )
    np.testing.assert_array_equal(_np(beam), [[1, 3, 4, 7, 0], [1, 2, 6, 7, 0]])
    expected_greedy = [np.log(0.6 * 0.4), np.log(0.4)]
    expected_beam = [np.log(0.4 * 0.9), np.log(0.4)]
    np.testing.assert_allclose(_np(greedy_scores), expected_greedy, atol=1e-4)
    np.testing.assert_allclose(_np(beam_scores), expected_beam, atol=1e-4)
    assert (_np(beam_scores) >= _np(greedy_scores) - 1e-6).all()


def test_beam_one_equals_greedy():
    rng = np.random.default_rng(3)
    table = rng.normal(size=(9, 9)).astype("float32") * 3
    token_ids, prompt_mask = _buffer([[1], [2, 3, 4], [5, 6]], 10)
    kwargs = dict(start_index=1, stop_token_ids=[0, 8], pad_token_id=-1)
    greedy = generation.decode(
        _table_step(table), token_ids, prompt_mask, None, "greedy", **kwargs
    )
    beam = generation.decode(
        _table_step(table),
        token_ids,
        prompt_mask,
        None,
        generation.BeamSampler(num_beams=1),
        **kwargs,
    )
    np.testing.assert_array_equal(_np(beam), _np(greedy))


def test_exhaustive_beam_reorders_cache_and_matches_brute_force():
    # With V=3 and 3 generated tokens, 9 beams keep every prefix, so the
    # final beams are exactly the 9 best of the 27 sequences. The logits
    # depend on the whole history held in the cache, so a wrong cache
    # reordering changes the answer.
    vocab, length, num_beams = 3, 4, 9
    prompts = [[0], [2]]
    token_ids, prompt_mask = _buffer(prompts, length)
    cache = {"history": ops.zeros((2, length), "int32")}
    beams, scores = generation.decode(
        _history_step(vocab),
        token_ids,
        prompt_mask,
        cache,
        generation.BeamSampler(num_beams, return_all_beams=True),
        start_index=1,
    )
    beams, scores = _np(beams), _np(scores)
    assert beams.shape == (2, num_beams, length)
    assert scores.shape == (2, num_beams)
    for row, prompt in enumerate(prompts):
        results = []
        for tail in itertools.product(range(vocab), repeat=length - 1):
            sequence = prompt + list(tail)
            total = 0.0
            for index in range(1, length):
                logits = _history_logits_np(sequence, index - 1, vocab)
                total += _log_softmax_np(logits)[sequence[index]]
            results.append((total, sequence))
        results.sort(key=lambda item: -item[0])
        best = results[:num_beams]
        assert best[0][0] - best[1][0] > 1e-3  # no near tie at the top
        np.testing.assert_allclose(scores[row], [s for s, _ in best], atol=1e-4)
        assert beams[row, 0].tolist() == best[0][1]
        assert (np.diff(scores[row]) <= 1e-6).all()  # best first


def test_length_penalty_prefers_longer_outputs():
    # 0 pad, 1 start, 2 A, 3 stop: [1, stop] has p=0.55, [1, A, stop] 0.45.
    table = np.full((4, 4), 1e-9)
    table[1, 2], table[1, 3] = 0.45, 0.55
    table[2, 3] = 1.0
    table[0] = table[3] = 0.25
    log_probs = np.log(table / table.sum(1, keepdims=True))
    token_ids, prompt_mask = _buffer([[1]], 4)

    def run(alpha):
        sampler = generation.BeamSampler(2, length_penalty=alpha)
        return _np(
            generation.decode(
                _table_step(log_probs),
                token_ids,
                prompt_mask,
                None,
                sampler,
                start_index=1,
                stop_token_ids=[3],
            )
        )

    np.testing.assert_array_equal(run(0.0), [[1, 3, 0, 0]])
    np.testing.assert_array_equal(run(2.0), [[1, 2, 3, 0]])


@pytest.mark.parametrize(
    "sampler",
    [
        generation.GreedySampler(),
        generation.TopKSampler(k=3, temperature=0.8),
        generation.TopPSampler(p=0.8),
        generation.BeamSampler(num_beams=3, length_penalty=0.6),
    ],
    ids=["greedy", "top_k", "top_p", "beam"],
)
def test_compiled_decode_equals_eager(sampler):
    vocab, length = 9, 8
    token_ids, prompt_mask = _buffer([[1], [2, 3, 4], [5, 6]], length)
    step = _history_step(vocab)

    def run(token_ids, prompt_mask, history, seed):
        return generation.decode(
            step,
            token_ids,
            prompt_mask,
            {"history": history},
            sampler,
            start_index=1,
            stop_token_ids=[0],
            pad_token_id=-1,
            seed=seed,
            return_scores=True,
        )

    args = (
        ops.convert_to_tensor(token_ids),
        ops.convert_to_tensor(prompt_mask),
        ops.zeros((3, length), "int32"),
        generation.stateless_random.make_seed(21),
    )
    eager_ids, eager_scores = run(*args)
    jit_ids, jit_scores = jit(run)(*args)
    np.testing.assert_array_equal(_np(jit_ids), _np(eager_ids))
    np.testing.assert_allclose(_np(jit_scores), _np(eager_scores), atol=1e-4)


def test_compile_decode_does_not_retrace():
    if BACKEND not in ("tensorflow", "jax"):
        pytest.skip("no compiler for this backend")
    traces = []
    step = _successor_step(10)

    def counting_step(token_ids, index, cache):
        traces.append(1)  # runs only while tracing
        logits, cache = step(token_ids, index, cache)
        return logits + cache["bias"], cache

    decode_fn = generation.compile_decode(
        counting_step, generation.TopKSampler(k=3), stop_token_ids=[9]
    )
    token_ids, prompt_mask = _buffer([[1], [2, 3]], 7)
    cache = {"bias": ops.zeros((2, 10))}
    first = decode_fn(
        token_ids, prompt_mask, cache, start_index=1, seed=1, temperature=0.1
    )
    traced = len(traces)
    assert traced >= 1
    second = decode_fn(
        token_ids, prompt_mask, cache, start_index=2, seed=2, temperature=2.0
    )
    assert len(traces) == traced
    np.testing.assert_array_equal(
        _np(first), [[1, 2, 3, 4, 5, 6, 7], [2, 3, 4, 5, 6, 7, 8]]
    )
    eager = generation.decode(
        step,
        token_ids,
        prompt_mask,
        None,
        generation.TopKSampler(k=3, temperature=2.0),
        start_index=2,
        stop_token_ids=[9],
        seed=2,
    )
    np.testing.assert_array_equal(_np(second), _np(eager))
    with pytest.raises(ValueError, match="Received: knobs="):
        decode_fn(token_ids, prompt_mask, cache, start_index=1, p=0.5)


def test_compile_decode_reads_current_variable_values():
    if BACKEND not in ("tensorflow", "jax"):
        pytest.skip("no compiler for this backend")
    vocab = 6
    embedding = keras.layers.Embedding(vocab, vocab)
    embedding.build((None,))

    def step_fn(token_ids, index, cache):
        return embedding(token_ids), cache

    decode_fn = generation.compile_decode(
        step_fn, "greedy", variables=embedding.variables
    )
    token_ids, prompt_mask = _buffer([[0], [3]], 5)
    for shift in (1, 2):
        table = np.eye(vocab, dtype="float32")[(np.arange(vocab) + shift) % 6]
        embedding.embeddings.assign(table)
        out = decode_fn(token_ids, prompt_mask, None, start_index=1)
        expected = [
            [(start + shift * i) % vocab for i in range(5)] for start in (0, 3)
        ]
        np.testing.assert_array_equal(_np(out), expected)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TF input signatures")
def test_dynamic_batch_in_tf_function():
    import tensorflow as tf

    length = 6
    step = _successor_step(10)
    beam = generation.BeamSampler(2)

    @tf.function(
        jit_compile=True,
        input_signature=[
            tf.TensorSpec([None, length], tf.int32),
            tf.TensorSpec([None, length], tf.bool),
            tf.TensorSpec([], tf.int32),
        ],
    )
    def serve(token_ids, prompt_mask, k):
        top_k = generation.decode(
            step,
            token_ids,
            prompt_mask,
            None,
            generation.TopKSampler(k=k),
            start_index=1,
            seed=3,
        )
        beams = generation.decode(
            step, token_ids, prompt_mask, None, beam, start_index=1
        )
        return top_k, beams

    token_ids, prompt_mask = _buffer([[1], [4, 5], [7]], length)
    top_k, beams = serve(token_ids, prompt_mask, tf.constant(1))
    expected = [[1, 2, 3, 4, 5, 6], [4, 5, 6, 7, 8, 9], [7, 8, 9, 0, 1, 2]]
    np.testing.assert_array_equal(top_k.numpy(), expected)
    np.testing.assert_array_equal(beams.numpy(), expected)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(start_index=0), "Received: start_index=0"),
        (dict(start_index=5), "Received: start_index=5"),
        (dict(start_index=1.0), "Received: start_index=1.0"),
        (
            dict(start_index=1, stop_token_ids=[]),
            r"Received: stop_token_ids=\[\]",
        ),
        (
            dict(start_index=1, stop_token_ids=["a"]),
            "Received: stop_token_ids=",
        ),
        (
            dict(start_index=1, sampler="nucleus"),
            "Received: identifier=nucleus",
        ),
        (dict(start_index=1, seed="x"), "Received: seed=x"),
    ],
)
def test_invalid_decode_arguments(kwargs, message):
    token_ids, prompt_mask = _buffer([[1]], 4)
    kwargs = dict(kwargs)
    sampler = kwargs.pop("sampler", "greedy")
    with pytest.raises(ValueError, match=message):
        generation.decode(
            _successor_step(10),
            token_ids,
            prompt_mask,
            None,
            sampler,
            **kwargs,
        )


def test_invalid_token_ids_rank():
    with pytest.raises(ValueError, match="token_ids.shape"):
        generation.decode(
            _successor_step(10),
            np.zeros((4,), "int32"),
            None,
            None,
            "greedy",
            start_index=1,
        )
