"""Token-level metrics that skip padding, classifier macro-F1, and corpus
BLEU / chrF.

`Perplexity` is `keras_hub.metrics.Perplexity` with this project's defaults
(logits in, padding id 0 skipped). `MaskedAccuracy` is `keras.metrics.Mean`
over Keras' `sparse_categorical_accuracy`, weighted per real token. It is
not `weighted_metrics=["sparse_categorical_accuracy"]`: Keras averages each
row first, so batches padded to different lengths count per row, not per
token (`test_keras_weighted_accuracy_is_not_per_token` shows the gap).
"""

import keras
import keras_hub
from keras import ops


def _token_weights(y_true, sample_weight, ignore_index):
    """Return [B, T] float32 weights: 0 at `ignore_index`, times weights."""
    weights = ops.ones(ops.shape(y_true), "float32")
    if ignore_index is not None:
        labels = ops.cast(y_true, "int32")
        weights = ops.cast(ops.not_equal(labels, ignore_index), "float32")
    if sample_weight is not None:
        sample_weight = ops.cast(sample_weight, "float32")
        if len(sample_weight.shape) < len(weights.shape):
            sample_weight = ops.expand_dims(sample_weight, -1)  # [B] -> [B, 1]
        weights = weights * sample_weight
    return weights


@keras.saving.register_keras_serializable(package="keras_transformer")
class MaskedAccuracy(keras.metrics.Mean):
    """Token accuracy over real (non-padding) tokens.

    Accumulated per token across batches, so it equals the accuracy over
    all real tokens seen, whatever length each batch is padded to.

    Args:
        ignore_index: int or None, default 0. Label id not scored
            (padding); None scores every token.
        name: str, default `"masked_accuracy"`. Metric name.
        dtype: str or None, default None. Metric dtype.

    Call arguments:
        y_true: int labels `[B, T]`.
        y_pred: logits or probabilities `[B, T, V]`.
        sample_weight: optional weights `[B, T]` or `[B]`.

    Returns:
        Correct real tokens / real tokens, a float scalar.

    Example:

    >>> import numpy as np
    >>> metric = keras_transformer.metrics.MaskedAccuracy()
    >>> metric.update_state(
    ...     np.array([[1, 0]]), np.array([[[0.0, 1.0], [1.0, 0.0]]]))
    >>> float(metric.result())
    1.0
    """

    def __init__(self, ignore_index=0, name="masked_accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.ignore_index = ignore_index

    def update_state(self, y_true, y_pred, sample_weight=None):
        matches = keras.metrics.sparse_categorical_accuracy(y_true, y_pred)
        weights = _token_weights(y_true, sample_weight, self.ignore_index)
        # [B, T] -> [B * T], so that Mean weighs tokens, not rows.
        super().update_state(
            ops.reshape(matches, [-1]), ops.reshape(weights, [-1])
        )

    def get_config(self):
        return {**super().get_config(), "ignore_index": self.ignore_index}


@keras.saving.register_keras_serializable(package="keras_transformer")
class Perplexity(keras_hub.metrics.Perplexity):
    """Token-weighted perplexity, `exp(total NLL / real tokens)`.

    `keras_hub.metrics.Perplexity` with `mask_token_id=ignore_index`, logits
    by default, and `[B]` sample weights spread over each row's tokens.
    Accumulated over tokens across batches, so it equals the perplexity of
    the whole evaluation set. With no token seen, the result is 0.

    Args:
        ignore_index: int or None, default 0. Label id not scored
            (padding); None scores every token.
        from_logits: bool, default True. Whether `y_pred` holds logits
            (else probabilities).
        name: str, default `"perplexity"`. Metric name.
        dtype: str or None, default None (float32). Metric dtype.

    Call arguments:
        y_true: int labels `[B, T]`.
        y_pred: logits or probabilities `[B, T, V]`.
        sample_weight: optional weights `[B, T]` or `[B]`.

    Returns:
        The perplexity, a float32 scalar.

    Example:

    >>> import numpy as np
    >>> metric = keras_transformer.metrics.Perplexity()
    >>> metric.update_state(np.array([[1, 2, 0]]), np.zeros((1, 3, 4)))
    >>> round(float(metric.result()), 4)  # uniform over 4 ids
    4.0
    """

    def __init__(
        self, ignore_index=0, from_logits=True, name="perplexity", dtype=None
    ):
        super().__init__(
            from_logits=from_logits,
            mask_token_id=ignore_index,
            dtype=dtype or "float32",
            name=name,
        )
        self.ignore_index = ignore_index

    def update_state(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            sample_weight = _token_weights(y_true, sample_weight, None)
        super().update_state(y_true, y_pred, sample_weight)

    def get_config(self):
        config = super().get_config()
        del config["mask_token_id"]
        return {**config, "ignore_index": self.ignore_index}


@keras.saving.register_keras_serializable(package="keras_transformer")
class SparseMacroF1(keras.metrics.F1Score):
    """Macro-F1 of a classifier from integer labels and logits.

    `keras.metrics.F1Score(average="macro", threshold=None)` (the argmax
    class is the prediction) on sparse labels `[B]`, one-hot encoded here.
    Counts accumulate over batches, so the result is the macro-F1 of the
    whole validation set. A class neither present nor predicted scores 0.

    Args:
        num_classes: int, the number of classes C.
        name: str, default `"macro_f1"`. Metric name.
        dtype: str or None, default None. Metric dtype.

    Call arguments:
        y_true: int labels `[B]`.
        y_pred: logits or probabilities `[B, C]`.
        sample_weight: optional weights `[B]`.

    Returns:
        The unweighted mean of the per-class F1, a float scalar.

    Example:

    >>> import numpy as np
    >>> metric = keras_transformer.metrics.SparseMacroF1(2)
    >>> metric.update_state(np.array([0, 1, 1]),
    ...                     np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]]))
    >>> round(float(metric.result()), 4)  # F1 2/3 and 2/3
    0.6667
    """

    def __init__(self, num_classes, name="macro_f1", dtype=None):
        super().__init__(
            average="macro", threshold=None, name=name, dtype=dtype
        )
        self.num_classes = int(num_classes)

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = ops.reshape(ops.cast(y_true, "int32"), [-1])  # [B]
        one_hot = ops.one_hot(labels, self.num_classes)  # [B, C]
        super().update_state(
            one_hot, ops.cast(y_pred, "float32"), sample_weight
        )

    def get_config(self):
        config = super().get_config()
        for key in ("average", "threshold"):
            config.pop(key, None)
        return {**config, "num_classes": self.num_classes}


def corpus_bleu(hypotheses, references, tokenize="13a"):
    """Corpus BLEU and chrF with sacrebleu.

    Args:
        hypotheses: list of str, the detokenized system outputs.
        references: list of str, one reference per hypothesis.
        tokenize: str, default `"13a"`. The sacrebleu tokenizer name.

    Returns:
        A dict `{"bleu": float, "chrf": float, "signature": str}`.

    Example:

    >>> scores = keras_transformer.metrics.corpus_bleu(
    ...     ["the cat sat on the mat"], ["the cat sat on the mat"])
    >>> round(scores["bleu"], 1), round(scores["chrf"], 1)
    (100.0, 100.0)
    """
    import sacrebleu

    if len(hypotheses) != len(references):
        raise ValueError(
            "`hypotheses` and `references` must have the same length. "
            f"Received: len(hypotheses)={len(hypotheses)}, "
            f"len(references)={len(references)}"
        )
    bleu = sacrebleu.corpus_bleu(
        list(hypotheses), [list(references)], tokenize=tokenize
    )
    chrf = sacrebleu.corpus_chrf(list(hypotheses), [list(references)])
    return {
        "bleu": float(bleu.score),
        "chrf": float(chrf.score),
        "signature": str(bleu.format(signature=True)),
    }
