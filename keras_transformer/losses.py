"""Losses for token-level prediction with padding, and class balancing.

`BalancedSparseCategoricalCrossentropy` is the classifier's loss on
imbalanced classes: per-class weights and/or logit adjustment.

Why not Keras' own: `keras.losses.SparseCategoricalCrossentropy(
ignore_class=0)` computes the same per-real-token mean (tested) but has no
label smoothing, which Keras offers only on `CategoricalCrossentropy` with
one-hot `[B, T, V]` labels (a vocabulary-sized tensor per token); and under
`tf.distribute` it averages each replica's mean, not the global mean per
token, when padding falls unevenly across replicas.
"""

import keras
from keras import ops

from keras_transformer.layers._utils import check_rate


def masked_token_nll(y_true, y_pred, label_smoothing, from_logits):
    """Per-token cross-entropy in float32, [B, T] (private helper)."""
    y_pred = ops.cast(y_pred, "float32")
    if from_logits:
        log_probs = ops.log_softmax(y_pred, axis=-1)
    else:
        log_probs = ops.log(ops.clip(y_pred, 1e-12, 1.0))
    labels = ops.cast(y_true, "int32")
    # [B, T, V] gathered at the labels -> [B, T]
    nll = -ops.squeeze(
        ops.take_along_axis(log_probs, ops.expand_dims(labels, -1), axis=-1),
        -1,
    )
    if label_smoothing:
        # The smoothed target puts `label_smoothing` uniformly on all classes.
        uniform = -ops.mean(log_probs, axis=-1)
        nll = (1.0 - label_smoothing) * nll + label_smoothing * uniform
    return nll


def _global_token_count(count):
    """Sums a per-replica token count over all `tf.distribute` replicas.

    Each replica then returns `its loss sum / global token count`; Keras sums
    the replicas' gradients, so training under a strategy follows the same
    per-token mean as one device with the same global batch, however the
    padding falls across replicas. Without a strategy this is the identity.
    """
    if keras.backend.backend() != "tensorflow":
        return count
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return count
    return context.all_reduce(tf.distribute.ReduceOp.SUM, count)


