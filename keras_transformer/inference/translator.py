"""`Translator`: source text in, translated text out."""

import keras
import tensorflow as tf

from keras_transformer.applications.translation import Seq2SeqDecoder
from keras_transformer.data.translation import pad_batch
from keras_transformer.generation import (
    BeamSampler,
    compile_decode,
    repetition,
    stop_strings,
)
from keras_transformer.inference._base import (
    InferenceModel,
    check_batch_size,
    default_jit_compile,
    resolve_num_beams,
    text_list,
)

DEFAULT_LENGTH_PENALTY = 0.6


class Translator(InferenceModel):
    """Translates text with a trained model: tokenize, decode, detokenize.

    Decoding is batched (sentences sorted by length, batches padded to a
    fixed size and lengths rounded up to a multiple of 8, so a few compiled
    programs serve every input) and compiled once per shape through
    `keras_transformer.generation.compile_decode` (with XLA on a GPU/TPU;
    on CPU plain graph mode, since XLA's per-shape compile time outweighs
    its gain there).

    A text with no subword pieces (empty, or only whitespace) translates to
    the empty string without decoding, as the exported SavedModel answers
    it (`keras_transformer.export.export_translation`).

    Args:
        model: a `keras.Model` built by
            `keras_transformer.applications.translation.transformer_seq2seq`.
        tokenizer: its `keras_transformer.tokenizers.SubwordTokenizer`.
        metadata: dict or None (default). The model directory's metadata;
            `metadata["inference"]["max_length"]` is the default
            `max_length`.
        max_length: int or None (default). Target buffer length, start
            token included; defaults to the metadata's, else the model's
            `max_sequence_length`.
        batch_size: int, default 64. Sentences decoded together.
        jit_compile: bool or None (default). XLA-compile the decode loop;
            None means on a GPU/TPU only (see `default_jit_compile`).

    Example:
    >>> import keras_transformer
    >>> translator = keras_transformer.load("runs/en-es")  # doctest: +SKIP
    >>> translator("In the beginning.")  # doctest: +SKIP
    'En el principio.'
    >>> translator(["In the beginning.", ""], num_beams=4)  # doctest: +SKIP
    ['En el principio.', '']
    >>> translator("In the beginning.",
    ...            no_repeat_ngram_size=3)  # doctest: +SKIP
    'En el principio.'
    """

    task = "translation"
    unit_name = "sentence"

    def __init__(
        self,
        model,
        tokenizer,
        metadata=None,
        max_length=None,
        batch_size=64,
        jit_compile=None,
    ):
        super().__init__(model, tokenizer, metadata)
        self.decoder = Seq2SeqDecoder(model)
        self.max_length = int(
            max_length
            or self.inference_metadata.get("max_length")
            or self.decoder.max_sequence_length
        )
        if not 2 <= self.max_length <= self.decoder.max_sequence_length:
            raise ValueError(
                "`max_length` must be in [2, "
                f"{self.decoder.max_sequence_length}] (the model's "
                f"positions). Received: max_length={self.max_length}"
            )
        self.batch_size = check_batch_size(batch_size)
        if jit_compile is None:
            jit_compile = default_jit_compile()
        self.jit_compile = bool(jit_compile)
        self._decode_fns = {}
        self._prepare = tf.function(
            self._prepare_fn, jit_compile=jit_compile, reduce_retracing=True
        )

    def _prepare_fn(self, encoder_token_ids):
        return self.decoder.prepare(
            encoder_token_ids, self.max_length, self.tokenizer.start_id
        )

    def _decode_fn(self, num_beams):
        if num_beams not in self._decode_fns:
            sampler = (
                "greedy"
                if num_beams == 1
                else BeamSampler(num_beams, DEFAULT_LENGTH_PENALTY)
            )
            self._decode_fns[num_beams] = compile_decode(
                self.decoder.step_fn,
                sampler,
                stop_token_ids=[self.tokenizer.end_id],
                pad_token_id=0,
                variables=self.model.variables,
                jit_compile=self.jit_compile,
            )
        return self._decode_fns[num_beams]

    def encode_texts(self, texts):
        """Source token ids: pieces truncated to `max_length - 1`, end token.

        Args:
            texts: list of str.

        Returns:
            A list of lists of int, one per text.
        """
        texts, _ = text_list(texts)
        if not texts:
            return []
        ids = self.tokenizer.tokenize(tf.constant(texts, tf.string))
        ids = ids[:, : self.max_length - 1].to_list()
        return [row + [self.tokenizer.end_id] for row in ids]

    def translate_ids(
        self,
        encoder_token_ids,
        num_beams=1,
        length_penalty=None,
        *,
        beam_size=None,
        no_repeat_ngram_size=0,
        repetition_penalty=1.0,
        min_new_tokens=0,
    ):
        """Decodes one padded batch of source ids.

        Args:
            encoder_token_ids: int32 array [B, S], 0 for padding.
            num_beams: int, default 1. 1 for greedy search, more for beam
                search.
            length_penalty: float or None (default). GNMT alpha of beam
                search; None means `DEFAULT_LENGTH_PENALTY` (0.6).
            beam_size: int or None (default). Deprecated alias of
                `num_beams` (a `DeprecationWarning`).
            no_repeat_ngram_size: int, default 0 (off). No n-gram of this
                size appears twice in an output (target side only).
            repetition_penalty: float > 0, default 1.0 (off). CTRL penalty
                on the logits of target tokens already produced.

            min_new_tokens: int, default 0 (off). No output ends before
                it has this many tokens.

        The three controls are run-time values: changing them does not
        recompile (see `keras_transformer.generation.repetition`).

        Returns:
            int32 numpy array [B, L]: start token, output, end, padding.
        """
        num_beams = resolve_num_beams(num_beams, beam_size)
        repetition.check_controls(no_repeat_ngram_size, repetition_penalty)
        repetition.check_min_new_tokens(min_new_tokens)
        token_ids, cache = self._prepare(
            tf.convert_to_tensor(encoder_token_ids, tf.int32)
        )
        knobs = {}
        if num_beams > 1:
            knobs["length_penalty"] = (
                DEFAULT_LENGTH_PENALTY
                if length_penalty is None
                else float(length_penalty)
            )
        out = self._decode_fn(num_beams)(
            token_ids,
            None,
            cache,
            start_index=1,
            no_repeat_ngram_size=no_repeat_ngram_size,
            repetition_penalty=repetition_penalty,
            min_new_tokens=min_new_tokens,
            **knobs,
        )
        return keras.ops.convert_to_numpy(out)

    def translate(
        self,
        texts,
        num_beams=1,
        length_penalty=None,
        verbose=0,
        *,
        beam_size=None,
        no_repeat_ngram_size=0,
        repetition_penalty=1.0,
        min_new_tokens=0,
        stop=None,
    ):
        """Translates a string or a list of strings.

        Args:
            texts: str, or a list of str.
            num_beams: int, default 1. 1 for greedy search, more for beam
                search.
            length_penalty: float or None (default). GNMT alpha of beam
                search; None means `DEFAULT_LENGTH_PENALTY` (0.6).
            verbose: int, default 0. 1 shows a progress bar (2 one line)
                when there is more than one batch.
            beam_size: int or None (default). Deprecated alias of
                `num_beams` (a `DeprecationWarning`).
            no_repeat_ngram_size: int, default 0 (off). Against loops: no
                n-gram of this size appears twice in a translation (e.g. 3;
                1 would forbid any repeated token).
            repetition_penalty: float > 0, default 1.0 (off). Against
                loops: the logits of tokens already in the translation are
                divided by it when positive, multiplied when negative (CTRL;
                e.g. 1.2).
            min_new_tokens: int, default 0 (off). No translation ends
                before it has this many tokens.
            stop: None (default), a str or a list of str. A translation
                ends before the first occurrence of any of them (removed;
                `keras_transformer.generation.stop_strings`).

        Returns:
            A str for a str; otherwise a list of str, in the order of
            `texts`. Blank texts (no subword pieces) give "".

        Example:
        >>> translator.translate("God is love.")  # doctest: +SKIP
        'Dios es amor.'
        """
        num_beams = resolve_num_beams(num_beams, beam_size)
        repetition.check_controls(no_repeat_ngram_size, repetition_penalty)
        repetition.check_min_new_tokens(min_new_tokens)
        stops = stop_strings.check_stop(stop)
        texts, single = text_list(texts)
        results = [""] * len(texts)
        source_ids = self.encode_texts(texts)
        # Only the end token: nothing to translate.
        todo = [i for i, ids in enumerate(source_ids) if len(ids) > 1]
        todo.sort(key=lambda i: len(source_ids[i]))
        if todo:
            size = min(self.batch_size, 1 << (len(todo) - 1).bit_length())
            for begin, end in self._batches(len(todo), size, verbose):
                chunk = todo[begin:end]
                rows = [source_ids[i] for i in chunk]
                # Dummy rows (just the end token) keep the batch shape fixed.
                rows += [[self.tokenizer.end_id]] * (size - len(rows))
                out = self.translate_ids(
                    pad_batch(rows),
                    num_beams,
                    length_penalty,
                    no_repeat_ngram_size=no_repeat_ngram_size,
                    repetition_penalty=repetition_penalty,
                    min_new_tokens=min_new_tokens,
                )[: len(chunk)]
                strings = self.tokenizer.detokenize(tf.constant(out[:, 1:]))
                for i, text in zip(chunk, strings.numpy()):
                    results[i] = stop_strings.truncate(
                        text.decode("utf-8"), stops
                    )[0]
        return results[0] if single else results

    __call__ = translate  # model(x) is model.translate(x)
