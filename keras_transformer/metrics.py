"""Token-level metrics with padding, and corpus BLEU / chrF."""

import keras
from keras import ops

from keras_transformer.losses import masked_token_nll


class _MaskedTokenMetric(keras.metrics.Metric):
    """Accumulates a per-token total and a token count (private base)."""

    def __init__(self, ignore_index=0, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.ignore_index = ignore_index
        self.total = self.add_variable(
            shape=(), initializer="zeros", dtype="float32", name="total"
        )
        self.count = self.add_variable(
            shape=(), initializer="zeros", dtype="float32", name="count"
        )

    def _weights(self, y_true, sample_weight):
        weights = ops.ones(ops.shape(y_true), "float32")
        if self.ignore_index is not None:
            weights = ops.cast(
                ops.not_equal(ops.cast(y_true, "int32"), self.ignore_index),
                "float32",
            )
        if sample_weight is not None:
            sample_weight = ops.cast(sample_weight, "float32")
            if len(sample_weight.shape) == 1 and len(y_true.shape) == 2:
                sample_weight = ops.expand_dims(sample_weight, -1)
            weights = weights * sample_weight
        return weights

    def _accumulate(self, values, weights):
        self.total.assign_add(ops.sum(values * weights))
        self.count.assign_add(ops.sum(weights))

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        config = super().get_config()
        config.update({"ignore_index": self.ignore_index})
        return config


@keras.saving.register_keras_serializable(package="keras_transformer")
class MaskedAccuracy(_MaskedTokenMetric):
    """Token accuracy over real (non-padding) tokens.

    Args:
        ignore_index: label id not scored (padding); None scores all.
        name: metric name.
        dtype: metric dtype.

    Call arguments:
        y_true: int labels [B, T].
        y_pred: logits or probabilities [B, T, V].
        sample_weight: optional [B, T] or [B].

    Returns:
        Correct real tokens / real tokens, across all batches seen.

    Example:
    >>> import numpy as np
    >>> from keras_transformer.metrics import MaskedAccuracy
    >>> m = MaskedAccuracy()
    >>> m.update_state(np.array([[1, 0]]), np.array([[[0., 1.], [1., 0.]]]))
    >>> float(m.result())
    1.0
    """

    def __init__(self, ignore_index=0, name="masked_accuracy", dtype=None):
        super().__init__(ignore_index=ignore_index, name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        predicted = ops.argmax(y_pred, axis=-1)
        correct = ops.cast(
            ops.equal(ops.cast(predicted, "int32"), ops.cast(y_true, "int32")),
            "float32",
        )
        self._accumulate(correct, self._weights(y_true, sample_weight))

    def result(self):
        return self.total / ops.maximum(self.count, 1e-9)


@keras.saving.register_keras_serializable(package="keras_transformer")
class Perplexity(_MaskedTokenMetric):
    """Token-weighted perplexity, `exp(total NLL / real tokens)`.

    Accumulated across batches by tokens, not by averaging per-batch
    perplexities, so it equals the perplexity of the whole evaluation set.

    Args:
        ignore_index: label id not scored (padding); None scores all.
        from_logits: whether predictions are logits.
        name: metric name.
        dtype: metric dtype.

    Call arguments:
        y_true: int labels [B, T].
        y_pred: logits or probabilities [B, T, V].
        sample_weight: optional [B, T] or [B].

    Returns:
        The perplexity as a float32 scalar.

    Example:
    >>> import numpy as np
    >>> from keras_transformer.metrics import Perplexity
    >>> m = Perplexity()
    >>> m.update_state(np.array([[1, 2]]), np.zeros((1, 2, 4)))
    >>> round(float(m.result()), 4)
    4.0
    """

    def __init__(
        self,
        ignore_index=0,
        from_logits=True,
        name="perplexity",
        dtype=None,
    ):
        super().__init__(ignore_index=ignore_index, name=name, dtype=dtype)
        self.from_logits = from_logits

    def update_state(self, y_true, y_pred, sample_weight=None):
        nll = masked_token_nll(y_true, y_pred, 0.0, self.from_logits)
        self._accumulate(nll, self._weights(y_true, sample_weight))

    def result(self):
        return ops.exp(self.total / ops.maximum(self.count, 1e-9))

    def get_config(self):
        config = super().get_config()
        config.update({"from_logits": self.from_logits})
        return config


def corpus_bleu(hypotheses, references, tokenize="13a"):
    """Corpus BLEU and chrF with sacrebleu.

    Args:
        hypotheses: list of detokenized system outputs.
        references: list of reference strings, one per hypothesis.
        tokenize: sacrebleu tokenizer name.

    Returns:
        A dict `{"bleu": float, "chrf": float, "signature": str}`.

    Example:
    >>> from keras_transformer.metrics import corpus_bleu
    >>> corpus_bleu(["the cat sat"], ["the cat sat"])["bleu"] > 0
    True
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
