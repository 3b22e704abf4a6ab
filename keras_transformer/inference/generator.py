"""`TextGenerator`: prompts in, generated text out, batched or streamed."""

import tensorflow as tf

from keras_transformer import generation
from keras_transformer.applications.gpt import GPTDecoder
from keras_transformer.generation import (
    _buffer,
    repetition,
    stateless_random,
    stop_strings,
)
from keras_transformer.generation.beam_search import (
    check_num_return_sequences,
)
from keras_transformer.inference import _stream
from keras_transformer.inference._base import (
    InferenceModel,
    check_batch_size,
    check_verbose,
    text_list,
)

SAMPLERS = ("greedy", "random", "top_k", "top_p", "beam")


def encode_prompts(tokenizer, prompts):
    """Token ids `[<s>, ...]` of each prompt.

    Args:
        tokenizer: a `keras_transformer.tokenizers.SubwordTokenizer`.
        prompts: list of str (an empty string gives `[<s>]`).

    Returns:
        A list of lists of int, one per prompt.

    Example:
    >>> from keras_transformer.inference.generator import encode_prompts
    >>> encode_prompts(tokenizer, ["", "In the beginning"])  # doctest: +SKIP
    [[2], [2, 45, 8, 312]]
    """
    if isinstance(prompts, str):
        raise ValueError(
            "`prompts` must be a list of strings. "
            f"Received: prompts={prompts!r}"
        )
    prompts, _ = text_list(prompts, "prompts")
    if not prompts:
        return []
    ids = tokenizer.tokenize(prompts, add_start=True)
    return [row.tolist() for row in ids.numpy()]


def _buffer_ids(stop_token_ids):
    """The run-time stop ids given (checked), without the padding."""
    return [t for t in _buffer.runtime_stop_ids(stop_token_ids) if t >= 0]


def make_sampler(
    name="greedy", temperature=1.0, top_k=40, top_p=0.9, num_beams=4
):
    """Builds a sampler from command-line style settings.

    Args:
        name: str, default "greedy". One of `SAMPLERS`.
        temperature: float, default 1.0. For "random", "top_k", "top_p".
        top_k: int, default 40. k of "top_k".
        top_p: float, default 0.9. p of "top_p".
        num_beams: int, default 4. Beams of "beam".

    Returns:
        A `keras_transformer.generation.Sampler`.

    Example:
    >>> from keras_transformer.inference.generator import make_sampler
    >>> type(make_sampler("top_k", top_k=10)).__name__
    'TopKSampler'
    """
    if name == "greedy":
        return generation.GreedySampler()
    if name == "random":
        return generation.RandomSampler(temperature=temperature)
    if name == "top_k":
        return generation.TopKSampler(k=top_k, temperature=temperature)
    if name == "top_p":
        return generation.TopPSampler(p=top_p, temperature=temperature)
    if name == "beam":
        return generation.BeamSampler(num_beams=num_beams)
    raise ValueError(
        f"`sampler` must be one of {SAMPLERS}. Received: sampler={name!r}"
    )


