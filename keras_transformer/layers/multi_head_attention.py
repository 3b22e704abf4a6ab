"""Multi-head attention with fused projections and a static key/value cache."""

import math

import keras
from keras import ops

from keras_transformer.layers import masks
from keras_transformer.layers._utils import check_positive_int, check_rate


@keras.saving.register_keras_serializable(package="keras_transformer")
class MultiHeadAttention(keras.layers.Layer):
    """Multi-head scaled dot-product attention.

    Self-attention (no `value` given) projects queries, keys and values with a
    single fused einsum; cross-attention projects the queries with one einsum
    and the keys and values with a second fused one. Scores and softmax are
    computed in float32 whatever the dtype policy. The layer decides at build
    time whether it is a self- or a cross-attention layer.

    Incremental decoding uses a static-shape cache of shape [B, 2, S, N, H]
    (keys at index 0, values at index 1 of axis 1):

    - self-attention: pass `cache` and `cache_update_index`; the keys and
      values of the T new query positions are written at
      `cache_update_index ... cache_update_index + T - 1` and the queries
      attend over the whole buffer (use `use_causal_mask=True` so that unused
      slots are masked). The updated cache is returned.
    - cross-attention: build the cache once with `compute_key_value(value)`
      and pass it as `cache` with `cache_update_index=None`; keys and values
      are then read from the cache and `value` may be omitted.

    Args:
        num_heads: int, the number of attention heads N.
        key_dim: int or None, default None (then `D // num_heads`, and
            `num_heads` must divide the query feature size D). The size of
            each head H.
        dropout: float, default 0.0. Dropout rate on the attention
            probabilities.
        use_bias: bool, default True. Whether the projections have biases.
        output_dim: int or None, default None (then D). The feature size of
            the output.
        kernel_initializer: str or `keras.initializers.Initializer`,
            default `"glorot_uniform"`. Initializer of the projection
            kernels.
        bias_initializer: str or `keras.initializers.Initializer`, default
            `"zeros"`. Initializer of the projection biases.
        **kwargs: standard `keras.layers.Layer` arguments (`name`,
            `dtype`, ...).

    Call arguments:
        query: float tensor [B, T, D], the queries.
        value: float tensor [B, S, D_kv] or None, default None. The keys
            and values of cross-attention (None for self-attention).
        padding_mask: bool tensor [B, S] or None, default None (then the
            Keras mask of `value`, or of `query` for self-attention). True
            for real key tokens.
        attention_mask: bool tensor [B, T, S] or None, default None.
        use_causal_mask: bool, default False. Whether query t may only
            attend to keys <= t.
        return_attention_scores: bool, default False. Also return the
            attention probabilities [B, N, T, S].
        cache: float tensor [B, 2, S, N, H] or None, default None. The
            key/value cache (see above).
        cache_update_index: int, scalar int tensor or None, default None.
            Where to write the new self-attention keys/values in the cache.
        training: bool or None, default None. Whether dropout is active.

    Returns:
        The attention output [B, T, output_dim]; then, in this order and only
        when requested, the probabilities [B, N, T, S] and (self-attention
        with a cache only) the updated cache [B, 2, S, N, H].

    Example:
    >>> import numpy as np
    >>> import keras_transformer
    >>> mha = keras_transformer.layers.MultiHeadAttention(num_heads=2)
    >>> x = np.random.rand(2, 5, 16).astype("float32")
    >>> output, scores = mha(x, use_causal_mask=True,
    ...                      return_attention_scores=True)
    >>> tuple(output.shape), tuple(scores.shape)
    ((2, 5, 16), (2, 2, 5, 5))
    >>> cross = keras_transformer.layers.MultiHeadAttention(num_heads=2)
    >>> memory = np.random.rand(2, 7, 12).astype("float32")
    >>> tuple(cross(x, memory).shape)
    (2, 5, 16)

    References:
        Vaswani et al., "Attention Is All You Need", 2017, section 3.2.
    """

    def __init__(
        self,
        num_heads,
        key_dim=None,
        dropout=0.0,
        use_bias=True,
        output_dim=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_int("num_heads", num_heads)
        check_positive_int("key_dim", key_dim, allow_none=True)
        check_positive_int("output_dim", output_dim, allow_none=True)
        check_rate("dropout", dropout)
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.dropout = dropout
        self.use_bias = use_bias
        self.output_dim = output_dim
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.supports_masking = True

    def _dense(self, equation, output_shape, bias_axes, name):
        dense = keras.layers.EinsumDense(
            equation,
            output_shape=output_shape,
            bias_axes=bias_axes if self.use_bias else None,
            kernel_initializer=self.kernel_initializer,
            bias_initializer=self.bias_initializer,
            dtype=self.dtype_policy,
            name=name,
        )
        # Masks are handled by this layer; let them pass silently.
        dense.supports_masking = True
        return dense

    def build(self, query_shape, value_shape=None):
        model_dim = query_shape[-1]
        if self.key_dim is None and model_dim % self.num_heads != 0:
            raise ValueError(
                "`num_heads` must divide the model size "
                f"({model_dim}) when `key_dim` is not given. "
                f"Received: num_heads={self.num_heads}"
            )
        self.head_dim = self.key_dim or model_dim // self.num_heads
        n, h = self.num_heads, self.head_dim
        self.is_cross_attention = value_shape is not None
        if self.is_cross_attention:
            self.query_dense = self._dense(
                "btd,dnh->btnh", (None, n, h), "nh", "query"
            )
            self.query_dense.build(query_shape)
            self.key_value_dense = self._dense(
                "bsd,dknh->bsknh", (None, 2, n, h), "knh", "key_value"
            )
            self.key_value_dense.build(value_shape)
        else:
            self.qkv_dense = self._dense(
                "btd,dknh->btknh", (None, 3, n, h), "knh", "query_key_value"
            )
            self.qkv_dense.build(query_shape)
        self.output_dense = self._dense(
            "btnh,nhd->btd",
            (None, self.output_dim or model_dim),
            "d",
            "attention_output",
        )
        self.output_dense.build(tuple(query_shape[:-1]) + (n, h))
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="attention_dropout"
        )
        self.built = True

    def compute_key_value(self, value):
        """Projects `value` to a cross-attention cache.

        Only for a cross-attention layer (built with a `value`). Pass the
        result as `cache` (with `cache_update_index=None`) to attend over
        `value` without projecting it again.

        Args:
            value: float tensor [B, S, D_kv], the cross-attention source.

        Returns:
            Keys and values stacked as [B, 2, S, N, H].

        Example:
        >>> import numpy as np
        >>> import keras_transformer
        >>> cross = keras_transformer.layers.MultiHeadAttention(num_heads=2)
        >>> x = np.random.rand(1, 3, 8).astype("float32")
        >>> memory = np.random.rand(1, 4, 8).astype("float32")
        >>> full = cross(x, memory)
        >>> cache = cross.compute_key_value(memory)
        >>> tuple(cache.shape)
        (1, 2, 4, 2, 4)
        >>> bool(np.allclose(cross(x, cache=cache), full, atol=1e-6))
        True
        """
        if not self.is_cross_attention:
            raise ValueError(
                "`compute_key_value` is only available on a cross-attention "
                f"layer. Received: layer name={self.name}"
            )
        # [B, S, D] -> [B, S, 2, N, H] -> [B, 2, S, N, H]
        return ops.transpose(self.key_value_dense(value), (0, 2, 1, 3, 4))

    def call(
        self,
        query,
        value=None,
        padding_mask=None,
        attention_mask=None,
        use_causal_mask=False,
        return_attention_scores=False,
        cache=None,
        cache_update_index=None,
        training=None,
    ):
        if self.is_cross_attention:
            # [B, T, D] -> [B, T, N, H]
            q = self.query_dense(query)
            if cache is not None:
                k, v = cache[:, 0], cache[:, 1]  # [B, S, N, H] each
            elif value is None:
                raise ValueError(
                    f"The cross-attention layer '{self.name}' needs `value` "
                    "or a precomputed `cache`. Received: value=None"
                )
            else:
                # [B, S, D_kv] -> [B, S, 2, N, H]
                kv = self.key_value_dense(value)
                # Unstack rather than index: without XLA, three strided
                # slices cost three scatter-into-zeros gradients (measured:
                # 17% of a CPU training step of the `small` translator).
                k, v = ops.unstack(kv, axis=2)
            key_source = value
        else:
            if value is not None:
                raise ValueError(
                    f"The layer '{self.name}' was built for self-attention "
                    "and takes no `value`. Received: value with shape "
                    f"{tuple(value.shape)}"
                )
            # [B, T, D] -> [B, T, 3, N, H]
            qkv = self.qkv_dense(query)
            q, k, v = ops.unstack(qkv, axis=2)  # see the cross branch
            key_source = query
            if cache is not None:
                if cache_update_index is None:
                    raise ValueError(
                        "A self-attention cache needs `cache_update_index`. "
                        "Received: cache_update_index=None"
                    )
                start = [0, 0, cache_update_index, 0, 0]
                # [B, T, N, H] -> [B, 2, T, N, H] written into [B, 2, S, N, H]
                new_kv = ops.stack((k, v), axis=1)
                cache = ops.slice_update(
                    cache, start, ops.cast(new_kv, cache.dtype)
                )
                k, v = cache[:, 0], cache[:, 1]

        query_length = ops.shape(q)[1]
        key_length = ops.shape(k)[1]
        if cache is not None and not self.is_cross_attention:
            # Keys come from the cache; the padding of `query` does not
            # describe them, so only explicit masks apply.
            padding = padding_mask
        elif key_source is None:
            padding = padding_mask
        else:
            padding = masks.resolve_padding_mask(key_source, padding_mask)
        mask = masks.merge_masks(
            query_length,
            key_length,
            padding_mask=padding,
            attention_mask=attention_mask,
            use_causal_mask=use_causal_mask,
            start_index=0 if cache_update_index is None else cache_update_index,
        )
        output, scores = self._attend(q, k, v, mask, training)
        outputs = (output,)
        if return_attention_scores:
            outputs += (scores,)
        if cache is not None and not self.is_cross_attention:
            outputs += (cache,)
        return outputs[0] if len(outputs) == 1 else outputs

    def _attend(self, q, k, v, mask, training):
        scale = 1.0 / math.sqrt(self.head_dim)
        # [B, T, N, H] x [B, S, N, H] -> [B, N, T, S]
        scores = ops.einsum("btnh,bsnh->bnts", q * ops.cast(scale, q.dtype), k)
        scores = ops.cast(scores, "float32")
        if mask is not None:
            # [B, T, S] -> [B, 1, T, S]
            mask = ops.expand_dims(mask, 1)
            scores = ops.where(mask, scores, ops.cast(-1e9, "float32"))
        probs = ops.softmax(scores, axis=-1)
        probs = ops.cast(probs, self.compute_dtype)
        dropped = self.dropout_layer(probs, training=training)
        # [B, N, T, S] x [B, S, N, H] -> [B, T, N, H]
        context = ops.einsum(
            "bnts,bsnh->btnh", dropped, ops.cast(v, probs.dtype)
        )
        # [B, T, N, H] -> [B, T, D]
        return self.output_dense(context), probs

    def compute_mask(self, query, value=None, **kwargs):
        return masks.get_implicit_mask(query)

    def compute_output_shape(self, query_shape, value_shape=None):
        dim = self.output_dim or query_shape[-1]
        return tuple(query_shape[:-1]) + (dim,)

    def compute_output_spec(
        self,
        query,
        value=None,
        padding_mask=None,
        attention_mask=None,
        use_causal_mask=False,
        return_attention_scores=False,
        cache=None,
        cache_update_index=None,
        training=None,
    ):
        shape = self.compute_output_shape(query.shape)
        output = keras.KerasTensor(shape, dtype=self.compute_dtype)
        outputs = (output,)
        if return_attention_scores:
            key_length = (
                cache.shape[2]
                if cache is not None
                else (value.shape[1] if value is not None else query.shape[1])
            )
            outputs += (
                keras.KerasTensor(
                    (
                        query.shape[0],
                        self.num_heads,
                        query.shape[1],
                        key_length,
                    ),
                    dtype=self.compute_dtype,
                ),
            )
        if cache is not None and not self.is_cross_attention:
            outputs += (keras.KerasTensor(cache.shape, dtype=cache.dtype),)
        return outputs[0] if len(outputs) == 1 else outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "dropout": self.dropout,
                "use_bias": self.use_bias,
                "output_dim": self.output_dim,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer
                ),
            }
        )
        return config
