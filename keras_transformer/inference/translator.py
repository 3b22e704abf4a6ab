"""`Translator`: source text in, translated text out."""

import keras
import numpy as np
import tensorflow as tf

from keras_transformer.applications.translation import Seq2SeqDecoder
from keras_transformer.data.translation import pad_batch
from keras_transformer.generation import (
    BeamSampler,
    GreedySampler,
    compile_decode,
    repetition,
    stateless_random,
    stop_strings,
)
from keras_transformer.generation.beam_search import (
    check_num_return_sequences,
)
from keras_transformer.generation.serialization import runtime_knobs
from keras_transformer.inference import _stream
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
        self._stream_steps = {}
        self._prepare = tf.function(
            self._prepare_fn, jit_compile=jit_compile, reduce_retracing=True
        )

    def _prepare_fn(self, encoder_token_ids):
        return self.decoder.prepare(
            encoder_token_ids, self.max_length, self.tokenizer.start_id
        )

    def _sampler(self, sampler, num_beams, n_best):
        """The `Sampler` of a call: greedy or beam search by `num_beams`
        unless `sampler` names another (a random one, or "beam")."""
        from keras_transformer.inference.generator import make_sampler

        if isinstance(sampler, str):
            if sampler == "beam":
                num_beams = num_beams if num_beams > 1 else 4
                sampler = None
            else:
                sampler = make_sampler(sampler)
        if sampler is None or isinstance(sampler, GreedySampler):
            if num_beams == 1:
                return GreedySampler()
            return BeamSampler(
                num_beams, DEFAULT_LENGTH_PENALTY, return_all_beams=n_best
            )
        if isinstance(sampler, BeamSampler):
            return BeamSampler(
                sampler.num_beams,
                sampler.length_penalty,
                return_all_beams=n_best,
            )
        if num_beams != 1:
            raise ValueError(
                "`num_beams` > 1 is beam search; it does not combine with "
                f"the sampler {sampler!r}. Received: num_beams={num_beams}"
            )
        return sampler

    def _decode_fn(self, sampler, return_scores=False):
        """The compiled loop of `sampler`'s kind and its run-time knobs."""
        kind, knobs = runtime_knobs(sampler)
        key = (kind, bool(return_scores))
        if key not in self._decode_fns:
            self._decode_fns[key] = compile_decode(
                self.decoder.step_fn,
                sampler,
                stop_token_ids=[self.tokenizer.end_id],
                pad_token_id=0,
                return_scores=return_scores,
                variables=self.model.variables,
                jit_compile=self.jit_compile,
            )
        return self._decode_fns[key], knobs

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
        sampler=None,
        seed=None,
        stop_token_ids=None,
        num_return_sequences=1,
        return_scores=False,
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
            sampler, seed, stop_token_ids, num_return_sequences,
                return_scores: as in `translate`.

        The controls, the sampler's temperature and p, the length penalty
        and the stop ids are run-time values: changing them does not
        recompile (see `keras_transformer.generation.repetition`).

        Returns:
            int32 numpy array [B, L]: start token, output, end, padding.
            With `num_return_sequences` K > 1, [B, K, L]; with
            `return_scores`, `(ids, scores)`, scores float32 [B] (or
            [B, K]).
        """
        num_beams = resolve_num_beams(num_beams, beam_size)
        repetition.check_controls(no_repeat_ngram_size, repetition_penalty)
        repetition.check_min_new_tokens(min_new_tokens)
        sampler = self._sampler(sampler, num_beams, False)
        count = check_num_return_sequences(num_return_sequences, sampler)
        beams = isinstance(sampler, BeamSampler)
        if beams:
            if count > sampler.num_beams:
                raise ValueError(
                    "`num_return_sequences` must be at most the beam count "
                    f"({sampler.num_beams}). Received: "
                    f"num_return_sequences={count}"
                )
            if length_penalty is not None:
                sampler = BeamSampler(sampler.num_beams, float(length_penalty))
            if count > 1:
                sampler = BeamSampler(
                    sampler.num_beams,
                    sampler.length_penalty,
                    return_all_beams=True,
                )
        encoder_token_ids = np.asarray(encoder_token_ids, np.int32)
        batch_size = encoder_token_ids.shape[0]
        if count > 1 and not beams:  # K draws: each source K times.
            encoder_token_ids = np.repeat(encoder_token_ids, count, axis=0)
        token_ids, cache = self._prepare(tf.constant(encoder_token_ids))
        decode_fn, knobs = self._decode_fn(sampler, return_scores)
        out = decode_fn(
            token_ids,
            None,
            cache,
            start_index=1,
            seed=seed,
            no_repeat_ngram_size=no_repeat_ngram_size,
            repetition_penalty=repetition_penalty,
            min_new_tokens=min_new_tokens,
            extra_stop_token_ids=stop_token_ids,
            **knobs,
        )
        scores = None
        if isinstance(out, tuple):
            out, scores = (keras.ops.convert_to_numpy(x) for x in out)
        else:
            out = keras.ops.convert_to_numpy(out)
        if count > 1:
            shape = (batch_size, count)
            out = out.reshape(shape + (-1,)) if not beams else out[:, :count]
            scores = scores.reshape(shape) if not beams else scores[:, :count]
        if return_scores:
            return out, scores
        return out

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
        sampler=None,
        seed=None,
        stop_token_ids=None,
        num_return_sequences=1,
        return_scores=False,
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
            sampler: None (default: greedy, or beam search when
                `num_beams` > 1), a name ("greedy", "random", "top_k",
                "top_p", "beam") or a `keras_transformer.generation`
                sampler (e.g. `TopPSampler(p=0.9, temperature=0.8)`).
            seed: int or None (default), for reproducible sampling (the
                noise is drawn per row of a batch).
            stop_token_ids: None (default), an int or a list of up to 16
                ints. A translation also ends at any of these token ids.
            num_return_sequences: int, default 1. Translations per text:
                the K best beams (K at most `num_beams`) or K draws of a
                random sampler.
            return_scores: bool, default False. Each translation comes as
                `(text, score)`: its summed log-probability (after the
                repetition controls, before any temperature), for beam
                search the length-penalized beam score.

        Returns:
            A str for a str; otherwise a list of str, in the order of
            `texts`. Blank texts (no subword pieces) give "" (score 0).
            With `num_return_sequences` > 1, a list of K per text; with
            `return_scores`, `(text, score)` pairs in place of the texts.

        Example:
        >>> translator.translate("God is love.")  # doctest: +SKIP
        'Dios es amor.'
        >>> translator.translate("God is love.", num_beams=4,
        ...     num_return_sequences=2, return_scores=True)  # doctest: +SKIP
        [('Dios es amor.', -1.9), ('Dios es el amor.', -2.7)]
        """
        num_beams = resolve_num_beams(num_beams, beam_size)
        repetition.check_controls(no_repeat_ngram_size, repetition_penalty)
        repetition.check_min_new_tokens(min_new_tokens)
        stops = stop_strings.check_stop(stop)
        count = check_num_return_sequences(
            num_return_sequences, self._sampler(sampler, num_beams, False)
        )
        texts, single = text_list(texts)
        empty = ("", 0.0) if return_scores else ""
        results = [[empty] * count for _ in texts]
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
                    sampler=sampler,
                    seed=seed,
                    stop_token_ids=stop_token_ids,
                    num_return_sequences=count,
                    return_scores=return_scores,
                )
                ids, scores = out if return_scores else (out, None)
                if scores is None:
                    scores = np.zeros(ids.shape[:-1], np.float32)
                ids = ids.reshape(size * count, -1)[: len(chunk) * count]
                scores = scores.reshape(-1)[: len(chunk) * count]
                strings = self.tokenizer.detokenize(tf.constant(ids[:, 1:]))
                for j, (text, score) in enumerate(
                    zip(strings.numpy(), scores, strict=True)
                ):
                    text = stop_strings.truncate(text.decode("utf-8"), stops)
                    item = (text[0], float(score)) if return_scores else text[0]
                    results[chunk[j // count]][j % count] = item
        if count == 1:
            results = [row[0] for row in results]
        return results[0] if single else results

    def stream(
        self,
        text,
        sampler=None,
        seed=None,
        *,
        no_repeat_ngram_size=0,
        repetition_penalty=1.0,
        min_new_tokens=0,
        stop=None,
        stop_token_ids=None,
    ):
        """Yields the translation of one text piece by piece.

        Runs the cached decoder step token by token (compiled once per
        model and sampler kind) so the translation appears as it is
        produced; joined, the pieces are what `translate` returns for the
        same text with the same settings (greedy, or a random sampler
        with the same seed and a batch of one).

        Args:
            text: str.
            sampler: None (default: greedy), a name or a non-beam
                `keras_transformer.generation` sampler.
            seed: int or None (default).
            no_repeat_ngram_size, repetition_penalty, min_new_tokens,
                stop, stop_token_ids: as in `translate`; text that could
                still become a stop string is held back until it cannot.

        Yields:
            str pieces of the translation.

        Example:
        >>> "".join(translator.stream("God is love."))  # doctest: +SKIP
        'Dios es amor.'
        """
        if not isinstance(text, str):
            raise ValueError(
                "`text` must be a str. Received: text of type "
                f"{type(text).__name__}"
            )
        stop_strings.check_stop(stop)
        sampler = self._sampler(sampler, 1, False)
        if isinstance(sampler, BeamSampler):
            raise ValueError(
                "Beam search cannot stream; use `translate`. "
                f"Received: sampler={sampler!r}"
            )
        values, stops = _stream.controls(
            no_repeat_ngram_size,
            repetition_penalty,
            min_new_tokens,
            1,
            self.tokenizer.end_id,
            stop_token_ids,
        )
        source = self.encode_texts([text])[0]
        if len(source) <= 1:
            return
        _, cache = self._prepare(tf.constant(pad_batch([source])))
        kind = repr(sampler)
        if kind not in self._stream_steps:
            self._stream_steps[kind] = _stream.make_step(
                self.decoder.step_fn, sampler
            )
        history = [self.tokenizer.start_id]
        new_tokens = _stream.tokens(
            self._stream_steps[kind],
            history,
            0,
            self.max_length - 1,
            cache,
            stateless_random.make_seed(seed),
            values,
            stops,
            self.max_length,
        )

        def text_of():
            pieces = self.tokenizer.detokenize(tf.constant([history[1:]]))
            return pieces.numpy()[0].decode("utf-8")

        yield from _stream.pieces(new_tokens, text_of, stop)

    __call__ = translate  # model(x) is model.translate(x)
