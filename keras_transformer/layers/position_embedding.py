"""Learned position embedding."""

import keras
from keras import ops

from keras_transformer.layers._utils import check_positive_int


@keras.saving.register_keras_serializable(package="keras_transformer")
class PositionEmbedding(keras.layers.Layer):
    """Learned position embedding with one trainable vector per position.

    Args:
        sequence_length: int, the largest number of positions the layer can
            embed.
        initializer: str or `keras.initializers.Initializer`, default
            `"glorot_uniform"`. Initializer of the [sequence_length, D]
            table.
        **kwargs: standard `keras.layers.Layer` arguments (`name`,
            `dtype`, ...).

    Call arguments:
        inputs: float tensor [B, T, D]; its shape selects the positions and
            the feature size D (its values are not used).
        start_index: int or scalar int tensor, default 0. The position of
            the first step (for cached decoding).

    Returns:
        The position embeddings broadcast to the shape of `inputs`, [B, T, D].

    Example:
    >>> import numpy as np
    >>> import keras_transformer
    >>> layer = keras_transformer.layers.PositionEmbedding(sequence_length=16)
    >>> tuple(layer(np.zeros((2, 5, 8), "float32")).shape)
    (2, 5, 8)
    """

    def __init__(self, sequence_length, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        check_positive_int("sequence_length", sequence_length)
        self.sequence_length = sequence_length
        self.initializer = keras.initializers.get(initializer)
        # Passes any input mask through unchanged.
        self.supports_masking = True

    def build(self, inputs_shape):
        dim = inputs_shape[-1]
        if dim is None:
            raise ValueError(
                "The last dimension of the inputs to `PositionEmbedding` "
                f"must be known. Received: inputs_shape={inputs_shape}"
            )
        self.position_embeddings = self.add_weight(
            name="embeddings",
            shape=(self.sequence_length, dim),
            initializer=self.initializer,
            trainable=True,
        )
        self.built = True

    def call(self, inputs, start_index=0):
        shape = ops.shape(inputs)
        length = shape[-2]
        if isinstance(length, int) and length > self.sequence_length:
            raise ValueError(
                "The input sequence is longer than the layer's "
                f"`sequence_length` ({self.sequence_length}). Received: "
                f"sequence length={length}"
            )
        table = ops.convert_to_tensor(self.position_embeddings)
        # [sequence_length, D] -> [T, D]
        table = ops.slice(
            table,
            (ops.cast(start_index, "int32"), 0),
            (length, ops.shape(table)[-1]),
        )
        return ops.broadcast_to(ops.cast(table, self.compute_dtype), shape)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sequence_length": self.sequence_length,
                "initializer": keras.initializers.serialize(self.initializer),
            }
        )
        return config
