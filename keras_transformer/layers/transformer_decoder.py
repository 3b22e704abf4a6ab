"""Transformer decoder block (GPT-style or with cross-attention)."""

import keras
from keras import ops

from keras_transformer.layers import masks
from keras_transformer.layers._block import TransformerBlock, layer_norm


@keras.saving.register_keras_serializable(package="keras_transformer")
class TransformerDecoder(TransformerBlock):
    """One Transformer decoder block.

    Causal self-attention, then (only when the block is built with an
    encoder sequence) cross-attention over the encoder output, then a
    feed-forward network; each with a residual connection and post-LN or
    pre-LN layer normalization. Called without `encoder_sequence` the block
    is a decoder-only (GPT-style) block. Cross-attention is masked with the
    ENCODER padding mask.

    For incremental decoding pass a self-attention cache [B, 2, S, N, H]
    with `self_attention_cache_update_index` (the block then returns the
    updated cache), and a cross-attention cache from
    `compute_cross_attention_cache(encoder_sequence)` instead of recomputing
    the encoder keys and values every step.

    Args:
        intermediate_dim: int, the hidden size of the feed-forward network.
        num_heads: int, the number of attention heads N; must divide D.
        dropout: float, default 0.0. Dropout rate of the attention
            probabilities and of the sublayer outputs before the residual
            additions.
        activation: str or callable, default `"relu"`. Activation of the
            feed-forward network, e.g. `"relu"` or `"gelu"`.
        layer_norm_epsilon: float, default 1e-5. Epsilon of the layer
            normalizations.
        normalize_first: bool, default False. Pre-LN if True, post-LN if
            False.
        kernel_initializer: str or `keras.initializers.Initializer`,
            default `"glorot_uniform"`. Initializer of the dense kernels.
        bias_initializer: str or `keras.initializers.Initializer`, default
            `"zeros"`. Initializer of the dense biases.
        intermediate_dropout: float, default 0.0 (as in the paper and
            BERT). Dropout rate of the feed-forward hidden layer
            (tensor2tensor's "relu dropout"). Drawing that
            [B, T, intermediate_dim] mask costs about 6% of a CPU training
            step.
        **kwargs: standard `keras.layers.Layer` arguments (`name`,
            `dtype`, ...).

    Call arguments:
        decoder_sequence: float tensor [B, T, D].
        encoder_sequence: float tensor [B, S, D_enc] or None, default None.
            The encoder output that cross-attention reads (None for a
            decoder-only block).
        decoder_padding_mask: bool tensor [B, T] or None, default None (then
            the Keras mask of `decoder_sequence`).
        encoder_padding_mask: bool tensor [B, S] or None, default None (then
            the Keras mask of `encoder_sequence`).
        use_causal_mask: bool, default True. Whether self-attention is
            causal.
        self_attention_cache: float tensor [B, 2, L, N, H] or None, default
            None. The self-attention key/value buffer (see
            `empty_self_attention_cache`).
        self_attention_cache_update_index: int, scalar int tensor or None,
            default None. Where the T new positions go in the cache.
        cross_attention_cache: float tensor [B, 2, S, N, H] or None,
            default None. From `compute_cross_attention_cache`.
        training: bool or None, default None. Whether dropout is active.

    Returns:
        The decoded sequence [B, T, D], or `(sequence, self_attention_cache
        [B, 2, L, N, H])` when a self-attention cache is given.

    Example:
    >>> import numpy as np
    >>> import keras_transformer
    >>> block = keras_transformer.layers.TransformerDecoder(
    ...     intermediate_dim=32, num_heads=2)
    >>> x = np.random.rand(2, 5, 16).astype("float32")
    >>> memory = np.random.rand(2, 7, 16).astype("float32")
    >>> tuple(block(x, memory).shape)
    (2, 5, 16)

    A decoder-only block decoding step by step from a cache gives the
    outputs of the full causal pass:

    >>> gpt_block = keras_transformer.layers.TransformerDecoder(
    ...     intermediate_dim=32, num_heads=2)
    >>> full = gpt_block(x)
    >>> cache = keras_transformer.layers.empty_self_attention_cache(
    ...     batch_size=2, max_length=5, num_heads=2, head_dim=8)
    >>> steps = []
    >>> for t in range(5):
    ...     out, cache = gpt_block(x[:, t : t + 1], self_attention_cache=cache,
    ...                            self_attention_cache_update_index=t)
    ...     steps.append(out)
    >>> bool(np.allclose(np.concatenate(steps, axis=1), full, atol=1e-5))
    True

    References:
        Vaswani et al., "Attention Is All You Need", 2017.
    """

    def build(self, decoder_sequence_shape, encoder_sequence_shape=None):
        dim = decoder_sequence_shape[-1]
        self.check_model_size(dim)
        self.head_dim = dim // self.num_heads
        self.self_attention = self.make_attention("self_attention")
        self.self_attention.build(decoder_sequence_shape)
        self.self_attention_norm = layer_norm(self, "self_attention_norm")
        self.self_attention_norm.build(decoder_sequence_shape)
        self.self_attention_dropout = self.make_dropout(
            "self_attention_dropout"
        )

        self.has_cross_attention = encoder_sequence_shape is not None
        if self.has_cross_attention:
            self.cross_attention = self.make_attention("cross_attention")
            self.cross_attention.build(
                decoder_sequence_shape, encoder_sequence_shape
            )
            self.cross_attention_norm = layer_norm(self, "cross_attention_norm")
            self.cross_attention_norm.build(decoder_sequence_shape)
            self.cross_attention_dropout = self.make_dropout(
                "cross_attention_dropout"
            )

        self.feed_forward = self.make_feed_forward()
        self.feed_forward.build(decoder_sequence_shape)
        self.feed_forward_norm = layer_norm(self, "feed_forward_norm")
        self.feed_forward_norm.build(decoder_sequence_shape)
        self.feed_forward_dropout = self.make_dropout("feed_forward_dropout")
        self.built = True

    def compute_cross_attention_cache(self, encoder_sequence):
        """Precomputes the cross-attention keys and values.

        Only for a block built with an encoder sequence. Pass the result as
        `cross_attention_cache` at every decoding step.

        Args:
            encoder_sequence: float tensor [B, S, D_enc], the encoder
                output.

        Returns:
            Keys and values stacked as [B, 2, S, N, H].

        Example:
        >>> import numpy as np
        >>> import keras_transformer
        >>> block = keras_transformer.layers.TransformerDecoder(32, 2)
        >>> x = np.random.rand(1, 3, 16).astype("float32")
        >>> memory = np.random.rand(1, 7, 16).astype("float32")
        >>> full = block(x, memory)
        >>> cache = block.compute_cross_attention_cache(memory)
        >>> tuple(cache.shape)
        (1, 2, 7, 2, 8)
        >>> cached = block(x, cross_attention_cache=cache)
        >>> bool(np.allclose(cached, full, atol=1e-5))
        True
        """
        if not self.has_cross_attention:
            raise ValueError(
                f"The decoder block '{self.name}' was built without an "
                "encoder sequence and has no cross-attention. Received: "
                "a request for a cross-attention cache"
            )
        return self.cross_attention.compute_key_value(encoder_sequence)

    def _sublayer(self, x, norm, dropout, fn, training):
        residual = x
        if self.normalize_first:
            x = norm(x)
        x = fn(x)
        x = residual + dropout(x, training=training)
        if not self.normalize_first:
            x = norm(x)
        return x

    def call(
        self,
        decoder_sequence,
        encoder_sequence=None,
        decoder_padding_mask=None,
        encoder_padding_mask=None,
        use_causal_mask=True,
        self_attention_cache=None,
        self_attention_cache_update_index=None,
        cross_attention_cache=None,
        training=None,
    ):
        uses_cross = (
            encoder_sequence is not None or cross_attention_cache is not None
        )
        if uses_cross and not self.has_cross_attention:
            raise ValueError(
                f"The decoder block '{self.name}' was built without "
                "cross-attention (no encoder sequence at build time). "
                "Received: encoder_sequence or cross_attention_cache"
            )
        if self.has_cross_attention and not uses_cross:
            raise ValueError(
                f"The decoder block '{self.name}' has cross-attention and "
                "needs `encoder_sequence` or `cross_attention_cache`. "
                "Received: encoder_sequence=None"
            )
        if self_attention_cache is None:
            decoder_padding_mask = masks.resolve_padding_mask(
                decoder_sequence, decoder_padding_mask
            )
        new_cache = []

        def self_attend(x):
            if self_attention_cache is None:
                return self.self_attention(
                    x,
                    padding_mask=decoder_padding_mask,
                    use_causal_mask=use_causal_mask,
                    training=training,
                )
            out, cache = self.self_attention(
                x,
                padding_mask=decoder_padding_mask,
                use_causal_mask=use_causal_mask,
                cache=self_attention_cache,
                cache_update_index=self_attention_cache_update_index,
                training=training,
            )
            new_cache.append(cache)
            return out

        x = self._sublayer(
            decoder_sequence,
            self.self_attention_norm,
            self.self_attention_dropout,
            self_attend,
            training,
        )

        if self.has_cross_attention:
            if cross_attention_cache is None:
                encoder_padding_mask = masks.resolve_padding_mask(
                    encoder_sequence, encoder_padding_mask
                )

            def cross_attend(y):
                return self.cross_attention(
                    y,
                    encoder_sequence,
                    padding_mask=encoder_padding_mask,
                    cache=cross_attention_cache,
                    training=training,
                )

            x = self._sublayer(
                x,
                self.cross_attention_norm,
                self.cross_attention_dropout,
                cross_attend,
                training,
            )

        x = self._sublayer(
            x,
            self.feed_forward_norm,
            self.feed_forward_dropout,
            lambda y: self.feed_forward(y, training=training),
            training,
        )
        if self_attention_cache is not None:
            return x, new_cache[0]
        return x

    def compute_mask(self, decoder_sequence, *args, **kwargs):
        return masks.get_implicit_mask(decoder_sequence)

    def compute_output_shape(
        self, decoder_sequence_shape, encoder_sequence_shape=None
    ):
        return decoder_sequence_shape

    def compute_output_spec(
        self,
        decoder_sequence,
        encoder_sequence=None,
        decoder_padding_mask=None,
        encoder_padding_mask=None,
        use_causal_mask=True,
        self_attention_cache=None,
        **kwargs,
    ):
        output = keras.KerasTensor(
            decoder_sequence.shape, dtype=self.compute_dtype
        )
        if self_attention_cache is None:
            return output
        cache = keras.KerasTensor(
            self_attention_cache.shape, dtype=self_attention_cache.dtype
        )
        return output, cache


def empty_self_attention_cache(
    batch_size, max_length, num_heads, head_dim, dtype="float32"
):
    """Returns a zero self-attention cache for `TransformerDecoder`.

    Args:
        batch_size: int or scalar int tensor, the batch size B.
        max_length: int, the number of positions L the cache holds.
        num_heads: int, the number of attention heads N of the block.
        head_dim: int, the size of each head H (D // N).
        dtype: str, default `"float32"`. The cache dtype (the block's
            compute dtype, e.g. `"float16"` under `mixed_float16`).

    Returns:
        A zero tensor [B, 2, L, N, H]: keys at index 0 and values at index 1
        of axis 1.

    Example:
    >>> import keras_transformer
    >>> cache = keras_transformer.layers.empty_self_attention_cache(
    ...     batch_size=2, max_length=10, num_heads=4, head_dim=8)
    >>> tuple(cache.shape)
    (2, 2, 10, 4, 8)
    """
    return ops.zeros(
        (batch_size, 2, max_length, num_heads, head_dim), dtype=dtype
    )
