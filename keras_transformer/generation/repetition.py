"""Repetition controls: logits processors against decoding loops.

Small models often fall into loops ("I'm not not not ..."). Two run-time
controls act on the next-token logits before the sampler (or beam search)
chooses, using the tokens already in the row's buffer:

- `no_repeat_ngram_size` n: a token that would complete an n-gram already
  present in the history is forbidden (its logit becomes -inf). n = 1
  forbids every token already seen; n = 0 turns the control off.
- `repetition_penalty` r (CTRL): the logit of every token already present
  is divided by r when positive and multiplied by r when negative, so r > 1
  makes repeats less likely; r = 1 turns it off.

The functions are pure (logits, history buffer, position) -> logits,
written with `keras.ops` over static shapes (an inner `keras.ops.while_loop`
over the n-gram offsets), so they run eagerly, under XLA and `jax.jit`,
and both values may be tensors that change between calls of a compiled
decode loop without retracing. The history of row r is `history[r, :index]`
(the prompt included, when the buffer holds one); ids outside `[0, V)`
(e.g. a negative pad id) never count as history.

Shape legend: R rows (batch, or batch * beams), L buffer length,
V vocabulary.
"""

from keras import ops

from keras_transformer.generation.samplers import _is_number

_NEG_INF = float("-inf")


def check_controls(no_repeat_ngram_size=0, repetition_penalty=1.0):
    """Checks the two controls (Python numbers; tensors pass as they are).

    Args:
        no_repeat_ngram_size: int >= 0 or scalar int tensor, default 0.
        repetition_penalty: float > 0 or scalar float tensor, default 1.0.

    Returns:
        `(no_repeat_ngram_size, repetition_penalty)`, unchanged.

    Example:
    >>> from keras_transformer.generation import repetition
    >>> repetition.check_controls(3, 1.2)
    (3, 1.2)
    """
    size = no_repeat_ngram_size
    if isinstance(size, bool) or (
        not isinstance(size, int) and not hasattr(size, "shape")
    ):
        raise ValueError(
            "Argument `no_repeat_ngram_size` must be an integer >= 0 (0 is "
            f"off). Received: no_repeat_ngram_size={size!r}"
        )
    if isinstance(size, int) and size < 0:
        raise ValueError(
            "Argument `no_repeat_ngram_size` must be an integer >= 0 (0 is "
            f"off). Received: no_repeat_ngram_size={size}"
        )
    penalty = repetition_penalty
    if isinstance(penalty, bool) or (
        not _is_number(penalty) and not hasattr(penalty, "shape")
    ):
        raise ValueError(
            "Argument `repetition_penalty` must be a positive number (1.0 "
            f"is off). Received: repetition_penalty={penalty!r}"
        )
    if _is_number(penalty) and not penalty > 0:
        raise ValueError(
            "Argument `repetition_penalty` must be a positive number (1.0 "
            f"is off). Received: repetition_penalty={penalty}"
        )
    return no_repeat_ngram_size, repetition_penalty


def is_off(no_repeat_ngram_size=0, repetition_penalty=1.0):
    """True when both controls are Python numbers at their "off" values.

    Tensors count as on (their value is only known at run time).

    Example:
    >>> from keras_transformer.generation import repetition
    >>> repetition.is_off(0, 1.0), repetition.is_off(2, 1.0)
    (True, False)
    """
    return (
        isinstance(no_repeat_ngram_size, int)
        and no_repeat_ngram_size == 0
        and _is_number(repetition_penalty)
        and repetition_penalty == 1.0
    )


def _tokens_at(history, where, vocab_size):
    """bool `[R, V]`: True for every token held at a position where
    `where [R, L]` is True (ids outside `[0, V)` are ignored)."""
    in_range = ops.logical_and(history >= 0, history < vocab_size)
    where = ops.logical_and(where, in_range)
    tokens = ops.where(in_range, history, 0)
    num_rows = ops.shape(history)[0]
    rows = ops.zeros_like(tokens) + ops.arange(num_rows, dtype="int32")[:, None]
    indices = ops.stack(
        [ops.reshape(rows, (-1,)), ops.reshape(tokens, (-1,))], axis=1
    )  # [R * L, 2]
    counts = ops.zeros((num_rows, vocab_size), "float32")  # [R, V]
    counts = ops.scatter_update(
        counts,
        indices,
        ops.reshape(ops.cast(where, "float32"), (-1,)),
        reduction="add",
    )
    return counts > 0


