"""Tests of the repetition controls (no_repeat_ngram_size,
repetition_penalty) of keras_transformer.generation, on fake step functions.
"""

import itertools

import keras
import numpy as np
import pytest
from keras import ops

from keras_transformer import generation
from keras_transformer.generation import repetition
from tests.generation.helpers import buffer as _buffer
from tests.generation.helpers import jit
from tests.generation.helpers import to_numpy as _np

BACKEND = keras.backend.backend()


def _table_step(logits_table):
    """Fake first-order model: logits = table[previous token]."""
    table = ops.convert_to_tensor(np.asarray(logits_table, "float32"))

    def step_fn(token_ids, index, cache):
        return ops.take(table, token_ids, axis=0), cache

    return step_fn


def _loop_table(vocab=6):
    """A model that loops "1 2 1 2 ...": 1 -> 2 -> 1 is by far the best,
    then the other tokens in decreasing order of preference (all logits
    but the pad's positive)."""
    table = np.tile(3.0 - np.arange(vocab, dtype="float32") * 0.5, (vocab, 1))
    table[:, 0] = -10.0  # 0 is the pad/start token here
    table[1, 2] = table[2, 1] = 5.0
    for prev in range(3, vocab):
        table[prev, 1] = 5.0
    return table


def _controls_np(logits, history, ngram_size, penalty):
    """Numpy twin of `apply_repetition_controls` for one row."""
    logits = np.array(logits, "float64")
    history = [int(t) for t in history]
    for token in set(history):
        value = logits[token]
        logits[token] = value / penalty if value > 0 else value * penalty
    n = ngram_size
    if n >= 1 and len(history) >= n:
        prefix = tuple(history[len(history) - n + 1 :])
        banned = {
            history[p]
            for p in range(n - 1, len(history))
            if tuple(history[p - n + 1 : p]) == prefix
        }
        if len(banned) < len(logits):
            logits[sorted(banned)] = -np.inf
    return logits


def _log_softmax_np(x):
    x = np.asarray(x, "float64")
    finite = np.isfinite(x)
    top = x[finite].max()
    out = np.full_like(x, -np.inf)
    out[finite] = x[finite] - top - np.log(np.exp(x[finite] - top).sum())
    return out


def _repeated_bigrams(row):
    bigrams = list(zip(row[:-1], row[1:]))
    return len(bigrams) - len(set(bigrams))


# ----------------------------------------------------------------------
# The pure functions, by hand.
# ----------------------------------------------------------------------
def test_bigram_ban_by_hand():
    # Row 0, history 5 1 2 1 3 1: the token after "1" may not be 2 or 3.
    # Row 1, history 4 4 4 (then junk past the index): 4 is banned.
    # Row 2, history 2: a single token makes no bigram.
    history = [[5, 1, 2, 1, 3, 1, 7], [4, 4, 4, 1, 1, 1, 1], [2, 2, 0, 0, 0]]
    banned = [
        _np(repetition.repeated_ngram_tokens([row], index, 2, 8))[0]
        for row, index in zip(history, (6, 3, 1), strict=True)
    ]
    assert np.flatnonzero(banned[0]).tolist() == [2, 3]
    assert np.flatnonzero(banned[1]).tolist() == [4]
    assert np.flatnonzero(banned[2]).tolist() == []


def test_trigram_ban_by_hand_in_one_batch():
    # Index 5 for both rows. Row 0 ends in "1 2", seen before "3" -> ban 3.
    # Row 1 ends in "2 1": "2 1" was followed by "2" at position 2 -> 2.
    history = np.array([[1, 2, 3, 1, 2, 9], [2, 1, 2, 1, 0, 9]], "int32")
    history[1] = [1, 2, 1, 2, 1, 9]
    banned = _np(repetition.repeated_ngram_tokens(history, 5, 3, 10))
    assert np.flatnonzero(banned[0]).tolist() == [3]
    assert np.flatnonzero(banned[1]).tolist() == [2]
    # Logits: banned tokens at -inf, the rest untouched.
    logits = np.arange(20, dtype="float32").reshape(2, 10)
    out = _np(repetition.block_repeated_ngrams(logits, history, 5, 3))
    expected = logits.copy()
    expected[0, 3] = expected[1, 2] = -np.inf
    np.testing.assert_array_equal(out, expected)


