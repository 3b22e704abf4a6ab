"""Beam search: the `BeamSampler` settings and the search itself.

`keras_transformer.generation.decode` runs `beam_decode` when it is given a
`BeamSampler`: the batch is expanded to `B * K` rows, the same static-shape
cache is reordered by parent beam at every step, and the length-penalized
scores rank the hypotheses. Shape legend: B batch, K beams, L buffer length,
V vocabulary.
"""

import keras
from keras import ops

from keras_transformer.generation import _buffer
from keras_transformer.generation.samplers import (
    GreedySampler,
    Sampler,
    _is_number,
)

# Score of the placeholder beams that start next to the first real beam: low
# enough to lose against any real hypothesis, finite so it never makes NaN.
_DEAD_BEAM_SCORE = -1e9
_NEG_INF = float("-inf")


@keras.saving.register_keras_serializable(package="keras_transformer")
class BeamSampler(Sampler):
    """Beam search settings; `decode` runs the search over the shared cache.

    Each row keeps `num_beams` hypotheses. At every step all `num_beams * V`
    one-token extensions are scored by their summed log-probability divided
    by the GNMT length penalty `((5 + length) / 6) ** length_penalty`
    (`length` counts generated tokens, stop token included); the best
    `num_beams` survive and the cache is reordered by their parent beam. A
    finished beam (it produced a stop token) only extends with the pad token
    at zero cost, so it competes with the live beams at its final score.

    Args:
        num_beams: int >= 1, the beam width K. `num_beams=1` is greedy
            search.
        length_penalty: float >= 0 or scalar float tensor, default 0.0
            (GNMT alpha). 0 ranks by the summed log-probability; larger
            values favour longer outputs.
        return_all_beams: bool, default False. If True, `decode` returns all
            beams and their scores, best first.

    Returns (from `decode`):
        int32 `[B, L]` best beams, or with `return_all_beams=True` a tuple
        `(token_ids [B, K, L], scores [B, K])`.

    Example:
    >>> import keras
    >>> import numpy as np
    >>> import keras_transformer
    >>> # A first-order fake model: log P(next | previous), 3 tokens.
    >>> table = np.log([[0.1, 0.5, 0.4], [0.4, 0.3, 0.3], [0.05, 0.05, 0.9]])
    >>> table = keras.ops.convert_to_tensor(table.astype("float32"))
    >>> def step_fn(token_ids, index, cache):
    ...     return keras.ops.take(table, token_ids, axis=0), cache
    >>> sampler = keras_transformer.generation.BeamSampler(
    ...     num_beams=2, return_all_beams=True)
    >>> beams, scores = keras_transformer.generation.decode(
    ...     step_fn, keras.ops.zeros((1, 3), "int32"), None, None, sampler,
    ...     start_index=1)
    >>> keras.ops.convert_to_numpy(beams).tolist()  # greedy: 0, 1, 0 (0.2)
    [[[0, 2, 2], [0, 1, 0]]]
    >>> probabilities = np.exp(keras.ops.convert_to_numpy(scores))[0]
    >>> [round(float(p), 2) for p in probabilities]
    [0.36, 0.2]

    References:
        - [Wu et al., 2016](https://arxiv.org/abs/1609.08144), "Google's
          Neural Machine Translation System" (length penalty, section 7).
    """

    def __init__(self, num_beams, length_penalty=0.0, return_all_beams=False):
        if (
            isinstance(num_beams, bool)
            or not isinstance(num_beams, int)
            or num_beams < 1
        ):
            raise ValueError(
                "Argument `num_beams` must be an integer >= 1. "
                f"Received: num_beams={num_beams}"
            )
        if _is_number(length_penalty) and length_penalty < 0:
            raise ValueError(
                "Argument `length_penalty` must be >= 0. "
                f"Received: length_penalty={length_penalty}"
            )
        if not _is_number(length_penalty) and not hasattr(
            length_penalty, "shape"
        ):
            raise ValueError(
                "Argument `length_penalty` must be a number or a scalar "
                f"tensor. Received: length_penalty={length_penalty}"
            )
        if not isinstance(return_all_beams, bool):
            raise ValueError(
                "Argument `return_all_beams` must be a bool. "
                f"Received: return_all_beams={return_all_beams}"
            )
        self.num_beams = num_beams
        self.length_penalty = length_penalty
        self.return_all_beams = return_all_beams

    def choose(self, logits, seed=None):
        raise ValueError(
            "BeamSampler keeps state across steps and has no per-step "
            "`choose`; pass it to `keras_transformer.generation.decode`. "
            f"Received: sampler={self!r}"
        )

    def penalty(self, lengths):
        """GNMT length penalty `((5 + lengths) / 6) ** length_penalty`.

        Args:
            lengths: int or float tensor of generated lengths.

        Returns:
            float32 tensor of the shape of `lengths`.

        Example:
        >>> import keras
        >>> import keras_transformer
        >>> sampler = keras_transformer.generation.BeamSampler(
        ...     num_beams=4, length_penalty=1.0)
        >>> keras.ops.convert_to_numpy(sampler.penalty([1, 7])).tolist()
        [1.0, 2.0]
        """
        lengths = ops.cast(lengths, "float32")
        alpha = self.length_penalty
        if _is_number(alpha) and alpha == 0:
            return ops.ones_like(lengths)
        return ops.power((5.0 + lengths) / 6.0, ops.cast(alpha, "float32"))

    def get_config(self):
        return {
            "num_beams": self.num_beams,
            "length_penalty": self.length_penalty,
            "return_all_beams": self.return_all_beams,
        }