def _history_positions(history, index):
    """bool `[1, L]`: True on the history positions `< index`."""
    length = ops.shape(history)[1]
    positions = ops.arange(length, dtype="int32")
    return (positions < ops.cast(index, "int32"))[None, :]


def seen_tokens(history, index, vocab_size):
    """Which tokens occur in each row's history `history[:, :index]`.

    Args:
        history: int tensor `[R, L]`, the token buffer.
        index: int or scalar int tensor, the position about to be
            generated (positions `< index` are the history).
        vocab_size: int, V.

    Returns:
        bool tensor `[R, V]`.

    Example:
    >>> import keras
    >>> from keras_transformer.generation import repetition
    >>> seen = repetition.seen_tokens([[1, 3, 3, 4]], 3, vocab_size=5)
    >>> keras.ops.convert_to_numpy(seen).tolist()
    [[False, True, False, True, False]]
    """
    history = ops.cast(ops.convert_to_tensor(history), "int32")
    where = ops.zeros_like(history, dtype="bool") | _history_positions(
        history, index
    )
    return _tokens_at(history, where, vocab_size)


def repeated_ngram_tokens(history, index, ngram_size, vocab_size):
    """Tokens that would complete an n-gram already in the history.

    For the token at `index`, the n-gram it completes is the `n - 1`
    tokens at `index - n + 1 .. index - 1` plus itself. Every earlier
    position `p` (with `n - 1 <= p < index`) whose `n - 1` preceding tokens
    equal those forbids the token at `p`. `n = 1` forbids every token of
    the history; `n = 0` (or a history shorter than `n`) forbids nothing.

    Args:
        history: int tensor `[R, L]`, the token buffer.
        index: int or scalar int tensor, the position about to be
            generated (positions `< index` are the history).
        ngram_size: int >= 0 or scalar int tensor, n.
        vocab_size: int, V.

    Returns:
        bool tensor `[R, V]`, True on the forbidden tokens.

    Example:
    >>> import keras
    >>> from keras_transformer.generation import repetition
    >>> # History "1 2 1": the bigram (1, 2) exists, so 2 may not follow 1.
    >>> banned = repetition.repeated_ngram_tokens([[1, 2, 1, 0]], 3, 2, 4)
    >>> keras.ops.convert_to_numpy(banned).tolist()
    [[False, False, True, False]]
    """
    history = ops.cast(ops.convert_to_tensor(history), "int32")
    length = ops.shape(history)[1]  # may be dynamic in a TF graph
    size = ops.cast(ngram_size, "int32")
    index = ops.cast(index, "int32")
    positions = ops.arange(length, dtype="int32")  # [L]
    candidate = ops.logical_and(
        ops.logical_and(positions >= size - 1, positions < index), size >= 1
    )  # [L]

    # match[r, p]: the o-th token before p equals the o-th token before
    # `index`, for every offset o < n - 1 checked so far.
    def cond(offset, match):
        return offset < size - 1

    def body(offset, match):
        query = ops.take(
            history, ops.clip(index - 1 - offset, 0, length - 1), axis=1
        )  # [R]
        source = ops.take(
            history, ops.clip(positions - 1 - offset, 0, length - 1), axis=1
        )  # [R, L]
        return offset + 1, ops.logical_and(match, source == query[:, None])

    match = ops.ones_like(history, dtype="bool")
    _, match = ops.while_loop(
        cond, body, (ops.convert_to_tensor(0, "int32"), match)
    )
    return _tokens_at(
        history, ops.logical_and(match, candidate[None, :]), vocab_size
    )


