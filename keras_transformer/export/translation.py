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
- `generate`: `text` [B], `temperature` float32, `top_k` int32, `top_p`
  float32, `seed` int64, `no_repeat_ngram_size` int32,
  `repetition_penalty` float32, `min_new_tokens` int32, `stop` tf.string
  [S], `stop_token_ids` int32 [T] (beside the end token; negative ids stop
  nothing) -> `translation` [B] and `score` float32 [B] (the summed
  log-probability of the output tokens). `temperature <= 0` is greedy; the
  knobs mean what they mean in the GPT `generate` signature
  (`keras_transformer.export.gpt`).
- `beam_search`: `text` [B], `length_penalty` float32 and the same
  repetition, length and stop controls -> `translations` tf.string [B, K]
  and `scores` float32 [B, K], best first: the n-best list of a
  `num_beams`-beam search (K fixed at export, default 4; the scores are
  length-penalized log-probabilities).

Every control is a run-time input of one graph: changing it never
retraces.
"""

import tensorflow as tf

from keras_transformer.applications.translation import Seq2SeqDecoder
from keras_transformer.export.common import (
    check_export_destination,
    export_saved_model,
    open_source,
)
from keras_transformer.export.gpt import (
    CONTROL_SPECS,
    ServingSampler,
    cut_at_stop_strings,
    end_and_stop_ids,
    serving_controls,
)
from keras_transformer.generation import BeamSampler, GreedySampler, decode


class TranslationModule(tf.Module):
    """The `tf.Module` written to the SavedModel.

    Args:
        model: a model built by
            `keras_transformer.applications.translation.transformer_seq2seq`.
        tokenizer: its `keras_transformer.tokenizers.SubwordTokenizer`.
        max_length: int or None (default). Target buffer length, start
            token included; None means the model's `max_sequence_length`.
        num_beams: int, default 4. The beams (and n-best size) of
            `beam_search`.
    """

    def __init__(self, model, tokenizer, max_length=None, num_beams=4):
        super().__init__(name="translation")
        self._num_beams = int(num_beams)
        self.tokenizer = tokenizer
        self._decoder = Seq2SeqDecoder(model)
        self._max_length = int(max_length or self._decoder.max_sequence_length)
        self._start_id = int(tokenizer.start_id)
        self._end_id = int(tokenizer.end_id)

    def _decode_ids(
        self, encoder_token_ids, sampler=None, stop_token_ids=None, **options
    ):
        token_ids, cache = self._decoder.prepare(
            encoder_token_ids, self._max_length, self._start_id
        )
        return decode(
            self._decoder.step_fn,
            token_ids,
            None,
            cache,
            sampler or GreedySampler(),
            start_index=1,
            stop_token_ids=end_and_stop_ids(self._end_id, stop_token_ids),
            pad_token_id=0,
            **options,
        )

    def _texts(self, token_ids, pieces, stop):
        """Output ids [B, L] -> text [B]: "" for a blank source, cut at
        the stop strings."""
        translation = self.tokenizer.detokenize(token_ids[:, 1:])  # [B]
        blank = tf.equal(pieces.row_lengths(), 0)  # [B]
        translation = tf.where(blank, tf.zeros_like(translation), translation)
        return cut_at_stop_strings(translation, stop)

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
        # Nothing to translate (empty or whitespace-only text): "".
        no_stop = tf.zeros([0], tf.string)
        return {"translation": self._texts(token_ids, pieces, no_stop)}

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None], tf.int32, name="encoder_token_ids")
        ]
    )
    def serve_ids(self, encoder_token_ids):
        return {"token_ids": self._decode_ids(encoder_token_ids)}

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="text"),
            tf.TensorSpec([], tf.float32, name="temperature"),
            tf.TensorSpec([], tf.int32, name="top_k"),
            tf.TensorSpec([], tf.float32, name="top_p"),
            tf.TensorSpec([], tf.int64, name="seed"),
            *CONTROL_SPECS,
        ]
    )
    def generate(
        self,
        text,
        temperature,
        top_k,
        top_p,
        seed,
        no_repeat_ngram_size,
        repetition_penalty,
        min_new_tokens,
        stop,
        stop_token_ids,
    ):
        pieces = self.tokenizer.tokenize(text)
        token_ids, score = self._decode_ids(
            self._encode_pieces(pieces),
            ServingSampler(temperature, top_k, top_p),
            stop_token_ids,
            seed=seed,
            return_scores=True,
            **serving_controls(
                no_repeat_ngram_size, repetition_penalty, min_new_tokens
            ),
        )
        return {
            "translation": self._texts(token_ids, pieces, stop),
            "score": score,
        }

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="text"),
            tf.TensorSpec([], tf.float32, name="length_penalty"),
            *CONTROL_SPECS,
        ]
    )
    def beam_search(
        self,
        text,
        length_penalty,
        no_repeat_ngram_size,
        repetition_penalty,
        min_new_tokens,
        stop,
        stop_token_ids,
    ):
        pieces = self.tokenizer.tokenize(text)
        beams, scores = self._decode_ids(
            self._encode_pieces(pieces),
            BeamSampler(
                self._num_beams,
                length_penalty=tf.maximum(length_penalty, 0.0),
                return_all_beams=True,
            ),
            stop_token_ids,
            **serving_controls(
                no_repeat_ngram_size, repetition_penalty, min_new_tokens
            ),
        )  # [B, K, L], [B, K]
        k, length = self._num_beams, tf.shape(beams)[2]
        flat = tf.reshape(beams, [-1, length])  # [B*K, L]
        texts = self._texts(flat, _repeat_rows(pieces, k), stop)
        return {
            "translations": tf.reshape(texts, [-1, k]),
            "scores": scores,
        }


def _repeat_rows(ragged, times):
    """Each row of a ragged [B, None] tensor `times` times: [B*times, None]."""
    rows = tf.repeat(tf.range(ragged.nrows()), times)
    return tf.gather(ragged, rows)


def export_translation(
    source, output, overwrite=False, dtype=None, num_beams=4
):
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
        num_beams: int, default 4. Beams of the `beam_search` signature.

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
    if (
        isinstance(num_beams, bool)
        or not isinstance(num_beams, int)
        or num_beams < 1
    ):
        raise ValueError(
            "`num_beams` must be an int >= 1. "
            f"Received: num_beams={num_beams!r}"
        )
    module = TranslationModule(
        source.model,
        source.tokenizer,
        source.inference.get("max_length"),
        num_beams=num_beams,
    )
    signatures = {
        "serving_default": module.serve_text.get_concrete_function(),
        "translate_ids": module.serve_ids.get_concrete_function(),
        "generate": module.generate.get_concrete_function(),
        "beam_search": module.beam_search.get_concrete_function(),
    }
    return export_saved_model(module, output, signatures, overwrite=overwrite)