def test_ngram_size_one_bans_every_seen_token_and_zero_nothing():
    history = [[3, 1, 3, 6, 2]]
    one = _np(repetition.repeated_ngram_tokens(history, 4, 1, 8))[0]
    assert np.flatnonzero(one).tolist() == [1, 3, 6]  # not 2 (index 4)
    zero = _np(repetition.repeated_ngram_tokens(history, 4, 0, 8))[0]
    assert not zero.any()
    # A history shorter than n bans nothing.
    four = _np(repetition.repeated_ngram_tokens(history, 3, 4, 8))[0]
    assert not four.any()


def test_every_token_banned_keeps_the_logits():
    logits = np.array([[1.0, 2.0, 3.0]], "float32")
    out = repetition.block_repeated_ngrams(logits, [[0, 1, 2, 0]], 3, 1)
    np.testing.assert_array_equal(_np(out), logits)


def test_out_of_range_ids_are_not_history():
    # A negative pad id and an id >= V do not crash nor count.
    seen = repetition.seen_tokens([[-1, 2, 9, -1]], 4, vocab_size=4)
    assert _np(seen).tolist() == [[False, False, True, False]]


def test_repetition_penalty_by_hand():
    logits = np.array([[2.0, -1.5, 3.0, -4.0, 0.5]], "float32")
    history = [[0, 1, 1, 4, 2]]  # index 4: tokens 0, 1 and 4 seen
    out = _np(repetition.penalize_repetitions(logits, history, 4, 2.5))
    np.testing.assert_allclose(
        out, [[2.0 / 2.5, -1.5 * 2.5, 3.0, -4.0, 0.5 / 2.5]], rtol=1e-6
    )
    # A penalty below 1 favours the repeats instead.
    out = _np(repetition.penalize_repetitions(logits, history, 4, 0.5))
    np.testing.assert_allclose(out, [[4.0, -0.75, 3.0, -4.0, 1.0]], rtol=1e-6)
    same = repetition.penalize_repetitions(logits, history, 4, 1.0)
    np.testing.assert_array_equal(_np(same), logits)


def test_controls_match_numpy_twin_on_random_histories():
    rng = np.random.default_rng(7)
    vocab, length = 5, 12
    for trial in range(8):
        history = rng.integers(0, vocab, size=(3, length)).astype("int32")
        logits = rng.normal(size=(3, vocab)).astype("float32") * 3
        index = int(rng.integers(1, length + 1))
        n = int(rng.integers(0, 5))
        penalty = float(rng.choice([1.0, 1.3, 0.7]))
        out = _np(
            repetition.apply_repetition_controls(
                logits,
                history,
                ops.convert_to_tensor(index, "int32"),
                no_repeat_ngram_size=ops.convert_to_tensor(n, "int32"),
                repetition_penalty=ops.convert_to_tensor(penalty, "float32"),
            )
        )
        for row in range(3):
            expected = _controls_np(
                logits[row], history[row, :index], n, penalty
            )
            np.testing.assert_allclose(
                out[row], expected, rtol=1e-5, err_msg=f"trial {trial}"
            )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(no_repeat_ngram_size=-1), "Received: no_repeat_ngram_size=-1"),
        (dict(no_repeat_ngram_size=2.0), "Received: no_repeat_ngram_size=2.0"),
        (dict(no_repeat_ngram_size=True), "Received: no_repeat_ngram_size="),
        (dict(repetition_penalty=0.0), "Received: repetition_penalty=0.0"),
        (dict(repetition_penalty="1"), "Received: repetition_penalty='1'"),
    ],
)
def test_invalid_controls(kwargs, message):
    token_ids, prompt_mask = _buffer([[1]], 4)
    with pytest.raises(ValueError, match=message):
        generation.decode(
            _table_step(_loop_table()),
            token_ids,
            prompt_mask,
            None,
            "greedy",
            start_index=1,
            **kwargs,
        )


