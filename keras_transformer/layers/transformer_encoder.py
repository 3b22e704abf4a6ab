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
        intermediate_dim: hidden size of the feed-forward network.
        num_heads: number of attention heads; must divide D.
        dropout: dropout rate of the attention probabilities and of the
            sublayer outputs before the residual additions.
        activation: activation of the feed-forward network (name or
            callable), e.g. `"relu"` or `"gelu"`.
        layer_norm_epsilon: epsilon of the layer normalizations.
        normalize_first: pre-LN if True, post-LN if False.
        kernel_initializer: initializer of the dense kernels.
        bias_initializer: initializer of the dense biases.
        intermediate_dropout: dropout rate of the feed-forward hidden layer
            (default 0, as in the paper and BERT; tensor2tensor's "relu
            dropout"). Drawing that [B, T, intermediate_dim] mask costs
            about 6% of a CPU training step.
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
