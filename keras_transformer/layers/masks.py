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
        query_length: int or scalar int tensor, the number of queries T.
        key_length: int, scalar int tensor or None, default None (then
            `query_length`). The number of keys S.
        start_index: int or scalar int tensor, default 0. The absolute
            position of the first query. Used during cached decoding, where
            the T queries sit at positions `start_index ... start_index + T
            - 1` of a key buffer of length S.

    Returns:
        A boolean tensor of shape [1, T, S], True where key position
        `s <= start_index + t`.

    Example:
    >>> import keras
    >>> import keras_transformer
    >>> mask = keras_transformer.layers.masks.causal_mask(3)
    >>> keras.ops.convert_to_numpy(mask).astype(int).tolist()
    [[[1, 0, 0], [1, 1, 0], [1, 1, 1]]]
    >>> mask = keras_transformer.layers.masks.causal_mask(1, 4, start_index=2)
    >>> keras.ops.convert_to_numpy(mask).astype(int).tolist()
    [[[1, 1, 1, 0]]]
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
    """Returns the Keras mask attached to a tensor, or None.

    Args:
        x: a tensor, possibly carrying a Keras mask (set by a layer with
            `compute_mask`, e.g. `TokenAndPositionEmbedding(mask_zero=True)`).

    Returns:
        The boolean mask [B, T] of `x`, or None when it has none.

    Example:
    >>> import keras
    >>> import numpy as np
    >>> import keras_transformer
    >>> embed = keras_transformer.layers.TokenAndPositionEmbedding(
    ...     vocabulary_size=10, sequence_length=4, hidden_dim=2)
    >>> hidden = embed(np.array([[4, 0]]))
    >>> mask = keras_transformer.layers.masks.get_implicit_mask(hidden)
    >>> keras.ops.convert_to_numpy(mask).tolist()
    [[True, False]]
    >>> print(keras_transformer.layers.masks.get_implicit_mask(np.ones(2)))
    None
    """
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
        query_length: int or scalar int tensor, the number of queries T.
        key_length: int or scalar int tensor, the number of keys S.
        padding_mask: bool or int tensor [B, S] or None, default None. True
            for real key tokens.
        attention_mask: bool or int tensor [B, T, S] or None, default None.
        use_causal_mask: bool, default False. Whether to add a causal mask.
        start_index: int or scalar int tensor, default 0. The absolute
            position of the first query (cached decoding).

    Returns:
        A boolean tensor broadcastable to [B, T, S] ([B, 1, S] for a padding
        mask alone, [1, T, S] for a causal mask alone), or None when no mask
        applies.

    Example:
    >>> import keras
    >>> import numpy as np
    >>> import keras_transformer
    >>> mask = keras_transformer.layers.masks.merge_masks(
    ...     2, 2, padding_mask=np.array([[1, 0]]), use_causal_mask=True)
    >>> keras.ops.convert_to_numpy(mask).astype(int).tolist()
    [[[1, 0], [1, 0]]]
    >>> print(keras_transformer.layers.masks.merge_masks(2, 2))
    None
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
        inputs: the key/value tensor [B, S, ...], possibly carrying a Keras
            mask.
        padding_mask: bool or int tensor [B, S] or None, default None. An
            explicit mask; it wins over the implicit one.

    Returns:
        A boolean tensor [B, S], or None when neither mask exists.

    Example:
    >>> import keras
    >>> import numpy as np
    >>> import keras_transformer
    >>> mask = keras_transformer.layers.masks.resolve_padding_mask(
    ...     np.zeros((1, 3, 2)), padding_mask=np.array([[1, 1, 0]]))
    >>> keras.ops.convert_to_numpy(mask).tolist()
    [[True, True, False]]
    """
    if padding_mask is not None:
        return ops.cast(padding_mask, "bool")
    implicit = get_implicit_mask(inputs)
    if implicit is not None:
        return ops.cast(implicit, "bool")
    return None