# ----------------------------------------------------------------------
# In the decode loop.
# ----------------------------------------------------------------------
def test_greedy_loop_is_broken_by_ngram_ban_and_penalty():
    step = _table_step(_loop_table())
    token_ids, prompt_mask = _buffer([[1], [3, 1]], 8)
    looping = _np(
        generation.decode(step, token_ids, prompt_mask, None, "greedy",
                          start_index=1)
    )  # fmt: skip
    np.testing.assert_array_equal(
        looping, [[1, 2, 1, 2, 1, 2, 1, 2], [3, 1, 2, 1, 2, 1, 2, 1]]
    )
    banned = _np(
        generation.decode(
            step,
            token_ids,
            prompt_mask,
            None,
            "greedy",
            start_index=1,
            no_repeat_ngram_size=2,
        )
    )
    # By hand, row 0: 1 2 1; "1 2" seen -> the next best after 1 is 1; then
    # "1 2", "1 1" seen -> 3; 3 -> 1; "1 2", "1 1", "1 3" seen -> 4; 4 -> 1.
    # Row 1: 3 1 2 1 1 like row 0; then 3, and "3 1" seen -> 2; "2 1" seen
    # -> 2.
    np.testing.assert_array_equal(
        banned, [[1, 2, 1, 1, 3, 1, 4, 1], [3, 1, 2, 1, 1, 3, 2, 2]]
    )
    for row in banned:
        assert _repeated_bigrams(row.tolist()) == 0
    penalized = _np(
        generation.decode(
            step,
            token_ids,
            prompt_mask,
            None,
            "greedy",
            start_index=1,
            repetition_penalty=100.0,
        )
    )
    # A seen token's logit is divided by 100 (5.0 -> 0.05): the best
    # unseen token wins, until every token has been seen.
    np.testing.assert_array_equal(
        penalized, [[1, 2, 3, 4, 5, 1, 2, 1], [3, 1, 2, 4, 5, 1, 2, 1]]
    )


@pytest.mark.parametrize(
    "sampler",
    [generation.TopKSampler(k=3), generation.TopPSampler(p=0.95), "random"],
    ids=["top_k", "top_p", "random"],
)
def test_sampling_never_repeats_a_bigram(sampler):
    rng = np.random.default_rng(1)
    table = rng.normal(size=(12, 12)).astype("float32")
    token_ids, prompt_mask = _buffer([[1], [2, 3], [4], [5, 6, 7]], 14)
    out = _np(
        generation.decode(
            _table_step(table),
            token_ids,
            prompt_mask,
            None,
            sampler,
            start_index=1,
            seed=5,
            no_repeat_ngram_size=2,
        )
    )
    for row in out:
        assert _repeated_bigrams(row.tolist()) == 0


def test_off_is_identical_to_before():
    rng = np.random.default_rng(2)
    table = rng.normal(size=(9, 9)).astype("float32") * 3
    token_ids, prompt_mask = _buffer([[1], [2, 3, 4], [5, 6]], 7)
    samplers = [
        generation.GreedySampler(),
        generation.TopKSampler(k=3),
        generation.TopPSampler(p=0.8),
        generation.BeamSampler(3, length_penalty=0.6),
    ]
    for sampler in samplers:
        kwargs = dict(
            start_index=1,
            stop_token_ids=[8],
            pad_token_id=-1,
            seed=3,
            return_scores=True,
        )
        before_ids, before_scores = generation.decode(
            _table_step(table), token_ids, prompt_mask, None, sampler, **kwargs
        )
        # Tensor "off" values go through the controls (under a cond).
        after_ids, after_scores = generation.decode(
            _table_step(table),
            token_ids,
            prompt_mask,
            None,
            sampler,
            no_repeat_ngram_size=ops.convert_to_tensor(0, "int32"),
            repetition_penalty=ops.convert_to_tensor(1.0, "float32"),
            **kwargs,
        )
        np.testing.assert_array_equal(_np(after_ids), _np(before_ids))
        np.testing.assert_array_equal(_np(after_scores), _np(before_scores))
        # And through the compiled function, with the defaults.
        decode_fn = generation.compile_decode(
            _table_step(table),
            sampler,
            stop_token_ids=[8],
            pad_token_id=-1,
            return_scores=True,
        )
        compiled_ids, compiled_scores = decode_fn(
            token_ids, prompt_mask, None, start_index=1, seed=3
        )
        np.testing.assert_array_equal(_np(compiled_ids), _np(before_ids))
        np.testing.assert_allclose(
            _np(compiled_scores), _np(before_scores), atol=1e-5
        )


