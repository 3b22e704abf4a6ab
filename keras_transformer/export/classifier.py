"""SavedModel export of a BERT text classifier: strings in, labels out.

The exported graph holds the SentencePiece tokenizer, the class names and
the model variables, so TF Serving (or any process with only `tensorflow`
and `tensorflow_text`) classifies raw text:

- `serving_default(text: tf.string [B]) -> {"label": tf.string [B],
  "probabilities": tf.float32 [B, C]}`, C the number of classes, in the
  order of the model directory's `metadata["inference"]["class_names"]`.

Texts are encoded exactly as in training (`[CLS] pieces [SEP]`, truncated
to the model's sequence length) by `keras_transformer.data.bert.encode_batch`.
"""

import tensorflow as tf

from keras_transformer.data.bert import encode_batch
from keras_transformer.export.common import (
    check_export_destination,
    export_saved_model,
    open_source,
)


class ClassifierServingModule(tf.Module):
    """The `tf.Module` written by `export_classifier`.

    Args:
        model: a model built by
            `keras_transformer.applications.bert.bert_classifier` (or
            `bert_ensemble`, `ngram_classifier`).
        tokenizer: its `keras_transformer.tokenizers.SubwordTokenizer`.
        class_names: list of str, one per output of the model.
        sequence_length: int, the longest encoded sequence.
    """

    def __init__(self, model, tokenizer, class_names, sequence_length):
        super().__init__(name="classifier_serving")
        num_classes = model.output.shape[-1]
        if len(class_names) != num_classes:
            raise ValueError(
                f"The model has {num_classes} outputs but {len(class_names)} "
                f"class names were given. Received: class_names={class_names}"
            )
        self.tokenizer = tokenizer
        self._model = model
        self._class_names = list(class_names)
        self._sequence_length = int(sequence_length)
        self.serving_default = tf.function(
            self._serve,
            input_signature=[tf.TensorSpec([None], tf.string, name="text")],
            autograph=False,
        )

    def _serve(self, text):
        features = encode_batch(self.tokenizer, text, self._sequence_length)
        # An empty batch encodes to width 0; the [CLS] read needs width 1.
        width = tf.shape(features["token_ids"])[1]
        pad = [[0, 0], [0, tf.maximum(1 - width, 0)]]
        features = {k: tf.pad(v, pad) for k, v in features.items()}
        logits = self._model(features, training=False)  # [B, C]
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)
        names = tf.constant(self._class_names, tf.string)  # [C]
        label = tf.gather(names, tf.argmax(probabilities, axis=-1))  # [B]
        return {"label": label, "probabilities": probabilities}


def export_classifier(source, output, overwrite=False, dtype=None):
    """Exports a classifier as a TF Serving SavedModel.

    Args:
        source: str, a classifier directory (an ensemble too), or an
            object with `.model`, `.tokenizer` and `.metadata` (a
            `keras_transformer.inference.TextClassifier`; its
            `class_names` and `sequence_length` are used).
        output: str, the versioned destination `.../NAME/VERSION`.
        overwrite: bool, default False. Replace an existing version.
        dtype: None (default: the model's), "float32", "bfloat16" or
            "float16": the weights and computation of the SavedModel
            (`keras_transformer.export.common.cast_model`).

    Returns:
        The absolute export path.

    Example:
    >>> from keras_transformer.export import export_classifier
    >>> export_classifier("runs/genre",
    ...                   "saved_models/genre/1")  # doctest: +SKIP
    """
    # Refuse a bad destination before the slow loading and tracing.
    output = check_export_destination(output, overwrite)
    source = open_source(source, "classifier", dtype)
    module = ClassifierServingModule(
        source.model,
        source.tokenizer,
        source.inference["class_names"],
        source.inference["sequence_length"],
    )
    signature = module.serving_default.get_concrete_function()
    return export_saved_model(
        module,
        output,
        signatures={"serving_default": signature},
        overwrite=overwrite,
    )
