"""Averaging the class probabilities of several classifiers."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_transformer")
class ProbabilityAverage(keras.layers.Layer):
    """Logits whose softmax is the mean of the inputs' softmaxes.

    Takes a list of logit tensors [B, C] (one per member of an ensemble)
    and returns `log(mean_k softmax(logits_k))` [B, C] in float32. A
    softmax of the result gives the averaged probabilities exactly (they
    already sum to one), so an ensemble built with this layer is used like
    any single classifier that returns logits. The layer has no weights and
    computes in float32 whatever the dtype policy (`dtype` defaults to
    `"float32"`).

    Args:
        **kwargs: standard `keras.layers.Layer` arguments (`name`,
            `dtype`, ...).

    Call arguments:
        inputs: list of two or more float tensors [B, C], one per member.

    Returns:
        float32 logits [B, C]: `log(mean_k softmax(inputs[k]))`.

    Example:
    >>> import numpy as np
    >>> import keras
    >>> import keras_transformer
    >>> average = keras_transformer.layers.ProbabilityAverage()
    >>> a = np.log(np.array([[0.8, 0.2]], "float32"))
    >>> b = np.log(np.array([[0.4, 0.6]], "float32"))
    >>> np.exp(keras.ops.convert_to_numpy(average([a, b]))).round(3)
    array([[0.6, 0.4]], dtype=float32)
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
            raise ValueError(
                "ProbabilityAverage takes a list of two or more logit "
                f"tensors. Received: {type(inputs).__name__}"
            )
        # Each [B, C] -> log-softmax [B, C]; stacked [K, B, C].
        log_probabilities = ops.stack(
            [ops.log_softmax(ops.cast(x, "float32"), axis=-1) for x in inputs]
        )
        count = ops.log(ops.cast(len(inputs), "float32"))
        # log(mean_k p_k) = logsumexp_k(log p_k) - log K, stable.
        return ops.logsumexp(log_probabilities, axis=0) - count  # [B, C]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])
