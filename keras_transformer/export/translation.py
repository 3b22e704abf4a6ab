"""SavedModel export of a translation model: raw text in, text out.

The SavedModel holds the SentencePiece tokenizer, the model variables and
the cached greedy decode loop in one TensorFlow graph, so TF Serving (or
any process importing only `tensorflow` and `tensorflow_text`) translates
raw strings. Signatures:

- `serving_default`: `text` tf.string [B] -> `translation` tf.string [B].
- `translate_ids`: `encoder_token_ids` int32 [B, S] (0 = padding, each
  source ending with the end token 3) -> `token_ids` int32 [B, L] (start
  token 2, the output, the end token 3, then padding 0).
"""

import tensorflow as tf

from keras_transformer.export.common import export_saved_model
from keras_transformer.generation import GreedySampler, decode


class TranslationModule(tf.Module):
    """The `tf.Module` written to the SavedModel.

    Args:
        translator: a `keras_transformer.tasks.translation.Translator`.
    """

    def __init__(self, translator):
        super().__init__(name="translation")
        self.tokenizer = translator.tokenizer
        self._decoder = translator.decoder
        self._max_length = int(translator.max_length)
        self._start_id = int(translator.tokenizer.start_id)
        self._end_id = int(translator.tokenizer.end_id)

    def _decode_ids(self, encoder_token_ids):
        token_ids, cache = self._decoder.prepare(
            encoder_token_ids, self._max_length, self._start_id
        )
        return decode(
            self._decoder.step_fn,
            token_ids,
            None,
            cache,
            GreedySampler(),
            start_index=1,
            stop_token_ids=[self._end_id],
            pad_token_id=0,
        )

    def _encode_text(self, text):
        # [B] strings -> ragged [B, None] ids, truncated, end token appended.
        ids = self.tokenizer.tokenize(text)[:, : self._max_length - 1]
        end = tf.fill([ids.nrows(), 1], tf.constant(self._end_id, tf.int32))
        ids = tf.concat([ids, end], axis=1).to_tensor(0)  # [B, S]
        # Round S up to a multiple of 8, as the Python translator does.
        length = tf.shape(ids)[1]
        padded = (length + 7) // 8 * 8
        return tf.pad(ids, [[0, 0], [0, padded - length]])

    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.string, name="text")]
    )
    def serve_text(self, text):
        token_ids = self._decode_ids(self._encode_text(text))
        translation = self.tokenizer.detokenize(token_ids[:, 1:])
        return {"translation": translation}

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None], tf.int32, name="encoder_token_ids")
        ]
    )
    def serve_ids(self, encoder_token_ids):
        return {"token_ids": self._decode_ids(encoder_token_ids)}


def export_translator(translator, output, overwrite=False):
    """Writes a translator as a TF Serving SavedModel.

    Args:
        translator: a `keras_transformer.tasks.translation.Translator`.
        output: `.../NAME/VERSION` (TF Serving's layout).
        overwrite: replace an existing version.

    Returns:
        The absolute export path.

    Example:
    >>> from keras_transformer.tasks.translation import load_translator
    >>> from keras_transformer.export.translation import export_translator
    >>> export_translator(load_translator("runs/en-es"),
    ...                   "saved_models/en-es/1")  # doctest: +SKIP
    """
    module = TranslationModule(translator)
    signatures = {
        "serving_default": module.serve_text.get_concrete_function(),
        "translate_ids": module.serve_ids.get_concrete_function(),
    }
    return export_saved_model(module, output, signatures, overwrite=overwrite)
