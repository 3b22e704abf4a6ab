"""Pieces shared by the encoder and decoder blocks (private)."""

import keras

from keras_transformer.layers._utils import (
    check_activation,
    check_positive_int,
    check_rate,
)


def validate_block_args(
    intermediate_dim, num_heads, dropout, activation, layer_norm_epsilon
):
    check_positive_int("intermediate_dim", intermediate_dim)
    check_positive_int("num_heads", num_heads)
    check_rate("dropout", dropout)
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
    """Position-wise two-layer feed-forward network (private helper)."""

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


def layer_norm(block, name):
    return keras.layers.LayerNormalization(
        epsilon=block.layer_norm_epsilon, dtype=block.dtype_policy, name=name
    )
