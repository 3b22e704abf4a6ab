"""SavedModel export of a translation model: raw text in, text out.

The SavedModel holds the SentencePiece tokenizer, the model variables and
the cached greedy decode loop in one TensorFlow graph, so TF Serving (or
any process importing only `tensorflow` and `tensorflow_text`) translates
raw strings. Signatures:

- `serving_default`: `text` tf.string [B] -> `translation` tf.string [B].
  A text with no subword pieces (empty, or only whitespace) translates to
  "", as `keras_transformer.inference.Translator` answers it.
- `translate_ids`: `encoder_token_ids` int32 [B, S] (0 = padding, each
  source ending with the end token 3) -> `token_ids` int32 [B, L] (start
  token 2, the output, the end token 3, then padding 0).
"""

import tensorflow as tf

from keras_transformer.applications.translation import Seq2SeqDecoder
from keras_transformer.export.common import (
    check_export_destination,
    export_saved_model,
    open_source,
)
from keras_transformer.generation import GreedySampler, decode


class TranslationModule(tf.Module):
    """The `tf.Module` written to the SavedModel.

    Args:
        model: a model built by
            `keras_transformer.applications.translation.transformer_seq2seq`.
        tokenizer: its `keras_transformer.tokenizers.SubwordTokenizer`.
        max_length: int or None (default). Target buffer length, start
            token included; None means the model's `max_sequence_length`.
    """

    def __init__(self, model, tokenizer, max_length=None):
        super().__init__(name="translation")
        self.tokenizer = tokenizer
        self._decoder = Seq2SeqDecoder(model)
        self._max_length = int(max_length or self._decoder.max_sequence_length)
        self._start_id = int(tokenizer.start_id)
        self._end_id = int(tokenizer.end_id)

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

    def _encode_pieces(self, pieces):
        # Ragged [B, None] pieces -> [B, S] ids, truncated, end appended.
        ids = pieces[:, : self._max_length - 1]
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
        pieces = self.tokenizer.tokenize(text)  # [B, None]
        token_ids = self._decode_ids(self._encode_pieces(pieces))
        translation = self.tokenizer.detokenize(token_ids[:, 1:])  # [B]
        # Nothing to translate (empty or whitespace-only text): "".
        blank = tf.equal(pieces.row_lengths(), 0)  # [B]
        translation = tf.where(blank, tf.zeros_like(translation), translation)
        return {"translation": translation}

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None], tf.int32, name="encoder_token_ids")
        ]
    )
    def serve_ids(self, encoder_token_ids):
        return {"token_ids": self._decode_ids(encoder_token_ids)}


def export_translation(source, output, overwrite=False, dtype=None):
    """Exports a translation model as a TF Serving SavedModel.

    Args:
        source: str, a translation model directory, or an object with
            `.model`, `.tokenizer` and `.metadata` (a
            `keras_transformer.inference.Translator`; its `max_length` is
            used).
        output: str, the versioned destination `.../NAME/VERSION`.
        overwrite: bool, default False. Replace an existing version.
        dtype: None (default: the model's), "float32", "bfloat16" or
            "float16": the weights and computation of the SavedModel
            (`keras_transformer.export.common.cast_model`).

    Returns:
        The absolute export path.

    Example:
    >>> from keras_transformer.export import export_translation
    >>> export_translation("runs/en-es",
    ...                    "saved_models/en-es/1")  # doctest: +SKIP
    """
    # Refuse a bad destination before the slow loading and tracing.
    output = check_export_destination(output, overwrite)
    source = open_source(source, "translation", dtype)
    module = TranslationModule(
        source.model, source.tokenizer, source.inference.get("max_length")
    )
    signatures = {
        "serving_default": module.serve_text.get_concrete_function(),
        "translate_ids": module.serve_ids.get_concrete_function(),
    }
    return export_saved_model(module, output, signatures, overwrite=overwrite)