def penalize_repetitions(logits, history, index, repetition_penalty):
    """CTRL repetition penalty on the tokens already in the history.

    Args:
        logits: float tensor `[R, V]`, next-token logits.
        history: int tensor `[R, L]`, the token buffer.
        index: int or scalar int tensor, the position about to be
            generated (positions `< index` are the history).
        repetition_penalty: positive float or scalar float tensor; 1.0
            changes nothing.

    Returns:
        float tensor `[R, V]` (the dtype of `logits`): a seen token's logit
        divided by the penalty if positive, multiplied by it otherwise.

    Example:
    >>> import keras
    >>> from keras_transformer.generation import repetition
    >>> logits = keras.ops.convert_to_tensor([[2.0, -1.0, 3.0]])
    >>> out = repetition.penalize_repetitions(logits, [[0, 1]], 2, 2.0)
    >>> keras.ops.convert_to_numpy(out).tolist()
    [[1.0, -2.0, 3.0]]

    References:
        - [Keskar et al., 2019](https://arxiv.org/abs/1909.05858), "CTRL: A
          Conditional Transformer Language Model for Controllable
          Generation", section 4.1.
    """
    logits = ops.convert_to_tensor(logits)
    seen = seen_tokens(history, index, ops.shape(logits)[-1])
    penalty = ops.cast(repetition_penalty, logits.dtype)
    penalized = ops.where(logits > 0, logits / penalty, logits * penalty)
    return ops.where(seen, penalized, logits)


def block_repeated_ngrams(logits, history, index, ngram_size):
    """Sets the logits of tokens that would repeat an n-gram to -inf.

    A row where every token would be forbidden keeps its logits (so the
    step still has a distribution).

    Args:
        logits: float tensor `[R, V]`, next-token logits.
        history: int tensor `[R, L]`, the token buffer.
        index: int or scalar int tensor, the position about to be
            generated.
        ngram_size: int >= 0 or scalar int tensor; 0 changes nothing.

    Returns:
        float tensor `[R, V]`, the dtype of `logits`.

    Example:
    >>> import keras
    >>> from keras_transformer.generation import repetition
    >>> logits = keras.ops.zeros((1, 4))
    >>> out = repetition.block_repeated_ngrams(logits, [[1, 2, 1, 0]], 3, 2)
    >>> keras.ops.convert_to_numpy(out).tolist()
    [[0.0, 0.0, -inf, 0.0]]
    """
    logits = ops.convert_to_tensor(logits)
    banned = repeated_ngram_tokens(
        history, index, ngram_size, ops.shape(logits)[-1]
    )
    everything = ops.all(banned, axis=-1, keepdims=True)  # [R, 1]
    banned = ops.logical_and(banned, ops.logical_not(everything))
    return ops.where(banned, _NEG_INF, logits)


def apply_repetition_controls(
    logits,
    history,
    index,
    no_repeat_ngram_size=0,
    repetition_penalty=1.0,
):
    """Applies the repetition penalty, then the n-gram block.

    Python numbers at their off values return `logits` untouched (no op
    is added); tensors are applied under a `keras.ops.cond`, so a compiled
    loop fed "off" values skips the work at run time.

    Args:
        logits: float tensor `[R, V]`, next-token logits.
        history: int tensor `[R, L]`, the token buffer.
        index: int or scalar int tensor, the position about to be
            generated (positions `< index` are the history).
        no_repeat_ngram_size: int >= 0 or scalar int tensor, default 0
            (off).
        repetition_penalty: positive float or scalar float tensor, default
            1.0 (off).

    Returns:
        float tensor `[R, V]`, the dtype of `logits`.

    Example:
    >>> import keras
    >>> from keras_transformer.generation import repetition
    >>> logits = keras.ops.convert_to_tensor([[1.0, 2.0, 4.0, -1.0]])
    >>> out = repetition.apply_repetition_controls(
    ...     logits, [[1, 2, 1, 0]], 3, no_repeat_ngram_size=2,
    ...     repetition_penalty=2.0)
    >>> keras.ops.convert_to_numpy(out).tolist()
    [[1.0, 1.0, -inf, -1.0]]
    """
    check_controls(no_repeat_ngram_size, repetition_penalty)
    logits = ops.convert_to_tensor(logits)
    if is_off(no_repeat_ngram_size, repetition_penalty):
        return logits
    history = ops.cast(ops.convert_to_tensor(history), "int32")

    def controlled():
        out = logits
        if not (_is_number(repetition_penalty) and repetition_penalty == 1.0):
            out = penalize_repetitions(out, history, index, repetition_penalty)
        if not (
            isinstance(no_repeat_ngram_size, int) and no_repeat_ngram_size == 0
        ):
            out = block_repeated_ngrams(
                out, history, index, no_repeat_ngram_size
            )
        return out

    if isinstance(no_repeat_ngram_size, int) and _is_number(repetition_penalty):
        return controlled()
    active = ops.logical_or(
        ops.cast(no_repeat_ngram_size, "int32") > 0,
        ops.not_equal(ops.cast(repetition_penalty, "float32"), 1.0),
    )
    return ops.cond(active, controlled, lambda: logits)