def _beam_decode(
    call_step,
    token_ids,
    prompt_mask,
    cache,
    sampler,
    start_index,
    stop,
    pad,
    return_scores,
    process=None,
    limit=None,
):
    """Beam search over the shared loop; `decode` calls it for a
    `BeamSampler` (after checking its arguments), with the same meanings.
    `process(logits [B*K, V], history [B*K, L], index)` or None changes the
    step logits before scoring (the repetition controls, per beam);
    `limit` (int `[B]` or None) is the position after which a row's beams
    are finished (`decode`'s `max_new_tokens`).

    Beams of row `b` live at rows `b * K .. b * K + K - 1` of the expanded
    batch. Only beam 0 starts alive (the others hold `_DEAD_BEAM_SCORE`) so
    the first expansion does not produce K copies of the same hypothesis.
    While a row is still inside its prompt every beam is forced to the
    prompt token at zero cost, so ragged prompts are supported too.
    """
    num_beams = sampler.num_beams
    batch_size, length = ops.shape(token_ids)

    def expand(x):
        return ops.repeat(x, num_beams, axis=0)

    beams = ops.reshape(expand(token_ids), (-1, num_beams, length))  # B,K,L
    cache = keras.tree.map_structure(expand, cache)
    first = ops.arange(num_beams, dtype="int32") == 0
    scores = ops.where(first, 0.0, _DEAD_BEAM_SCORE)[None, :]
    scores = ops.broadcast_to(scores, (batch_size, num_beams))  # [B, K]
    lengths = ops.zeros((batch_size, num_beams), dtype="int32")
    finished = ops.zeros((batch_size, num_beams), dtype="bool")
    row_offset = ops.arange(batch_size, dtype="int32")[:, None] * num_beams

    def cond(index, beams, cache, scores, lengths, finished):
        running = index < length
        if stop is None:
            return running
        return ops.logical_and(running, ops.logical_not(ops.all(finished)))

    def body(index, beams, cache, scores, lengths, finished):
        prev = ops.reshape(ops.take(beams, index - 1, axis=2), (-1,))  # B*K
        logits, cache = call_step(prev, index - 1, cache)
        if process is not None:
            history = ops.reshape(beams, (-1, length))  # [B*K, L]
            logits = process(logits, history, index)
        vocab_size = logits.shape[-1]
        log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
        log_probs = ops.reshape(log_probs, (-1, num_beams, vocab_size))
        in_prompt = ops.take(prompt_mask, index, axis=1)[:, None]  # [B, 1]
        prompt_token = ops.take(beams[:, 0, :], index, axis=1)[:, None]

        # Candidate scores [B, K, V]: a forced beam (inside the prompt, or
        # finished) may only extend with one token at zero cost.
        forced = ops.logical_or(finished, in_prompt)  # [B, K]
        forced_token = ops.where(in_prompt, prompt_token, pad)  # [B, 1]
        vocab = ops.arange(vocab_size, dtype="int32")
        allowed = vocab[None, None, :] == forced_token[..., None]
        forced_scores = ops.where(allowed, scores[..., None], _NEG_INF)
        free_scores = scores[..., None] + log_probs
        candidates = ops.where(forced[..., None], forced_scores, free_scores)
        candidate_lengths = ops.where(forced, lengths, lengths + 1)  # [B, K]
        ranked = candidates / sampler.penalty(candidate_lengths)[..., None]

        flat_size = num_beams * vocab_size
        _, best = ops.top_k(ops.reshape(ranked, (-1, flat_size)), num_beams)
        parent = best // vocab_size  # [B, K]
        token = best % vocab_size  # [B, K]
        scores = ops.take_along_axis(
            ops.reshape(candidates, (-1, flat_size)), best, axis=1
        )
        lengths = ops.take_along_axis(candidate_lengths, parent, axis=1)
        parent_finished = ops.take_along_axis(
            ops.cast(finished, "int32"), parent, axis=1
        )
        parent_finished = ops.cast(parent_finished, "bool")
        token = ops.where(
            in_prompt, prompt_token, ops.where(parent_finished, pad, token)
        )
        finished = ops.logical_or(
            parent_finished,
            ops.logical_and(
                ops.logical_not(in_prompt), _buffer.is_stop(token, stop)
            ),
        )
        if limit is not None:
            finished = ops.logical_or(
                finished, (index + 1 >= limit)[:, None] & ~in_prompt
            )

        # Reorder the histories and the cache by parent beam.
        flat_parent = ops.reshape(parent + row_offset, (-1,))  # [B*K]
        beams = ops.take(ops.reshape(beams, (-1, length)), flat_parent, axis=0)
        beams = ops.reshape(beams, (-1, num_beams, length))
        beams = _buffer.write_column(beams, index, token)
        cache = keras.tree.map_structure(
            lambda x: ops.take(x, flat_parent, axis=0), cache
        )
        return index + 1, beams, cache, scores, lengths, finished

    end, beams, _, scores, lengths, _ = ops.while_loop(
        cond, body, (start_index, beams, cache, scores, lengths, finished)
    )
    beams = _buffer.pad_unwritten(beams, prompt_mask[:, None, :], end, pad)
    final = scores / sampler.penalty(lengths)  # [B, K]
    final, order = ops.top_k(final, num_beams)
    beams = ops.take_along_axis(beams, order[..., None], axis=1)
    if sampler.return_all_beams:
        return beams, final
    if return_scores:
        return beams[:, 0, :], final[:, 0]
    return beams[:, 0, :]


def check_num_return_sequences(num_return_sequences, sampler):
    """Returns `num_return_sequences` checked: a positive int, and 1 for
    greedy search (whose continuations would all be the same)."""
    if (
        isinstance(num_return_sequences, bool)
        or not isinstance(num_return_sequences, int)
        or num_return_sequences < 1
    ):
        raise ValueError(
            "`num_return_sequences` must be a positive int. Received: "
            f"num_return_sequences={num_return_sequences!r}"
        )
    greedy = sampler == "greedy" or isinstance(sampler, GreedySampler)
    if num_return_sequences > 1 and greedy:
        raise ValueError(
            "`num_return_sequences` > 1 needs beam search or a random "
            "sampler: greedy search has one answer. Received: "
            f"num_return_sequences={num_return_sequences}, sampler=greedy"
        )
    return num_return_sequences
