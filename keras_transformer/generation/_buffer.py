"""Token-buffer helpers shared by the decode loop and beam search (private).

Shape legend: B batch, K beams, L buffer length, S stop ids.
"""

import numbers

from keras import ops


def stop_ids(stop_token_ids):
    """Checks `stop_token_ids` and returns them as int32 `[S]` (or None)."""
    if stop_token_ids is None:
        return None
    if isinstance(stop_token_ids, int) and not isinstance(stop_token_ids, bool):
        stop_token_ids = [stop_token_ids]
    if isinstance(stop_token_ids, (list, tuple)):
        if not stop_token_ids or not all(
            isinstance(t, int) and not isinstance(t, bool)
            for t in stop_token_ids
        ):
            raise ValueError(
                "Argument `stop_token_ids` must be None, an int, a non-empty "
                "list of ints or an int tensor. "
                f"Received: stop_token_ids={stop_token_ids}"
            )
    stop = ops.cast(ops.convert_to_tensor(stop_token_ids), "int32")
    return ops.reshape(stop, (-1,))


# Run-time stop ids (`compile_decode`'s `extra_stop_token_ids`) travel as
# a fixed-size int32 vector padded with -1 (no token), so their number
# never changes a traced shape.
MAX_RUNTIME_STOP_IDS = 16


def runtime_stop_ids(stop_token_ids):
    """Checks run-time stop ids; returns them as a list of
    `MAX_RUNTIME_STOP_IDS` ints padded with -1.

    Args:
        stop_token_ids: None, an int >= 0 or a list of them.

    Example:
    >>> from keras_transformer.generation import _buffer
    >>> _buffer.runtime_stop_ids([5, 9])[:4]
    [5, 9, -1, -1]
    """
    if stop_token_ids is None:
        ids = []
    elif isinstance(stop_token_ids, (list, tuple)):
        ids = list(stop_token_ids)
    else:
        ids = [stop_token_ids]
    if len(ids) > MAX_RUNTIME_STOP_IDS or not all(
        isinstance(t, numbers.Integral) and not isinstance(t, bool) and t >= 0
        for t in ids
    ):
        raise ValueError(
            "`stop_token_ids` must be None, a token id (an int >= 0) or a "
            f"list of at most {MAX_RUNTIME_STOP_IDS}. "
            f"Received: stop_token_ids={stop_token_ids!r}"
        )
    return [int(t) for t in ids] + [-1] * (MAX_RUNTIME_STOP_IDS - len(ids))


def is_stop(token_ids, stop):
    """True where `token_ids` (any shape) is one of the `stop` ids `[S]`."""
    if stop is None:
        return ops.zeros_like(token_ids, dtype="bool")
    return ops.any(ops.equal(token_ids[..., None], stop), axis=-1)


def write_column(buffer, index, values):
    """Writes `values [...]` at position `index` of the last axis."""
    length = ops.shape(buffer)[-1]
    here = ops.arange(length, dtype="int32") == index
    return ops.where(here, values[..., None], buffer)


def pad_unwritten(token_ids, prompt_mask, end, pad):
    """Pads the positions the loop did not reach (it stopped early)."""
    length = ops.shape(token_ids)[-1]
    after = ops.arange(length, dtype="int32") >= end
    return ops.where(after & ~prompt_mask, pad, token_ids)


def check_inputs(token_ids, prompt_mask, start_index):
    """Checks the buffer arguments of `decode`.

    Returns:
        `(token_ids int32 [B, L], prompt_mask bool [B, L], start_index
        int32 scalar)`; a `None` prompt mask becomes "positions before
        `start_index`".
    """
    token_ids = ops.convert_to_tensor(token_ids)
    if len(token_ids.shape) != 2:
        raise ValueError(
            "Argument `token_ids` must have shape [B, L]. "
            f"Received: token_ids.shape={token_ids.shape}"
        )
    token_ids = ops.cast(token_ids, "int32")
    length = ops.shape(token_ids)[1]
    if isinstance(start_index, bool) or (
        not isinstance(start_index, int) and not hasattr(start_index, "shape")
    ):
        raise ValueError(
            "Argument `start_index` must be an int or a scalar int tensor. "
            f"Received: start_index={start_index}"
        )
    if isinstance(start_index, int) and isinstance(length, int):
        if not 1 <= start_index <= length:
            raise ValueError(
                "Argument `start_index` must be in [1, L] (the loop feeds "
                f"token start_index - 1; L={length}). "
                f"Received: start_index={start_index}"
            )
    start_index = ops.cast(start_index, "int32")
    if prompt_mask is None:
        positions = ops.arange(length, dtype="int32")[None, :]
        prompt_mask = ops.broadcast_to(
            positions < start_index, ops.shape(token_ids)
        )
    else:
        prompt_mask = ops.convert_to_tensor(prompt_mask)
        if len(prompt_mask.shape) != 2:
            raise ValueError(
                "Argument `prompt_mask` must have shape [B, L], like "
                f"`token_ids`. Received: prompt_mask.shape={prompt_mask.shape}"
            )
        prompt_mask = ops.cast(prompt_mask, "bool")
    return token_ids, prompt_mask, start_index
