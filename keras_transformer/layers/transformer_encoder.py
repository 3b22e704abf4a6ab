"""Transformer encoder block."""

import keras

from keras_transformer.layers import masks
from keras_transformer.layers._block import TransformerBlock, layer_norm


@keras.saving.register_keras_serializable(package="keras_transformer")
class TransformerEncoder(TransformerBlock):
    """One Transformer encoder block: self-attention then feed-forward.

    Each sublayer has a residual connection and layer normalization, applied
    after the residual sum (post-LN, the original Transformer and BERT) or
    before the sublayer (pre-LN, `normalize_first=True`, as in GPT-2, which
    trains more stably without warmup). The model size D is taken from the
    inputs.

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
        inputs: float tensor [B, T, D], the sequence.
        padding_mask: bool tensor [B, T] or None, default None (then the
            Keras mask of `inputs`). True for real tokens.
        attention_mask: bool tensor [B, T, T] or None, default None.
        training: bool or None, default None. Whether dropout is active.
        return_attention_scores: bool, default False. Also return the
            attention probabilities [B, N, T, T].

    Returns:
        The encoded sequence [B, T, D], or `(sequence, scores [B, N, T, T])`
        when `return_attention_scores`.

    Example:
    >>> import numpy as np
    >>> import keras_transformer
    >>> block = keras_transformer.layers.TransformerEncoder(
    ...     intermediate_dim=32, num_heads=2)
    >>> x = np.random.rand(2, 5, 16).astype("float32")
    >>> tuple(block(x).shape)
    (2, 5, 16)
    >>> _, scores = block(x, padding_mask=np.array([[1, 1, 1, 0, 0]] * 2),
    ...                   return_attention_scores=True)
    >>> float(scores[0, 0, 0, 3])  # padded keys get no attention
    0.0

    References:
        Vaswani et al., "Attention Is All You Need", 2017.
        Xiong et al., "On Layer Normalization in the Transformer
        Architecture", 2020 (pre-LN).
    """

    def build(self, inputs_shape):
        self.check_model_size(inputs_shape[-1])
        self.self_attention = self.make_attention("self_attention")
        self.self_attention.build(inputs_shape)
        self.attention_norm = layer_norm(self, "self_attention_norm")
        self.attention_norm.build(inputs_shape)
        self.attention_dropout = self.make_dropout("self_attention_dropout")
        self.feed_forward = self.make_feed_forward()
        self.feed_forward.build(inputs_shape)
        self.feed_forward_norm = layer_norm(self, "feed_forward_norm")
        self.feed_forward_norm.build(inputs_shape)
        self.feed_forward_dropout = self.make_dropout("feed_forward_dropout")
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
