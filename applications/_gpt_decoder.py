"""Cached generation for `gpt_lm` models (private; the public home is
`keras_transformer.applications.gpt.GPTDecoder`).

Shape legend: B batch, P prompt width, L token buffer length, N heads,
H head size, D model size, V vocabulary.
"""

import warnings

from keras import ops

from keras_transformer import generation
from keras_transformer.generation.beam_search import (
    check_num_return_sequences,
)
from keras_transformer.generation.serialization import runtime_knobs
from keras_transformer.layers._utils import check_positive_int

# The layer names that `gpt_lm` gives and `GPTDecoder` looks up.
EMBEDDING_LAYER = "embeddings"
FINAL_NORM_LAYER = "final_norm"
BLOCK_PREFIX = "decoder_block_"

# Constructor arguments used when a sampler is given by name only.
_SAMPLER_DEFAULTS = {
    "top_k": {"k": 40},
    "top_p": {"p": 0.9},
    "beam": {"num_beams": 4},
}


class GPTDecoder:
    """Cached text generation for a model made by `gpt_lm`.

    The model's layers are reused as they are (found by name, so a model
    reloaded from a `.keras` file works too). The self-attention keys and
    values of every block live in a static-shape cache [B, 2, L, N, H] per
    layer; the prompt is processed in one batched pass (prefill) and each
    new token costs one single-position step. `generate` runs the whole
    loop compiled (XLA on TensorFlow, `jax.jit` on JAX) and keeps one
    compiled function per sampler kind, reused for every call: a new input
    shape (batch size, prompt width, length) compiles once, later calls with
    the same shapes run the compiled program.

    The cache passed through `keras_transformer.generation.decode` is a dict
    `{"layers": tuple of [B, 2, L, N, H], "prompt": int32 [B, P],
    "pending": bool [B]}`: while `pending` is True the first step runs the
    prefill of `prompt` (inside the compiled loop, with `keras.ops.cond`).

    Args:
        model: a `keras.Model` built by `gpt_lm` (trained or not, possibly
            reloaded from a `.keras` file).
        pad_token_id: int, default 0. The padding id written after a stop
            token.

    Example:
    >>> import keras_transformer
    >>> gpt = keras_transformer.applications.gpt
    >>> model = gpt.gpt_lm(50, 2, 16, 2, 32, max_sequence_length=32)
    >>> decoder = gpt.GPTDecoder(model)
    >>> decoder.max_sequence_length, len(decoder.blocks), decoder.head_dim
    (32, 2, 8)

    See `generate` for a batch of prompts of different lengths.
    """

    def __init__(self, model, pad_token_id=0):
        try:
            self.embedding = model.get_layer(EMBEDDING_LAYER)
            self.final_norm = model.get_layer(FINAL_NORM_LAYER)
        except ValueError:
            raise ValueError(
                "`model` must be a GPT model built by "
                "`keras_transformer.applications.gpt.gpt_lm` (layers "
                f"'{EMBEDDING_LAYER}', '{FINAL_NORM_LAYER}'). "
                f"Received: model={model.name!r}"
            ) from None
        self.blocks = [
            layer
            for layer in model.layers
            if layer.name.startswith(BLOCK_PREFIX)
        ]
        if not self.blocks:
            raise ValueError(
                "`model` has no decoder blocks named "
                f"'{BLOCK_PREFIX}<i>'. Received: model={model.name!r}"
            )
        self.model = model
        self.pad_token_id = pad_token_id
        self.max_sequence_length = self.embedding.sequence_length
        self.vocabulary_size = self.embedding.vocabulary_size
        attention = self.blocks[0].self_attention
        self.num_heads = attention.num_heads
        self.head_dim = attention.head_dim
        self.cache_dtype = self.embedding.compute_dtype
        self._compiled = {}
        # Number of times the decode loop was traced (for tests and logs).
        self.trace_count = 0

    # ------------------------------------------------------------------
    # Cache and step: the `step_fn` contract of `generation.decode`.
    # ------------------------------------------------------------------
    def empty_cache(self, prompt_token_ids, max_length):
        """Returns a cache whose first decode step runs the prefill.

        Args:
            prompt_token_ids: int tensor [B, P], left-aligned prompts
                (0 = padding).
            max_length: int, the token buffer length L (at most
                `max_sequence_length`).

        Returns:
            The cache dict described in the class docstring, with one zero
            [B, 2, L, N, H] buffer per block.

        Example:
        >>> import keras_transformer
        >>> gpt = keras_transformer.applications.gpt
        >>> decoder = gpt.GPTDecoder(gpt.gpt_lm(50, 2, 8, 2, 16, 8))
        >>> cache = decoder.empty_cache([[2, 7, 9]], max_length=6)
        >>> [tuple(layer.shape) for layer in cache["layers"]]
        [(1, 2, 6, 2, 4), (1, 2, 6, 2, 4)]
        """
        prompt_token_ids = ops.cast(prompt_token_ids, "int32")
        batch_size = ops.shape(prompt_token_ids)[0]
        layers = tuple(
            ops.zeros(
                (batch_size, 2, max_length, self.num_heads, self.head_dim),
                dtype=self.cache_dtype,
            )
            for _ in self.blocks
        )
        return {
            "layers": layers,
            "prompt": prompt_token_ids,
            "pending": ops.ones((batch_size,), dtype="bool"),
        }

    def _prefill_layers(self, prompt_token_ids, layers):
        x = self.embedding(prompt_token_ids)  # [B, P, D]
        updated = []
        for block, layer_cache in zip(self.blocks, layers, strict=True):
            x, layer_cache = block(
                x,
                self_attention_cache=layer_cache,
                self_attention_cache_update_index=0,
            )
            updated.append(layer_cache)
        return tuple(updated)

    def prefill(self, cache):
        """Writes the prompt's keys and values into the cache.

        Causal attention makes every prompt position depend only on the
        tokens before it, so padding after a shorter prompt changes nothing
        for that prompt; the decode loop rewrites those positions.

        Args:
            cache: dict, a cache from `empty_cache`.

        Returns:
            The cache with positions `0 .. P - 1` filled and `pending` False.

        Example:
        >>> import keras
        >>> import keras_transformer
        >>> gpt = keras_transformer.applications.gpt
        >>> decoder = gpt.GPTDecoder(gpt.gpt_lm(50, 1, 8, 2, 16, 8))
        >>> cache = decoder.prefill(decoder.empty_cache([[2, 7, 9]], 6))
        >>> keras_cache = keras.ops.convert_to_numpy(cache["layers"][0])
        >>> bool(keras_cache[:, :, :3].any()), bool(keras_cache[:, :, 3:].any())
        (True, False)
        """
        layers = self._prefill_layers(cache["prompt"], cache["layers"])
        return {
            "layers": layers,
            "prompt": cache["prompt"],
            "pending": ops.zeros_like(cache["pending"]),
        }

    def step_fn(self, token_ids, index, cache):
        """One cached decoding step (see `generation.decode`).

        Args:
            token_ids: int32 tensor [B], the tokens at position `index`.
            index: int or scalar int tensor, their position.
            cache: dict, the cache (see `empty_cache`).

        Returns:
            `(logits [B, V] float32, cache)`: next-token logits for
            position `index + 1` and the updated cache.

        Example:
        >>> import keras
        >>> import numpy as np
        >>> import keras_transformer
        >>> gpt = keras_transformer.applications.gpt
        >>> model = gpt.gpt_lm(50, 1, 8, 2, 16, 8)
        >>> decoder = gpt.GPTDecoder(model)
        >>> cache = decoder.prefill(decoder.empty_cache([[2, 7]], 4))
        >>> logits, cache = decoder.step_fn(keras.ops.array([9]), 2, cache)
        >>> full = model({"token_ids": np.array([[2, 7, 9]]),
        ...               "padding_mask": np.ones((1, 3), bool)})
        >>> bool(np.allclose(logits, full[:, 2], atol=1e-5))
        True
        """
        layers = ops.cond(
            cache["pending"][0],
            lambda: self._prefill_layers(cache["prompt"], cache["layers"]),
            lambda: tuple(cache["layers"]),
        )
        x = self.embedding(token_ids[:, None], start_index=index)  # [B, 1, D]
        updated = []
        for block, layer_cache in zip(self.blocks, layers, strict=True):
            x, layer_cache = block(
                x,
                self_attention_cache=layer_cache,
                self_attention_cache_update_index=index,
            )
            updated.append(layer_cache)
        x = self.final_norm(x)
        logits = self.embedding(x, reverse=True)[:, 0, :]  # [B, V]
        cache = {
            "layers": tuple(updated),
            "prompt": cache["prompt"],
            "pending": ops.zeros_like(cache["pending"]),
        }
        return ops.cast(logits, "float32"), cache

    # ------------------------------------------------------------------
    # Batched, compiled generation.
    # ------------------------------------------------------------------
    def prepare(self, prompts_token_ids, max_new_tokens):
        """Builds the left-aligned token buffer for a batch of prompts.

        Prompts too long to leave room for `max_new_tokens` within
        `max_sequence_length` keep their last tokens.

        Args:
            prompts_token_ids: list of B non-empty lists of int ids.
            max_new_tokens: int, tokens to generate per prompt.

        Returns:
            A tuple `(prompt [B, P], token_ids [B, L], prompt_mask [B, L],
            lengths)` of numpy-convertible lists, where P is the longest
            (clipped) prompt, L = P + max_new_tokens and `lengths` the
            clipped prompt lengths.

        Example:
        >>> import keras_transformer
        >>> gpt = keras_transformer.applications.gpt
        >>> decoder = gpt.GPTDecoder(gpt.gpt_lm(50, 1, 8, 2, 16, 8))
        >>> prompt, token_ids, prompt_mask, lengths = decoder.prepare(
        ...     [[2, 7, 9], [2]], max_new_tokens=2)
        >>> prompt, token_ids[1], lengths
        ([[2, 7, 9], [2, 0, 0]], [2, 0, 0, 0, 0], [3, 1])
        """
        check_positive_int("max_new_tokens", max_new_tokens)
        if max_new_tokens >= self.max_sequence_length:
            raise ValueError(
                "`max_new_tokens` must leave room for at least one prompt "
                f"token within the model's {self.max_sequence_length} "
                f"positions. Received: max_new_tokens={max_new_tokens}"
            )
        if not prompts_token_ids:
            raise ValueError(
                "`prompts_token_ids` must hold at least one prompt. "
                "Received: prompts_token_ids=[]"
            )
        room = self.max_sequence_length - max_new_tokens
        prompts = []
        for index, row in enumerate(prompts_token_ids):
            row = [int(t) for t in row]
            if not row:
                raise ValueError(
                    "Every prompt needs at least one token (e.g. the start "
                    f"token). Received: an empty prompt, "
                    f"prompts_token_ids[{index}]=[]"
                )
            prompts.append(row[-room:])
        lengths = [len(row) for row in prompts]
        width = max(lengths)
        length = width + max_new_tokens
        prompt = [row + [0] * (width - len(row)) for row in prompts]
        token_ids = [row + [0] * (length - len(row)) for row in prompts]
        prompt_mask = [[i < n for i in range(length)] for n in lengths]
        return prompt, token_ids, prompt_mask, lengths

    def _decode_fn(self, sampler, n_best=False, scores=False, stops=True):
        """`(decode_fn, knobs, sampler)`: the compiled loop of the sampler's
        kind (run-time knobs apart) and the knob values."""
        if isinstance(sampler, str):
            sampler = generation.get(
                sampler, **_SAMPLER_DEFAULTS.get(sampler.lower(), {})
            )
        sampler = generation.get(sampler)
        if n_best and isinstance(sampler, generation.BeamSampler):
            beams, penalty = sampler.num_beams, sampler.length_penalty
            sampler = generation.BeamSampler(beams, penalty, True)
        kind, knobs = runtime_knobs(sampler)
        key = (kind, bool(scores), bool(stops))
        if key not in self._compiled:

            def step_fn(token_ids, index, cache):
                self.trace_count += 1
                return self.step_fn(token_ids, index, cache)

            self._compiled[key] = generation.compile_decode(
                step_fn,
                sampler,
                pad_token_id=self.pad_token_id,
                return_scores=scores,
                variables=self.model.variables,
                runtime_stop_ids=stops,
            )
        return self._compiled[key], knobs, sampler

    def generate(
        self,
        prompts_token_ids,
        max_new_tokens=32,
        sampler="greedy",
        stop_token_ids=None,
        seed=None,
        *,
        no_repeat_ngram_size=0,
        repetition_penalty=1.0,
        min_new_tokens=0,
        num_return_sequences=1,
        return_scores=False,
    ):
        """Generates continuations of a batch of prompts of any lengths.

        Args:
            prompts_token_ids: list of B non-empty lists of int token ids.
            max_new_tokens: int, default 32. The most tokens generated per
                prompt.
            sampler: a `keras_transformer.generation.Sampler` or a str,
                default `"greedy"`. A name is one of `"greedy"`,
                `"random"`, `"top_k"` (k=40), `"top_p"` (p=0.9) and
                `"beam"` (4 beams). Its `temperature`, `p` and
                `length_penalty` are passed at run time: changing them
                does not recompile.
            stop_token_ids: None, int or up to 16 ints (run-time): a row
                ends after producing one (kept).
            seed: None or int, default None (an int: reproducible).
            no_repeat_ngram_size: int, default 0 (off). No n-gram of this
                size appears twice in a row's prompt plus continuation.
            repetition_penalty: float > 0, default 1.0 (off). CTRL penalty
                on tokens already in the prompt or continuation. Both are
                run-time values (see
                `keras_transformer.generation.repetition`): changing them
                does not recompile.
            min_new_tokens: int, default 0 (off). No row stops before it
                has this many new tokens (run-time too).
            num_return_sequences: int, default 1. Continuations per prompt:
                the best beams (at most `num_beams`) or independent draws
                of a random sampler (not greedy: it has only one).
            return_scores: bool, default False. Also return each row's
                score (see `keras_transformer.generation.decode`).

        Returns:
            A list of B * `num_return_sequences` lists of int (the
            continuations of prompt i at rows `i * K .. i * K + K - 1`): the
            new tokens of each row, at most `max_new_tokens`, ending at the
            first stop token. With `return_scores`, `(rows, scores)` with
            `scores` a list of float, one per row.

        Example:
        >>> import keras_transformer
        >>> gpt = keras_transformer.applications.gpt
        >>> decoder = gpt.GPTDecoder(gpt.gpt_lm(50, 1, 8, 2, 16, 16))
        >>> prompts = [[2, 7], [2, 7, 9, 4]]  # lengths may differ
        >>> new_tokens = decoder.generate(prompts, max_new_tokens=4)
        >>> [len(row) for row in new_tokens]
        [4, 4]
        >>> decoder.generate(prompts, 4) == new_tokens  # greedy, compiled once
        True
        >>> decoder.trace_count
        1
        >>> rows, scores = decoder.generate(
        ...     prompts, 4, "beam", num_return_sequences=2, return_scores=True)
        >>> len(rows), scores[0] >= scores[1]
        (4, True)
        """
        count = check_num_return_sequences(num_return_sequences, sampler)
        # No stop ids: a loop without their check (all ids share another).
        decode_fn, knobs, sampler = self._decode_fn(
            sampler, count > 1, return_scores, stop_token_ids is not None
        )
        beams = isinstance(sampler, generation.BeamSampler)
        if count > 1 and beams and count > sampler.num_beams:
            raise ValueError(
                "`num_return_sequences` must be at most the beam count "
                f"({sampler.num_beams}). Received: "
                f"num_return_sequences={count}"
            )
        if count > 1 and not beams:
            prompts_token_ids = [
                row for row in prompts_token_ids for _ in range(count)
            ]
        prompt, token_ids, prompt_mask, lengths = self.prepare(
            prompts_token_ids, max_new_tokens
        )
        length = len(token_ids[0])
        cache = self.empty_cache(ops.convert_to_tensor(prompt, "int32"), length)
        output = decode_fn(
            token_ids,
            prompt_mask,
            cache,
            start_index=min(lengths),
            seed=seed,
            no_repeat_ngram_size=no_repeat_ngram_size,
            repetition_penalty=repetition_penalty,
            min_new_tokens=min_new_tokens,
            extra_stop_token_ids=stop_token_ids,
            max_new_tokens=max_new_tokens,
            **knobs,
        )
        scores = None
        if isinstance(output, tuple):
            output, scores = output
            scores = ops.convert_to_numpy(scores)
        output = ops.convert_to_numpy(output)
        if count > 1 and beams:  # [B, K_beams, L]: the K best of each.
            output = output[:, :count].reshape(-1, output.shape[-1])
            scores = scores[:, :count].reshape(-1)
            lengths = [n for n in lengths for _ in range(count)]
        rows = self.completions(
            output.tolist(), lengths, max_new_tokens, stop_token_ids
        )
        if return_scores:
            return rows, [float(x) for x in scores]
        return rows

    def completions(self, output, lengths, max_new_tokens, stop_token_ids):
        """Cuts each row of a decoded buffer to its new tokens.

        Args:
            output: list of B lists of int, the [B, L] decoded buffer.
            lengths: list of B ints, the prompt lengths.
            max_new_tokens: int, the most new tokens per row.
            stop_token_ids: None, int or list of ints.

        Returns:
            A list of B lists of int.

        Example:
        >>> import keras_transformer
        >>> gpt = keras_transformer.applications.gpt
        >>> decoder = gpt.GPTDecoder(gpt.gpt_lm(50, 1, 8, 2, 16, 8))
        >>> decoder.completions([[2, 7, 9, 3, 5], [2, 4, 4, 4, 6]], [2, 1],
        ...                     max_new_tokens=3, stop_token_ids=3)
        [[9, 3], [4, 4, 4]]
        """
        if stop_token_ids is None:
            stops = set()
        elif isinstance(stop_token_ids, int):
            stops = {stop_token_ids}
        else:
            stops = set(int(t) for t in stop_token_ids)
        results = []
        for row, n in zip(output, lengths, strict=True):
            new = []
            for token in row[n : n + max_new_tokens]:
                new.append(int(token))
                if token in stops:
                    break
            results.append(new)
        return results


class GPTGenerator(GPTDecoder):
    """Deprecated name of `GPTDecoder`; warns and behaves the same.

    Args:
        model: a `keras.Model` built by `gpt_lm`.
        pad_token_id: int, default 0. The padding id written after a stop
            token.

    Example:
    >>> import warnings
    >>> import keras_transformer
    >>> gpt = keras_transformer.applications.gpt
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     decoder = gpt.GPTGenerator(gpt.gpt_lm(50, 1, 8, 2, 16, 8))
    >>> isinstance(decoder, gpt.GPTDecoder), caught[0].category.__name__
    (True, 'DeprecationWarning')
    """

    def __init__(self, model, pad_token_id=0):
        warnings.warn(
            "`keras_transformer.applications.gpt.GPTGenerator` is deprecated "
            "and will be removed; use `GPTDecoder` (the same class).",
            DeprecationWarning,
            stacklevel=2,
        )
        super().__init__(model, pad_token_id=pad_token_id)