def _brute_force_beams(table, prompt, length, n, penalty):
    """Every completion of `prompt` to `length` tokens with its score
    (log-softmax of the controlled logits), best first."""
    results = []
    vocab = table.shape[0]
    for tail in itertools.product(range(vocab), repeat=length - len(prompt)):
        sequence = list(prompt) + list(tail)
        total = 0.0
        for index in range(len(prompt), length):
            logits = _controls_np(
                table[sequence[index - 1]], sequence[:index], n, penalty
            )
            total += _log_softmax_np(logits)[sequence[index]]
        if np.isfinite(total):
            results.append((total, sequence))
    results.sort(key=lambda item: -item[0])
    return results


@pytest.mark.parametrize("n, penalty", [(2, 1.0), (1, 1.0), (0, 3.0), (2, 1.5)])
def test_exhaustive_beam_search_respects_controls_per_beam(n, penalty):
    # With V=3 and 3 generated tokens, 27 beams keep every prefix, so the
    # beams are the best allowed sequences under the controlled scores; a
    # history shared across beams (or not reordered) gives other answers.
    rng = np.random.default_rng(11)
    vocab, length, num_beams = 3, 4, 27
    table = rng.normal(size=(vocab, vocab)).astype("float32") * 2
    prompts = [[0], [2]]
    token_ids, prompt_mask = _buffer(prompts, length)
    beams, scores = generation.decode(
        _table_step(table),
        token_ids,
        prompt_mask,
        None,
        generation.BeamSampler(num_beams, return_all_beams=True),
        start_index=1,
        no_repeat_ngram_size=n,
        repetition_penalty=penalty,
    )
    beams, scores = _np(beams), _np(scores)
    for row, prompt in enumerate(prompts):
        best = _brute_force_beams(table, prompt, length, n, penalty)
        count = min(len(best), num_beams)
        np.testing.assert_allclose(
            scores[row, :count], [s for s, _ in best[:count]], atol=1e-4
        )
        assert beams[row, 0].tolist() == best[0][1]
        if n == 2:
            for beam in beams[row, :count]:
                assert _repeated_bigrams(beam.tolist()) == 0


def test_beam_search_breaks_the_loop():
    step = _table_step(_loop_table())
    token_ids, prompt_mask = _buffer([[1], [3, 1]], 8)
    beams = _np(
        generation.decode(
            step,
            token_ids,
            prompt_mask,
            None,
            generation.BeamSampler(3, return_all_beams=True),
            start_index=1,
            no_repeat_ngram_size=2,
        )[0]
    )
    for row in beams.reshape(-1, 8):
        assert _repeated_bigrams(row.tolist()) == 0
    # One beam equals greedy, controls included.
    greedy = generation.decode(
        step, token_ids, prompt_mask, None, "greedy", start_index=1,
        no_repeat_ngram_size=2, repetition_penalty=1.2,
    )  # fmt: skip
    one_beam = generation.decode(
        step, token_ids, prompt_mask, None, generation.BeamSampler(1),
        start_index=1, no_repeat_ngram_size=2, repetition_penalty=1.2,
    )  # fmt: skip
    np.testing.assert_array_equal(_np(one_beam), _np(greedy))


