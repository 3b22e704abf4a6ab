"""`TextGenerator`: prompts in, generated text out, batched or streamed."""

import tensorflow as tf

from keras_transformer import generation
from keras_transformer.applications.gpt import GPTDecoder
from keras_transformer.generation import (
    repetition,
    stateless_random,
    stop_strings,
)
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

        Returns:
            `(prompt_ids, new_ids)`: lists of lists of int; the prompt ids
            are those the model read (clipped to leave room).
        """
        prompt_ids = encode_prompts(self.tokenizer, prompts)
        if not prompt_ids:
            return [], []
        new_ids = self.decoder.generate(
            prompt_ids,
            max_new_tokens=max_new_tokens,
            sampler=sampler,
            stop_token_ids=[self.tokenizer.end_id],
            seed=seed,
            no_repeat_ngram_size=no_repeat_ngram_size,
            repetition_penalty=repetition_penalty,
            min_new_tokens=min_new_tokens,
        )
        room = self.max_sequence_length - max_new_tokens
        return [row[-room:] for row in prompt_ids], new_ids

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

        Returns:
            A str for a str; otherwise a list of str, one per prompt.

        Example:
        >>> generator.generate(["And God said"], 8)  # doctest: +SKIP
        [', Let there be light']
        """
        check_verbose(verbose)
        repetition.check_controls(no_repeat_ngram_size, repetition_penalty)
        repetition.check_min_new_tokens(min_new_tokens)
        stops = stop_strings.check_stop(stop)
        prompts, single = text_list(prompts, "prompts")
        results = []
        size = self.batch_size or max(len(prompts), 1)
        for begin, end in self._batches(len(prompts), size, verbose):
            prompt_ids, new_ids = self.generate_ids(
                prompts[begin:end],
                max_new_tokens,
                sampler,
                seed,
                no_repeat_ngram_size=no_repeat_ngram_size,
                repetition_penalty=repetition_penalty,
                min_new_tokens=min_new_tokens,
            )
            texts = [
                stop_strings.truncate(text, stops)[0]
                for text in self._detokenize(new_ids)
            ]
            if return_full_text:
                texts = self._full_texts(prompt_ids, new_ids, texts)
            results.extend(texts)
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
            step_fn = self.decoder.step_fn

            def step(token, index, cache, seed, history, controls):
                logits, cache = step_fn(token, index, cache)
                logits = repetition.apply_repetition_controls(
                    logits,
                    history,
                    index + 1,
                    no_repeat_ngram_size=controls[0],
                    repetition_penalty=controls[1],
                )
                # controls[3]: the prompt length, [1].
                logits = repetition.block_early_stop(
                    logits, index + 1, controls[3], controls[4], controls[2]
                )
                chosen = sampler.choose(
                    logits, stateless_random.fold_in(seed, index + 1)
                )
                return chosen, cache

            self._stream_steps[key] = tf.function(step)
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
        repetition.check_controls(no_repeat_ngram_size, repetition_penalty)
        repetition.check_min_new_tokens(min_new_tokens)
        stream = stop_strings.StopStringStream(stop)
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
        length = self.max_sequence_length
        cache = self.decoder.empty_cache(
            tf.constant(prompt_ids, tf.int32), length
        )
        cache = self._prefill(cache)
        # A fixed-shape cache: the step compiles once for every prompt.
        cache["prompt"] = tf.zeros((1, 1), tf.int32)
        step = self._stream_step(sampler)
        seed = stateless_random.make_seed(seed)
        tokens = list(prompt_ids[0][: lengths[0]])
        shown = self.detokenize([tokens])[0]
        end = self.tokenizer.end_id
        controls = (
            tf.constant(no_repeat_ngram_size, tf.int32),
            tf.constant(repetition_penalty, tf.float32),
            tf.constant(min_new_tokens, tf.int32),
            tf.constant([lengths[0]], tf.int32),
            tf.constant([end], tf.int32),
        )
        text = shown
        for index in range(lengths[0] - 1, lengths[0] - 1 + max_new_tokens):
            # The tokens so far, in a fixed-shape buffer [1, L].
            history = tf.constant([tokens + [0] * (length - len(tokens))])
            token, cache = step(
                tf.constant([tokens[-1]], tf.int32),
                tf.constant(index, tf.int32),
                cache,
                seed,
                history,
                controls,
            )
            token = int(token.numpy()[0])
            if token == end:
                break
            tokens.append(token)
            text = self.detokenize([tokens])[0]
            if text.startswith(shown):
                piece = stream.push(text[len(shown) :])
                if piece:
                    yield piece
                if stream.stopped:
                    return
        if text.startswith(shown):
            piece = stream.finish(text[len(shown) :])
            if piece:
                yield piece