class TextGenerator(InferenceModel):
    """Generates text from strings with a GPT model and its tokenizer.

    Prompts are encoded as `<s> ids`; generation stops at `</s>`. A prompt
    too long to leave room for `max_new_tokens` keeps its last tokens.

    Args:
        model: a `keras.Model` built by
            `keras_transformer.applications.gpt.gpt_lm`.
        tokenizer: its `keras_transformer.tokenizers.SubwordTokenizer`.
        metadata: dict or None (default). The model directory's metadata.
        batch_size: int or None (default). Prompts generated together;
            None generates all prompts of a call as one batch (a seeded
            sampler draws its noise per row of the batch, so the batch size
            is part of what a seed reproduces).

    Example:
    >>> import keras_transformer
    >>> generator = keras_transformer.load("runs/gpt")  # doctest: +SKIP
    >>> generator("In the beginning", max_new_tokens=20)  # doctest: +SKIP
    ' God created the heavens and the earth.'
    """

    task = "gpt"
    unit_name = "prompt"

    def __init__(self, model, tokenizer, metadata=None, batch_size=None):
        super().__init__(model, tokenizer, metadata)
        self.decoder = GPTDecoder(model)
        self.max_sequence_length = self.decoder.max_sequence_length
        self.batch_size = check_batch_size(batch_size, allow_none=True)
        self._stream_steps = {}
        self._prefill = tf.function(self.decoder.prefill, reduce_retracing=True)

    def generate_ids(
        self,
        prompts,
        max_new_tokens=64,
        sampler="greedy",
        seed=None,
        *,
        no_repeat_ngram_size=0,
        repetition_penalty=1.0,
        min_new_tokens=0,
        stop_token_ids=None,
        num_return_sequences=1,
        return_scores=False,
    ):
        """Generates token ids for a list of prompts (one batch).

        Args:
            prompts: list of str.
            max_new_tokens: int, default 64. The most new tokens per prompt.
            sampler: a `keras_transformer.generation.Sampler` or a name,
                default "greedy".
            seed: int or None (default), for reproducible sampling.
            no_repeat_ngram_size: int, default 0 (off). As in `generate`.
            repetition_penalty: float > 0, default 1.0 (off). As in
                `generate`.
            min_new_tokens: int, default 0 (off). As in `generate`.
            stop_token_ids, num_return_sequences, return_scores: as in
                `generate`.

        Returns:
            `(prompt_ids, new_ids)`: lists of lists of int; the prompt ids
            are those the model read (clipped to leave room). With
            `num_return_sequences` K, `new_ids` holds K rows per prompt
            (prompt i's at `i * K .. i * K + K - 1`). With `return_scores`,
            `(prompt_ids, new_ids, scores)`.
        """
        prompt_ids = encode_prompts(self.tokenizer, prompts)
        if not prompt_ids:
            return ([], [], []) if return_scores else ([], [])
        extra = _buffer_ids(stop_token_ids)
        result = self.decoder.generate(
            prompt_ids,
            max_new_tokens=max_new_tokens,
            sampler=sampler,
            stop_token_ids=[self.tokenizer.end_id] + extra,
            seed=seed,
            no_repeat_ngram_size=no_repeat_ngram_size,
            repetition_penalty=repetition_penalty,
            min_new_tokens=min_new_tokens,
            num_return_sequences=num_return_sequences,
            return_scores=return_scores,
        )
        room = self.max_sequence_length - max_new_tokens
        prompt_ids = [row[-room:] for row in prompt_ids]
        if return_scores:
            return (prompt_ids, *result)
        return prompt_ids, result

    def generate(
        self,
        prompts,
        max_new_tokens=64,
        sampler="greedy",
        seed=None,
        return_full_text=False,
        verbose=0,
        *,
        no_repeat_ngram_size=0,
        repetition_penalty=1.0,
        min_new_tokens=0,
        stop=None,
        stop_token_ids=None,
        num_return_sequences=1,
        return_scores=False,
    ):
        """Completes a prompt or a batch of prompts (compiled, batched).

        Args:
            prompts: str, or a list of str (an empty string starts a new
                passage).
            max_new_tokens: int, default 64. The most new tokens per prompt.
            sampler: a `keras_transformer.generation.Sampler` or a name of
                `SAMPLERS`, default "greedy".
            seed: int or None (default), for reproducible sampling.
            return_full_text: bool, default False. Return prompt plus
                completion, detokenized together; by default only the
                completion (the text of the new tokens, as the exported
                SavedModel returns it).
            verbose: int, default 0. 1 shows a progress bar (2 one line)
                when `batch_size` splits the prompts into several batches.
            no_repeat_ngram_size: int, default 0 (off). Against loops: no
                n-gram of this size appears twice in a prompt plus its
                completion (e.g. 3).
            repetition_penalty: float > 0, default 1.0 (off). Against
                loops: logits of tokens already in the prompt or the
                completion are divided by it when positive, multiplied when
                negative (CTRL; e.g. 1.2). Both controls are run-time
                values: changing them does not recompile.
            min_new_tokens: int, default 0 (off). The end token is
                forbidden until a completion has this many tokens (a
                run-time value too).
            stop: None (default), a str or a list of str. A completion
                ends before the first occurrence of any of them in its
                text (removed), whichever tokens it spans
                (`keras_transformer.generation.stop_strings`).
            stop_token_ids: None (default), an int or a list of up to 16
                ints. A completion also ends at any of these token ids
                (beside the end token; a run-time value).
            num_return_sequences: int, default 1. Completions per prompt:
                the K best beams of the beam sampler (K at most its
                `num_beams`) or K independent draws of a random sampler.
            return_scores: bool, default False. Each completion comes as
                `(text, score)`, the score its summed log-probability
                (for beam search the length-penalized beam score).

        Returns:
            A str for a str; otherwise a list of str, one per prompt. With
            `num_return_sequences` > 1, a list of K for each prompt; with
            `return_scores`, `(text, score)` pairs in place of the texts.

        Example:
        >>> generator.generate(["And God said"], 8)  # doctest: +SKIP
        [', Let there be light']
        >>> generator.generate("And God said", 8, "beam",
        ...     num_return_sequences=2, return_scores=True)  # doctest: +SKIP
        [(', Let there be light', -4.1), (', Let us make man', -4.6)]
        """
        check_verbose(verbose)
        repetition.check_controls(no_repeat_ngram_size, repetition_penalty)
        repetition.check_min_new_tokens(min_new_tokens)
        stops = stop_strings.check_stop(stop)
        prompts, single = text_list(prompts, "prompts")
        results = []
        size = self.batch_size or max(len(prompts), 1)
        count = check_num_return_sequences(num_return_sequences, sampler)
        for begin, end in self._batches(len(prompts), size, verbose):
            prompt_ids, new_ids, *scores = self.generate_ids(
                prompts[begin:end],
                max_new_tokens,
                sampler,
                seed,
                no_repeat_ngram_size=no_repeat_ngram_size,
                repetition_penalty=repetition_penalty,
                min_new_tokens=min_new_tokens,
                stop_token_ids=stop_token_ids,
                num_return_sequences=count,
                return_scores=return_scores,
            )
            texts = [
                stop_strings.truncate(text, stops)[0]
                for text in self._detokenize(new_ids)
            ]
            if return_full_text:
                repeated = [row for row in prompt_ids for _ in range(count)]
                texts = self._full_texts(repeated, new_ids, texts)
            if return_scores:
                texts = list(zip(texts, scores[0], strict=True))
            results.extend(texts)
        if count > 1:
            results = [
                results[i : i + count] for i in range(0, len(results), count)
            ]
        return results[0] if single else results

    def _full_texts(self, prompt_ids, new_ids, completions):
        """Prompt and completion detokenized together, the completion cut
        as `completions` are (by stop strings)."""
        rows = [p + n for p, n in zip(prompt_ids, new_ids, strict=True)]
        texts = []
        for full, whole, cut in zip(
            self._detokenize(rows),
            self._detokenize(new_ids),
            completions,
            strict=True,
        ):
            if cut != whole and full.endswith(whole):
                full = full[: len(full) - len(whole)] + cut
            texts.append(full)
        return texts

    __call__ = generate  # model(x) is model.generate(x)

    def detokenize(self, rows):
        """Text of lists of token ids (start, end and padding dropped).

        Args:
            rows: list of lists of int.

        Returns:
            A list of str.
        """
        if not rows:
            return []
        texts = self.tokenizer.detokenize(tf.ragged.constant(rows, tf.int32))
        return [t.decode("utf-8") for t in texts.numpy().tolist()]

    _detokenize = detokenize  # The name used before; the CLI reads it.

    def _stream_step(self, sampler):
        key = repr(sampler)
        if key not in self._stream_steps:
            self._stream_steps[key] = _stream.make_step(
                self.decoder.step_fn, sampler
            )
        return self._stream_steps[key]

    def stream(
        self,
        prompt,
        max_new_tokens=64,
        sampler="greedy",
        seed=None,
        *,
        no_repeat_ngram_size=0,
        repetition_penalty=1.0,
        min_new_tokens=0,
        stop=None,
        stop_token_ids=None,
    ):
        """Yields the text of one completion piece by piece.

        Runs the cached step token by token (one TensorFlow graph per
        model and sampler, whatever the prompt) so text appears as it is
        produced. With the same seed it yields the same tokens as
        `generate` with a batch of one.

        Args:
            prompt: str.
            max_new_tokens: int, default 64.
            sampler: a non-beam `keras_transformer.generation.Sampler` or
                its name, default "greedy".
            seed: int or None (default).
            no_repeat_ngram_size: int, default 0 (off). As in `generate`.
            repetition_penalty: float > 0, default 1.0 (off). As in
                `generate`.
            min_new_tokens: int, default 0 (off). As in `generate`.
            stop: None (default), a str or a list of str. As in
                `generate`; the stream ends where a stop string begins, and
                text that could still become one is held back until it
                cannot.
            stop_token_ids: None (default), an int or a list of up to 16
                ints. As in `generate`.

        Yields:
            str pieces; joined they give the prompt's full continuation
            (with the space between the prompt and the first new word).

        Example:
        >>> "".join(generator.stream("And God said", 8))  # doctest: +SKIP
        ', Let there be light'
        """
        if not isinstance(prompt, str):
            raise ValueError(
                "`prompt` must be a str. Received: prompt of type "
                f"{type(prompt).__name__}"
            )
        stop_strings.check_stop(stop)
        if isinstance(sampler, str):
            sampler = make_sampler(sampler)
        if isinstance(sampler, generation.BeamSampler):
            raise ValueError(
                "Beam search cannot stream; use `generate`. "
                f"Received: sampler={sampler!r}"
            )
        prompt_ids, _, _, lengths = self.decoder.prepare(
            encode_prompts(self.tokenizer, [prompt]), max_new_tokens
        )
        values, stops = _stream.controls(
            no_repeat_ngram_size,
            repetition_penalty,
            min_new_tokens,
            lengths[0],
            self.tokenizer.end_id,
            stop_token_ids,
        )
        length = self.max_sequence_length
        cache = self.decoder.empty_cache(
            tf.constant(prompt_ids, tf.int32), length
        )
        cache = self._prefill(cache)
        # A fixed-shape cache: the step compiles once for every prompt.
        cache["prompt"] = tf.zeros((1, 1), tf.int32)
        history = list(prompt_ids[0][: lengths[0]])
        new_tokens = _stream.tokens(
            self._stream_step(sampler),
            history,
            lengths[0] - 1,
            max_new_tokens,
            cache,
            stateless_random.make_seed(seed),
            values,
            stops,
            length,
        )
        yield from _stream.pieces(
            new_tokens, lambda: self.detokenize([history])[0], stop
        )