def check_min_new_tokens(min_new_tokens):
    """Checks `min_new_tokens` (an int >= 0, or a scalar int tensor)."""
    value = min_new_tokens
    if isinstance(value, bool) or (
        not isinstance(value, int) and not hasattr(value, "shape")
    ):
        raise ValueError(
            "Argument `min_new_tokens` must be an integer >= 0 (0 is off). "
            f"Received: min_new_tokens={value!r}"
        )
    if isinstance(value, int) and value < 0:
        raise ValueError(
            "Argument `min_new_tokens` must be an integer >= 0 (0 is off). "
            f"Received: min_new_tokens={value}"
        )
    return min_new_tokens


def block_early_stop(logits, index, prompt_lengths, stop, min_new_tokens):
    """Forbids the stop tokens of rows with fewer than `min_new_tokens`
    new tokens.

    The token about to be written at `index` is row r's
    `index - prompt_lengths[r] + 1`-th new one; while fewer than
    `min_new_tokens` precede it, every id of `stop` gets logit -inf.

    Args:
        logits: float tensor `[R, V]`.
        index: int or scalar int tensor, the position about to be written.
        prompt_lengths: int tensor `[R]`, each row's prompt length.
        stop: int tensor `[S]`, the stop ids (None: nothing to block).
        min_new_tokens: int >= 0 or scalar int tensor.

    Returns:
        float tensor `[R, V]`, the dtype of `logits`.

    Example:
    >>> import keras
    >>> from keras_transformer.generation import repetition
    >>> out = repetition.block_early_stop(
    ...     keras.ops.zeros((2, 4)), 3, keras.ops.array([3, 1], "int32"),
    ...     keras.ops.array([2], "int32"), 2)
    >>> keras.ops.convert_to_numpy(out).tolist()  # row 0 has no new token
    [[0.0, 0.0, -inf, 0.0], [0.0, 0.0, 0.0, 0.0]]
    """
    check_min_new_tokens(min_new_tokens)
    logits = ops.convert_to_tensor(logits)
    if stop is None or (isinstance(min_new_tokens, int) and not min_new_tokens):
        return logits
    vocab_size = logits.shape[-1]
    new_so_far = ops.cast(index, "int32") - ops.cast(prompt_lengths, "int32")
    early = new_so_far < ops.cast(min_new_tokens, "int32")  # [R]
    is_stop = ops.any(
        ops.arange(vocab_size, dtype="int32")[None, :] == stop[:, None], axis=0
    )  # [V]

    def blocked():
        where = ops.logical_and(early[:, None], is_stop[None, :])
        return ops.where(where, ops.cast(_NEG_INF, logits.dtype), logits)

    if isinstance(min_new_tokens, int):
        return blocked()
    # A tensor: a compiled loop fed 0 skips the work at run time.
    return ops.cond(ops.any(early), blocked, lambda: logits)
