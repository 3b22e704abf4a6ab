"""Fixed sinusoidal position encoding."""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_transformer")
class SinusoidalPositionEncoding(keras.layers.Layer):
    """Fixed sin/cos position encoding of "Attention Is All You Need".

    For position `p` and feature pair `i` of a model of size `D`:
    `PE[p, 2i] = sin(p / max_wavelength**(2i / D))` and
    `PE[p, 2i + 1] = cos(p / max_wavelength**(2i / D))` (even features hold
    sines, odd features cosines, interleaved). The layer has no weights and
    returns the encoding only; add it to the token embeddings yourself.

    Args:
        max_wavelength: float, default 10000 (the paper's). The longest
            wavelength of the sinusoids; must be greater than 1.
        **kwargs: standard `keras.layers.Layer` arguments (`name`,
            `dtype`, ...).

    Call arguments:
        inputs: float tensor [B, T, D] (only its shape is used).
        start_index: int or scalar int tensor, default 0. The position of
            the first step; used when decoding one step at a time from a
            cache.

    Returns:
        A tensor with the shape of `inputs`, [B, T, D], in the layer's compute
        dtype.

    Example:
    >>> import numpy as np
    >>> import keras_transformer
    >>> x = np.zeros((2, 5, 8), "float32")
    >>> layer = keras_transformer.layers.SinusoidalPositionEncoding()
    >>> tuple((x + layer(x)).shape)
    (2, 5, 8)
    >>> [round(float(v), 4) for v in layer(x)[0, 1, :2]]  # sin(1), cos(1)
    [0.8415, 0.5403]

    References:
        Vaswani et al., "Attention Is All You Need", 2017, section 3.5.
    """

    def __init__(self, max_wavelength=10000, **kwargs):
        super().__init__(**kwargs)
        if (
            isinstance(max_wavelength, bool)
            or not isinstance(max_wavelength, (int, float))
            or max_wavelength <= 1
        ):
            raise ValueError(
                "`max_wavelength` must be a number greater than 1. "
                f"Received: max_wavelength={max_wavelength!r}"
            )
        self.max_wavelength = max_wavelength
        # Passes any input mask through unchanged.
        self.supports_masking = True
        self.built = True

    def call(self, inputs, start_index=0):
        shape = ops.shape(inputs)
        length, dim = shape[-2], shape[-1]
        positions = ops.cast(
            ops.arange(length) + ops.cast(start_index, "int32"), "float32"
        )
        features = ops.arange(dim)
        # Pair index i = feature // 2; both features of a pair share a rate.
        pair = ops.cast(features // 2, "float32")
        rates = ops.exp(
            -math.log(self.max_wavelength)
            * 2.0
            * pair
            / ops.cast(dim, "float32")
        )
        # [T, 1] * [1, D] -> [T, D]
        angles = ops.expand_dims(positions, 1) * ops.expand_dims(rates, 0)
        is_even = ops.equal(features % 2, 0)
        encoding = ops.where(is_even, ops.sin(angles), ops.cos(angles))
        encoding = ops.cast(encoding, self.compute_dtype)
        return ops.broadcast_to(encoding, shape)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"max_wavelength": self.max_wavelength})
        return config