@pytest.mark.parametrize(
    "sampler",
    [generation.GreedySampler(), generation.BeamSampler(3)],
    ids=["greedy", "beam"],
)
def test_compiled_equals_eager_with_controls(sampler):
    rng = np.random.default_rng(4)
    table = rng.normal(size=(9, 9)).astype("float32") * 3
    token_ids, prompt_mask = _buffer([[1], [2, 3, 4], [5, 6]], 10)

    def run(token_ids, prompt_mask, n, penalty):
        return generation.decode(
            _table_step(table),
            token_ids,
            prompt_mask,
            None,
            sampler,
            start_index=1,
            stop_token_ids=[8],
            return_scores=True,
            no_repeat_ngram_size=n,
            repetition_penalty=penalty,
        )

    args = (
        ops.convert_to_tensor(token_ids),
        ops.convert_to_tensor(prompt_mask),
        ops.convert_to_tensor(2, "int32"),
        ops.convert_to_tensor(1.3, "float32"),
    )
    eager_ids, eager_scores = run(*args)
    jit_ids, jit_scores = jit(run)(*args)
    np.testing.assert_array_equal(_np(jit_ids), _np(eager_ids))
    np.testing.assert_allclose(_np(jit_scores), _np(eager_scores), atol=1e-4)


@pytest.mark.parametrize(
    "sampler",
    [generation.GreedySampler(), generation.BeamSampler(2)],
    ids=["greedy", "beam"],
)
def test_changing_controls_does_not_retrace(sampler):
    if BACKEND not in ("tensorflow", "jax"):
        pytest.skip("no compiler for this backend")
    traces = []
    step = _table_step(_loop_table())

    def counting_step(token_ids, index, cache):
        traces.append(1)  # runs only while tracing
        return step(token_ids, index, cache)

    decode_fn = generation.compile_decode(counting_step, sampler)
    token_ids, prompt_mask = _buffer([[1], [3, 1]], 8)
    settings = [(0, 1.0), (2, 1.0), (1, 1.0), (0, 100.0), (3, 1.7), (0, 1.0)]
    outputs = []
    for n, penalty in settings:
        outputs.append(
            _np(
                decode_fn(
                    token_ids,
                    prompt_mask,
                    None,
                    start_index=1,
                    no_repeat_ngram_size=n,
                    repetition_penalty=penalty,
                )
            )
        )
        if len(outputs) == 1:
            traced = len(traces)
            assert traced >= 1
    assert len(traces) == traced
    for (n, penalty), output in zip(settings, outputs, strict=True):
        eager = generation.decode(
            step,
            token_ids,
            prompt_mask,
            None,
            sampler,
            start_index=1,
            no_repeat_ngram_size=n,
            repetition_penalty=penalty,
        )
        np.testing.assert_array_equal(output, _np(eager))
    assert (outputs[1] != outputs[0]).any()  # the values do act


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TF input signatures")
@pytest.mark.parametrize("jit_compile", [True, False])
def test_dynamic_shapes_in_tf_function(jit_compile):
    import tensorflow as tf

    length = 8
    step = _table_step(_loop_table())

    # Batch and length unknown (as `reduce_retracing=True` makes them).
    @tf.function(
        jit_compile=jit_compile,
        input_signature=[
            tf.TensorSpec([None, None], tf.int32),
            tf.TensorSpec([None, None], tf.bool),
            tf.TensorSpec([], tf.int32),
            tf.TensorSpec([], tf.float32),
        ],
    )
    def serve(token_ids, prompt_mask, n, penalty):
        return generation.decode(
            step,
            token_ids,
            prompt_mask,
            None,
            generation.BeamSampler(2),
            start_index=1,
            no_repeat_ngram_size=n,
            repetition_penalty=penalty,
        )

    token_ids, prompt_mask = _buffer([[1], [3, 1]], length)
    out = serve(token_ids, prompt_mask, tf.constant(2), tf.constant(1.0))
    for row in out.numpy():
        assert _repeated_bigrams(row.tolist()) == 0
    looping = serve(token_ids, prompt_mask, tf.constant(0), tf.constant(1.0))
    assert looping.numpy()[0].tolist() == [1, 2, 1, 2, 1, 2, 1, 2]