@keras.saving.register_keras_serializable(package="keras_transformer")
class MaskedSparseCategoricalCrossentropy(keras.losses.Loss):
    """Sparse cross-entropy averaged over real (non-padding) tokens only.

    The loss is `sum(loss * weight) / sum(weight)` over every token of the
    batch, where weight is 0 for labels equal to `ignore_index` (and times
    `sample_weight` when given). This is the mean per real token, not the
    mean of per-row means, so short and long rows count per token.

    Args:
        label_smoothing: float in [0, 1), default 0.0. Probability mass
            spread uniformly over the vocabulary (0.1 in the paper).
        ignore_index: int or None, default 0. Label id not scored
            (padding); None scores every token.
        from_logits: bool, default True. Whether `y_pred` holds logits
            (else probabilities).
        name: str, default `"masked_sparse_categorical_crossentropy"`.
        **kwargs: other `keras.losses.Loss` arguments, such as `dtype`.

    Call arguments:
        y_true: int labels [B, T].
        y_pred: logits or probabilities [B, T, V].
        sample_weight: optional weights [B, T] or [B].

    Returns:
        A float32 scalar.

    Example:

    >>> import numpy as np
    >>> loss = keras_transformer.losses.MaskedSparseCategoricalCrossentropy()
    >>> logits = np.zeros((1, 2, 5))  # uniform over 5 ids
    >>> round(float(loss(np.array([[3, 0]]), logits)), 4)  # log(5)
    1.6094

    References:
        Szegedy et al., "Rethinking the Inception Architecture", 2016
        (label smoothing).
    """

    def __init__(
        self,
        label_smoothing=0.0,
        ignore_index=0,
        from_logits=True,
        name="masked_sparse_categorical_crossentropy",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        check_rate("label_smoothing", label_smoothing)
        self.label_smoothing = float(label_smoothing)
        self.ignore_index = ignore_index
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        return masked_token_nll(
            y_true, y_pred, self.label_smoothing, self.from_logits
        )

    def __call__(self, y_true, y_pred, sample_weight=None):
        nll = self.call(y_true, y_pred)
        weights = ops.ones_like(nll)
        if self.ignore_index is not None:
            weights = ops.cast(
                ops.not_equal(ops.cast(y_true, "int32"), self.ignore_index),
                "float32",
            )
        if sample_weight is not None:
            sample_weight = ops.cast(sample_weight, "float32")
            if len(sample_weight.shape) == 1:
                sample_weight = ops.expand_dims(sample_weight, -1)
            weights = weights * sample_weight
        total = ops.sum(nll * weights)
        count = _global_token_count(ops.sum(weights))
        return total / ops.maximum(count, 1e-9)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "label_smoothing": self.label_smoothing,
                "ignore_index": self.ignore_index,
                "from_logits": self.from_logits,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_transformer")
class BalancedSparseCategoricalCrossentropy(keras.losses.Loss):
    """Sparse cross-entropy for imbalanced classes: class weights, logit
    adjustment.

    For logits `z` [B, C] and labels `y` [B], the per-example loss is

        class_weights[y] * -log softmax(z + logit_adjustment)[y]

    averaged over the batch (`sum / B`; times `sample_weight` when given).
    With neither argument it is the plain sparse cross-entropy of logits.

    - `class_weights` (a class-balanced loss): e.g. inverse class
      frequencies normalised so that the mean weight per training example
      is 1 (the loss keeps its scale).
    - `logit_adjustment` (Menon et al., 2021): `tau * log prior` of the
      training classes added to the logits in the loss only. The model's
      raw logits then estimate the class-balanced posterior, so at
      inference (no adjustment) rare classes are no longer drowned by the
      prior. With a uniform prior it changes nothing (softmax ignores a
      constant shift).

    Args:
        class_weights: list of C floats or None (default). Weight of each
            class's examples.
        logit_adjustment: list of C floats or None (default). Added to the
            logits before the softmax.
        name: str, default `"balanced_sparse_categorical_crossentropy"`.
        **kwargs: other `keras.losses.Loss` arguments, such as `dtype`.

    Call arguments:
        y_true: int labels [B].
        y_pred: logits [B, C].
        sample_weight: optional weights [B].

    Returns:
        A float32 scalar.

    Example:

    >>> import numpy as np
    >>> loss = keras_transformer.losses.BalancedSparseCategoricalCrossentropy(
    ...     class_weights=[0.5, 2.0])
    >>> round(float(loss(np.array([1]), np.zeros((1, 2)))), 4)  # 2 log 2
    1.3863

    References:
        Cui et al., "Class-Balanced Loss Based on Effective Number of
        Samples", CVPR 2019. Menon et al., "Long-tail learning via logit
        adjustment", ICLR 2021.
    """

    def __init__(
        self,
        class_weights=None,
        logit_adjustment=None,
        name="balanced_sparse_categorical_crossentropy",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.class_weights = _float_list("class_weights", class_weights)
        self.logit_adjustment = _float_list(
            "logit_adjustment", logit_adjustment
        )
        if self.class_weights is not None and any(
            w < 0 for w in self.class_weights
        ):
            raise ValueError(
                "`class_weights` must not be negative. "
                f"Received: class_weights={self.class_weights}"
            )
        if (
            self.class_weights is not None
            and self.logit_adjustment is not None
            and len(self.class_weights) != len(self.logit_adjustment)
        ):
            raise ValueError(
                "`class_weights` and `logit_adjustment` must have one value "
                f"per class each. Received: class_weights="
                f"{self.class_weights}, logit_adjustment="
                f"{self.logit_adjustment}"
            )

    def call(self, y_true, y_pred):
        logits = ops.cast(y_pred, "float32")  # [B, C]
        if self.logit_adjustment is not None:
            logits = logits + ops.convert_to_tensor(
                self.logit_adjustment, "float32"
            )
        labels = ops.reshape(ops.cast(y_true, "int32"), [-1])  # [B]
        log_probs = ops.log_softmax(logits, axis=-1)
        # [B, C] gathered at the labels -> [B]
        nll = -ops.squeeze(
            ops.take_along_axis(log_probs, ops.expand_dims(labels, -1), -1),
            -1,
        )
        if self.class_weights is not None:
            weights = ops.convert_to_tensor(self.class_weights, "float32")
            nll = nll * ops.take(weights, labels)  # [B]
        return nll

    def get_config(self):
        config = super().get_config()
        config.update(
            class_weights=self.class_weights,
            logit_adjustment=self.logit_adjustment,
        )
        return config


def _float_list(name, values):
    """`values` as a list of floats (None stays None), checked."""
    if values is None:
        return None
    try:
        values = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(
            f"`{name}` must be a list of numbers, one per class. "
            f"Received: {name}={values!r}"
        ) from None
    if len(values) < 2:
        raise ValueError(
            f"`{name}` must have one value per class (at least 2). "
            f"Received: {name}={values}"
        )
    return values
