"""Transformer encoder block."""

import keras

from keras_transformer.layers import masks
from keras_transformer.layers._block import (
    FeedForward,
    layer_norm,
    validate_block_args,
)
from keras_transformer.layers.multi_head_attention import MultiHeadAttention


@keras.saving.register_keras_serializable(package="keras_transformer")
class TransformerEncoder(keras.layers.Layer):
    """One Transformer encoder block: self-attention then feed-forward.

    Each sublayer has a residual connection and layer normalization, applied
    after the residual sum (post-LN, the original Transformer and BERT) or
    before the sublayer (pre-LN, `normalize_first=True`, as in GPT-2, which
    trains more stably without warmup). The model size D is taken from the
    inputs.

    Args:
        intermediate_dim: hidden size of the feed-forward network.
        num_heads: number of attention heads; must divide D.
        dropout: dropout rate for attention probabilities, sublayer outputs
            and the feed-forward hidden layer.
        activation: activation of the feed-forward network (name or
            callable), e.g. `"relu"` or `"gelu"`.
        layer_norm_epsilon: epsilon of the layer normalizations.
        normalize_first: pre-LN if True, post-LN if False.
        kernel_initializer: initializer of the dense kernels.
        bias_initializer: initializer of the dense biases.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: [B, T, D] sequence.
        padding_mask: optional boolean [B, T], True for real tokens. Defaults
            to the Keras mask of `inputs`.
        attention_mask: optional boolean [B, T, T].
        training: whether dropout is active.
        return_attention_scores: also return the attention probabilities
            [B, N, T, T].

    Returns:
        The encoded sequence [B, T, D] (and the scores when requested).

    Example:
    >>> import numpy as np
    >>> import keras_transformer
    >>> block = keras_transformer.layers.TransformerEncoder(
    ...     intermediate_dim=32, num_heads=2)
    >>> block(np.random.rand(2, 5, 16).astype("float32")).shape
    (2, 5, 16)

    References:
        Vaswani et al., "Attention Is All You Need", 2017.
        Xiong et al., "On Layer Normalization in the Transformer
        Architecture", 2020 (pre-LN).
    """

    def __init__(
        self,
        intermediate_dim,
        num_heads,
        dropout=0.0,
        activation="relu",
        layer_norm_epsilon=1e-5,
        normalize_first=False,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        validate_block_args(
            intermediate_dim, num_heads, dropout, activation, layer_norm_epsilon
        )
        self.intermediate_dim = intermediate_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.activation = keras.activations.get(activation)
        self.layer_norm_epsilon = layer_norm_epsilon
        self.normalize_first = normalize_first
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.supports_masking = True

    def build(self, inputs_shape):
        dim = inputs_shape[-1]
        if dim is None or dim % self.num_heads != 0:
            raise ValueError(
                f"`num_heads` must divide the model size ({dim}). "
                f"Received: num_heads={self.num_heads}"
            )
        self.self_attention = MultiHeadAttention(
            self.num_heads,
            dropout=self.dropout,
            kernel_initializer=self.kernel_initializer,
            bias_initializer=self.bias_initializer,
            dtype=self.dtype_policy,
            name="self_attention",
        )
        self.self_attention.build(inputs_shape)
        self.attention_norm = layer_norm(self, "self_attention_norm")
        self.attention_norm.build(inputs_shape)
        self.attention_dropout = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="self_attention_dropout"
        )
        self.feed_forward = FeedForward(
            self.intermediate_dim,
            self.activation,
            self.dropout,
            self.kernel_initializer,
            self.bias_initializer,
            dtype=self.dtype_policy,
            name="feed_forward",
        )
        self.feed_forward.build(inputs_shape)
        self.feed_forward_norm = layer_norm(self, "feed_forward_norm")
        self.feed_forward_norm.build(inputs_shape)
        self.feed_forward_dropout = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="feed_forward_dropout"
        )
        self.built = True

    def call(
        self,
        inputs,
        padding_mask=None,
        attention_mask=None,
        training=None,
        return_attention_scores=False,
    ):
        padding_mask = masks.resolve_padding_mask(inputs, padding_mask)
        x = inputs
        residual = x
        if self.normalize_first:
            x = self.attention_norm(x)
        x, scores = self.self_attention(
            x,
            padding_mask=padding_mask,
            attention_mask=attention_mask,
            return_attention_scores=True,
            training=training,
        )
        x = residual + self.attention_dropout(x, training=training)
        if not self.normalize_first:
            x = self.attention_norm(x)

        residual = x
        if self.normalize_first:
            x = self.feed_forward_norm(x)
        x = self.feed_forward(x, training=training)
        x = residual + self.feed_forward_dropout(x, training=training)
        if not self.normalize_first:
            x = self.feed_forward_norm(x)
        if return_attention_scores:
            return x, scores
        return x

    def compute_mask(self, inputs, mask=None):
        return masks.get_implicit_mask(inputs)

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def compute_output_spec(
        self,
        inputs,
        padding_mask=None,
        attention_mask=None,
        training=None,
        return_attention_scores=False,
    ):
        output = keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)
        if not return_attention_scores:
            return output
        b, t = inputs.shape[0], inputs.shape[1]
        scores = keras.KerasTensor(
            (b, self.num_heads, t, t), dtype=self.compute_dtype
        )
        return output, scores

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "intermediate_dim": self.intermediate_dim,
                "num_heads": self.num_heads,
                "dropout": self.dropout,
                "activation": keras.activations.serialize(self.activation),
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "normalize_first": self.normalize_first,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer
                ),
            }
        )
        return config
