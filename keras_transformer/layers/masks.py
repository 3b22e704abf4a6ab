"""Attention masks: the only place in the library where masks are made.

All masks are boolean and follow the Keras convention: `True` means "may
attend" (for attention masks) or "is a real token" (for padding masks).

Shape legend: B batch, T query (target) length, S key (source) length.

Priority when several masks are available for one attention call:

1. An explicit `padding_mask` [B, S] replaces the implicit Keras mask carried
   by the key/value input (`_keras_mask`); the implicit mask is used only when
   no explicit padding mask is given.
2. The resulting key padding mask, an explicit `attention_mask` [B, T, S] and
   the causal mask (when requested) are combined with logical AND: a position
   is attended only if every mask allows it.
3. Query padding is never applied inside attention (padded query rows still
   produce finite values; losses and poolers ignore them), so a fully padded
   row can never produce NaN.
"""

from keras import ops

from keras_transformer import _keras_private


def causal_mask(query_length, key_length=None, start_index=0):
    """Returns a lower-triangular mask allowing each query to see its past.

    Args:
        query_length: int or scalar tensor, the number of queries T.
        key_length: int or scalar tensor, the number of keys S. Defaults to
            `query_length`.
        start_index: int or scalar tensor, the absolute position of the first
            query. Used during cached decoding, where the T queries sit at
            positions `start_index ... start_index + T - 1` of a key buffer
            of length S.

    Returns:
        A boolean tensor of shape [1, T, S], True where key position
        `s <= start_index + t`.

    Example:
    >>> from keras_transformer.layers import masks
    >>> masks.causal_mask(3).shape
    (1, 3, 3)
    """
    if key_length is None:
        key_length = query_length
    query_positions = ops.arange(query_length, dtype="int32") + ops.cast(
        start_index, "int32"
    )
    key_positions = ops.arange(key_length, dtype="int32")
    # [T, 1] >= [1, S] -> [T, S]
    mask = ops.greater_equal(
        ops.expand_dims(query_positions, 1), ops.expand_dims(key_positions, 0)
    )
    return ops.expand_dims(mask, 0)


def get_implicit_mask(x):
    """Returns the Keras mask attached to a tensor, or None."""
    return _keras_private.implicit_mask(x)


def merge_masks(
    query_length,
    key_length,
    padding_mask=None,
    attention_mask=None,
    use_causal_mask=False,
    start_index=0,
):
    """Combines a key padding mask, an attention mask and a causal mask.

    See the module docstring for the priority rules. Callers resolve the
    implicit Keras mask first (with `resolve_padding_mask`).

    Args:
        query_length: the number of queries T.
        key_length: the number of keys S.
        padding_mask: optional boolean [B, S], True for real key tokens.
        attention_mask: optional boolean [B, T, S].
        use_causal_mask: whether to add a causal mask.
        start_index: absolute position of the first query (cached decoding).

    Returns:
        A boolean tensor broadcastable to [B, T, S], or None when no mask
        applies.

    Example:
    >>> import numpy as np
    >>> from keras_transformer.layers import masks
    >>> m = masks.merge_masks(2, 2, padding_mask=np.array([[1, 0]]),
    ...                       use_causal_mask=True)
    >>> m.shape
    (1, 2, 2)
    """
    mask = None
    if padding_mask is not None:
        # [B, S] -> [B, 1, S]
        mask = ops.expand_dims(ops.cast(padding_mask, "bool"), 1)
    if attention_mask is not None:
        attention_mask = ops.cast(attention_mask, "bool")
        mask = (
            attention_mask
            if mask is None
            else ops.logical_and(mask, attention_mask)
        )
    if use_causal_mask:
        causal = causal_mask(query_length, key_length, start_index)
        mask = causal if mask is None else ops.logical_and(mask, causal)
    return mask


def resolve_padding_mask(inputs, padding_mask=None):
    """Chooses the explicit padding mask, else the input's Keras mask.

    Args:
        inputs: the key/value tensor, possibly carrying `_keras_mask`.
        padding_mask: optional explicit boolean [B, S] mask.

    Returns:
        A boolean [B, S] tensor or None.
    """
    if padding_mask is not None:
        return ops.cast(padding_mask, "bool")
    implicit = get_implicit_mask(inputs)
    if implicit is not None:
        return ops.cast(implicit, "bool")
    return None
