"""`TextClassifier`: text in, label and probability out; its report."""

import numpy as np
import tensorflow as tf

from keras_transformer.data.bert import encode_batch
from keras_transformer.inference._base import (
    InferenceModel,
    check_batch_size,
    text_list,
)

# The model inputs `encode_batch` makes, int32 [B, T] each.
_FEATURES = ("token_ids", "padding_mask", "segment_ids")


def label_ids(labels, class_names, source="The labels"):
    """Class ids of label names, with an error naming unknown labels.

    Args:
        labels: list of str class names.
        class_names: list of str, the model's classes in output order.
        source: str, default "The labels". What holds the labels, for the
            error message.

    Returns:
        A list of int.

    Example:
    >>> from keras_transformer.inference.classifier import label_ids
    >>> label_ids(["b", "a", "b"], ["a", "b"])
    [1, 0, 1]
    """
    index = {name: i for i, name in enumerate(class_names)}
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise ValueError(
            f"{source} has labels the model does not know (known: "
            f"{list(class_names)}). Received: labels={unknown[:5]}"
        )
    return [index[label] for label in labels]


def classification_report(y_true, y_pred, class_names):
    """Accuracy, macro-F1, per-class figures and the confusion matrix.

    Args:
        y_true: int array [N] of true class ids.
        y_pred: int array [N] of predicted class ids.
        class_names: list of C str.

    Returns:
        A dict: `accuracy`, `macro_f1` (the unweighted mean of the per-class
        F1, 0 for a class never predicted nor present), `per_class_f1`,
        `per_class` (`{name: {"precision", "recall", "f1", "support"}}`),
        `never_predicted` (the classes present in `y_true` that no
        prediction names), `confusion_matrix` (a C x C list of lists, rows
        true, columns predicted), `class_names`, `examples`.

    Example:
    >>> from keras_transformer.inference.classifier import (
    ...     classification_report)
    >>> classification_report([0, 1, 1], [0, 1, 0], ["a", "b"])["accuracy"]
    0.6666666666666666
    """
    y_true = np.asarray(y_true, np.int64)
    y_pred = np.asarray(y_pred, np.int64)
    num_classes = len(class_names)
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    true_positive = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0)
    actual = matrix.sum(axis=1)
    denominator = predicted + actual
    f1 = np.divide(
        2 * true_positive,
        denominator,
        out=np.zeros(num_classes),
        where=denominator > 0,
    )
    precision = np.divide(
        true_positive, predicted, out=np.zeros(num_classes), where=predicted > 0
    )
    recall = np.divide(
        true_positive, actual, out=np.zeros(num_classes), where=actual > 0
    )
    examples = int(matrix.sum())
    names = [str(n) for n in class_names]
    return {
        "accuracy": float(true_positive.sum() / max(examples, 1)),
        "macro_f1": float(f1.mean()),
        "per_class_f1": {n: float(v) for n, v in zip(names, f1)},
        "per_class": {
            n: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(actual[i]),
            }
            for i, n in enumerate(names)
        },
        "never_predicted": [
            n
            for i, n in enumerate(names)
            if actual[i] > 0 and predicted[i] == 0
        ],
        "confusion_matrix": matrix.tolist(),
        "class_names": list(class_names),
        "examples": examples,
    }


