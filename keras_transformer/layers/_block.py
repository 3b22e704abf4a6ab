"""Pieces shared by the encoder and decoder blocks (private)."""

import keras

from keras_transformer.layers._utils import (
    check_activation,
    check_positive_int,
    check_rate,
)


def validate_block_args(
    intermediate_dim,
    num_heads,
    dropout,
    activation,
    layer_norm_epsilon,
    intermediate_dropout=0.0,
):
    check_positive_int("intermediate_dim", intermediate_dim)
    check_positive_int("num_heads", num_heads)
    check_rate("dropout", dropout)
    check_rate("intermediate_dropout", intermediate_dropout)
    check_activation("activation", activation)
    if (
        isinstance(layer_norm_epsilon, bool)
        or not isinstance(layer_norm_epsilon, (int, float))
        or layer_norm_epsilon <= 0
    ):
        raise ValueError(
            "`layer_norm_epsilon` must be a positive float. "
            f"Received: layer_norm_epsilon={layer_norm_epsilon!r}"
        )


class FeedForward(keras.layers.Layer):
    """Position-wise two-layer feed-forward network (private helper).

    `dropout` applies to the hidden layer (tensor2tensor's "relu dropout");
    at rate 0 no random mask is drawn at all.
    """

    def __init__(
        self,
        intermediate_dim,
        activation,
        dropout,
        kernel_initializer,
        bias_initializer,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.intermediate_dim = intermediate_dim
        self.activation = activation
        self.dropout = dropout
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer

    def build(self, inputs_shape):
        dim = inputs_shape[-1]
        common = dict(
            kernel_initializer=self.kernel_initializer,
            bias_initializer=self.bias_initializer,
            dtype=self.dtype_policy,
        )
        self.intermediate = keras.layers.Dense(
            self.intermediate_dim,
            activation=self.activation,
            name="intermediate",
            **common,
        )
        self.intermediate.build(inputs_shape)
        self.inner_dropout = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="inner_dropout"
        )
        self.output_dense = keras.layers.Dense(dim, name="output", **common)
        self.output_dense.build(
            tuple(inputs_shape[:-1]) + (self.intermediate_dim,)
        )
        self.built = True

    def call(self, inputs, training=None):
        x = self.intermediate(inputs)
        x = self.inner_dropout(x, training=training)
        return self.output_dense(x)

    def compute_output_shape(self, inputs_shape):
        return inputs_shape


class TransformerBlock(keras.layers.Layer):
    """Arguments, validation and config shared by the encoder and decoder
    blocks (private base class)."""

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
        intermediate_dropout=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        validate_block_args(
            intermediate_dim,
            num_heads,
            dropout,
            activation,
            layer_norm_epsilon,
            intermediate_dropout,
        )
        self.intermediate_dim = intermediate_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.intermediate_dropout = intermediate_dropout
        self.activation = keras.activations.get(activation)
        self.layer_norm_epsilon = layer_norm_epsilon
        self.normalize_first = normalize_first
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.supports_masking = True

    def check_model_size(self, dim):
        if dim is None or dim % self.num_heads != 0:
            raise ValueError(
                f"`num_heads` must divide the model size ({dim}). "
                f"Received: num_heads={self.num_heads}"
            )

    def make_attention(self, name):
        from keras_transformer.layers.multi_head_attention import (
            MultiHeadAttention,
        )

        return MultiHeadAttention(
            self.num_heads,
            dropout=self.dropout,
            kernel_initializer=self.kernel_initializer,
            bias_initializer=self.bias_initializer,
            dtype=self.dtype_policy,
            name=name,
        )

    def make_feed_forward(self):
        return FeedForward(
            self.intermediate_dim,
            self.activation,
            self.intermediate_dropout,
            self.kernel_initializer,
            self.bias_initializer,
            dtype=self.dtype_policy,
            name="feed_forward",
        )

    def make_dropout(self, name):
        return keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name=name
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "intermediate_dim": self.intermediate_dim,
                "num_heads": self.num_heads,
                "dropout": self.dropout,
                "intermediate_dropout": self.intermediate_dropout,
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


def layer_norm(block, name):
    return keras.layers.LayerNormalization(
        epsilon=block.layer_norm_epsilon, dtype=block.dtype_policy, name=name
    )