class TextClassifier(InferenceModel):
    """A trained classifier with its tokenizer and class names.

    Texts are encoded exactly as in training and in the exported SavedModel
    (`[CLS] pieces [SEP]`, truncated to `sequence_length`, by
    `keras_transformer.data.bert.encode_batch`). Probability ensembles
    (`average-classifiers --mode probabilities`) load as one classifier.

    Args:
        model: a `keras.Model` built by
            `keras_transformer.applications.bert.bert_classifier` (or
            `bert_ensemble`, `ngram_classifier`): class logits [B, C].
        tokenizer: its `keras_transformer.tokenizers.SubwordTokenizer`.
        class_names: list of C str, one per model output.
        sequence_length: int, the longest encoded sequence.
        metadata: dict or None (default). The model directory's metadata.
        batch_size: int, default 64. Texts per model call.

    Example:
    >>> import keras_transformer
    >>> classifier = keras_transformer.load("runs/genre")  # doctest: +SKIP
    >>> classifier("Blessed are the meek")  # doctest: +SKIP
    ('gospels_acts', 0.93)
    """

    task = "classifier"
    unit_name = "text"

    def __init__(
        self,
        model,
        tokenizer,
        class_names,
        sequence_length,
        metadata=None,
        batch_size=64,
    ):
        super().__init__(model, tokenizer, metadata)
        self.class_names = [str(name) for name in class_names]
        num_classes = model.output.shape[-1]
        if num_classes is not None and len(self.class_names) != num_classes:
            raise ValueError(
                f"The model has {num_classes} outputs but "
                f"{len(self.class_names)} class names were given. "
                f"Received: class_names={self.class_names}"
            )
        self.sequence_length = int(sequence_length)
        self.batch_size = check_batch_size(batch_size)

        def probabilities(features):
            logits = model(features, training=False)  # [B, C]
            return tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)

        # The texts are tokenized eagerly, outside the compiled function: a
        # SentencePiece resource captured in a graph would not survive
        # `keras.utils.set_random_seed` (it clears TensorFlow's kernels).
        spec = tf.TensorSpec([None, None], tf.int32)
        self._probabilities = tf.function(
            probabilities,
            input_signature=[{name: spec for name in _FEATURES}],
        )

    @classmethod
    def _from_parts(cls, model, tokenizer, metadata, **kwargs):
        inference = metadata["inference"]
        return cls(
            model,
            tokenizer,
            inference["class_names"],
            inference["sequence_length"],
            metadata=metadata,
            **kwargs,
        )

    def predict_proba(self, texts, verbose=0):
        """Class probabilities.

        Args:
            texts: str, or a list of str.
            verbose: int, default 0. 1 shows a progress bar (2 one line)
                when there is more than one batch.

        Returns:
            A float32 numpy array, columns in `class_names` order: [C] for
            a str, [N, C] for a list.
        """
        texts, single = text_list(texts)
        chunks = [np.zeros((0, len(self.class_names)), np.float32)]
        for begin, end in self._batches(len(texts), self.batch_size, verbose):
            batch = tf.constant(texts[begin:end], tf.string)
            features = encode_batch(self.tokenizer, batch, self.sequence_length)
            chunks.append(self._probabilities(features).numpy())
        probabilities = np.concatenate(chunks, axis=0)
        return probabilities[0] if single else probabilities

    def classify(self, texts, verbose=0):
        """The most probable label of each text.

        Args:
            texts: str, or a list of str.
            verbose: int, default 0. 1 shows a progress bar (2 one line)
                when there is more than one batch.

        Returns:
            A `(label, probability)` tuple for a str; otherwise a list of
            them, one per text.

        Example:
        >>> classifier.classify(["Blessed are the meek"])  # doctest: +SKIP
        [('gospels_acts', 0.93)]
        """
        texts, single = text_list(texts)
        probabilities = self.predict_proba(texts, verbose=verbose)
        best = probabilities.argmax(axis=-1)
        results = [
            (self.class_names[i], float(p[i]))
            for i, p in zip(best, probabilities)
        ]
        return results[0] if single else results

    __call__ = classify  # model(x) is model.classify(x)

    def evaluate(self, texts, labels, verbose=0):
        """Accuracy, macro-F1, per-class figures and the confusion matrix.

        Args:
            texts: list of str.
            labels: list of str class names, one per text.
            verbose: int, default 0. Progress as in `predict_proba`.

        Returns:
            The dict of `classification_report`: `accuracy`, `macro_f1`,
            `per_class_f1`, `per_class` (precision, recall, F1, support),
            `never_predicted`, `confusion_matrix` (rows: true class,
            columns: predicted), `class_names` and `examples`.
        """
        texts, _ = text_list(texts)
        labels = list(labels)
        if len(labels) != len(texts):
            raise ValueError(
                "`labels` must have one label per text. Received: "
                f"{len(texts)} texts and {len(labels)} labels"
            )
        y = np.array(
            label_ids(labels, self.class_names, "The test data"), np.int64
        )
        predicted = self.predict_proba(texts, verbose=verbose).argmax(axis=-1)
        return classification_report(y, predicted, self.class_names)
