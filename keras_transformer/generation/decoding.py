"""The one decode loop of keras_transformer, shared by every sampler.

Contract between a model and the loop:

- `step_fn(token_ids, index, cache) -> (logits, cache)`. `token_ids` is an
  int32 tensor `[B]` holding the tokens at position `index` (a scalar int32
  tensor inside the loop); `cache` is any nested structure (dict, tuple,
  list) of tensors, every leaf with the batch on axis 0 (KV caches, encoder
  outputs and their padding mask for cross-attention, ...). It returns the
  next-token logits `[B, V]` for position `index + 1` and the updated cache,
  with the same structure, shapes and dtypes (a static-shape cache written
  in place, e.g. with `keras.ops.slice_update` at `index`).
- The caller prefills the cache before the loop: positions
  `0 .. start_index - 2` must be in it. Prefilling further is harmless,
  because the step at `index` rewrites position `index` with the same token.
- `token_ids [B, L]` is a static-shape buffer with left-aligned prompts;
  `prompt_mask [B, L]` is True on prompt tokens. Prompts may have
  different lengths: `start_index` is the shortest prompt length, and the
  loop keeps (teacher-forces) the prompt tokens of longer prompts.
- At step `i` (from `start_index` to `L - 1`) the loop calls
  `step_fn(token_ids[:, i - 1], i - 1, cache)`, lets the sampler choose a
  token, keeps the prompt token where `prompt_mask[:, i]` is True, and writes
  the result at `i`. A row is done once it produces one of `stop_token_ids`
  outside its prompt (the stop token is kept); later positions hold
  `pad_token_id`. The loop stops early when every row is done.

A step function wrapping a cached decoder stack looks like this (the layer
arguments are those of `keras_transformer.layers.TransformerDecoder`; the
cache holds one self-attention cache `[B, 2, L, N, H]` per block, one
cross-attention cache per block and the encoder padding mask):

    def step_fn(token_ids, index, cache):
        x = embedding(token_ids[:, None], start_index=index)  # [B, 1, D]
        self_caches = []
        for block, self_cache, cross_cache in zip(
            blocks, cache["self"], cache["cross"]
        ):
            x, self_cache = block(
                x,
                self_attention_cache=self_cache,
                self_attention_cache_update_index=index,
                cross_attention_cache=cross_cache,
                encoder_padding_mask=cache["encoder_padding_mask"],
            )
            self_caches.append(self_cache)
        logits = lm_head(x)[:, 0, :]  # [B, V]
        return logits, {**cache, "self": self_caches}

Everything is written with `keras.ops` (a `keras.ops.while_loop` over static
shapes), so `decode` runs eagerly, inside `tf.function(jit_compile=True)`
and inside `jax.jit`. `compile_decode` wraps it in the backend's compiler.
"""

import keras
from keras import ops

from keras_transformer.generation import _buffer, repetition, stateless_random
from keras_transformer.generation.beam_search import BeamSampler, _beam_decode
from keras_transformer.generation.serialization import get as get_sampler

_NO_LIMIT = 2**30  # `max_new_tokens` of a compiled loop given none

# Sampler constructor arguments that may change between calls of a compiled
# decode function without retracing, with the dtype they are passed in.
_RUNTIME_KNOBS = {
    "temperature": "float32",
    "k": "int32",
    "p": "float32",
    "length_penalty": "float32",
}


def decode(
    step_fn,
    token_ids,
    prompt_mask,
    cache,
    sampler,
    *,
    start_index,
    stop_token_ids=None,
    pad_token_id=0,
    seed=None,
    return_scores=False,
    no_repeat_ngram_size=0,
    repetition_penalty=1.0,
    min_new_tokens=0,
    max_new_tokens=None,
):
    """Fills a static-shape token buffer one position at a time.

    The one decode loop of the package: a `keras.ops.while_loop` over a
    static-shape cache, with the next token chosen by `sampler` (greedy,
    random, top-k, top-p) or by beam search (`BeamSampler`, which expands
    the batch to `B * K` rows, repeating every cache leaf on axis 0, and
    reorders the cache by parent beam each step). See the module docstring
    for the `step_fn` contract.

    Two repetition controls (`keras_transformer.generation.repetition`)
    may change the step logits before the sampler sees them, using each
    row's (or beam's) tokens so far, prompt included: a ban on repeated
    n-grams and the CTRL repetition penalty.

    Args:
        step_fn: callable `(token_ids [B], index, cache) -> (logits [B, V],
            cache)`, the model step (see the module docstring).
        token_ids: int tensor `[B, L]`, left-aligned prompts; positions after
            a prompt are overwritten (their content does not matter).
        prompt_mask: bool tensor `[B, L]` or None. True on prompt tokens;
            None means "positions `< start_index`".
        cache: nested structure of tensors with the batch on axis 0, or None
            (or an empty structure), prefilled up to position
            `start_index - 2`.
        sampler: a `keras_transformer.generation.Sampler`, a name (e.g.
            `"greedy"`) or a config dict accepted by
            `keras_transformer.generation.get`.
        start_index: int or scalar int tensor in `[1, L]` (keyword only,
            required): the first position to generate, normally the
            shortest prompt length. Every row must have a prompt of at least
            this length.
        stop_token_ids: None, int, list of ints or int tensor `[S]`, default
            None. A row is finished after it generates one of them.
        pad_token_id: int or scalar int tensor, default 0. Written after a
            finished row's stop token (and into positions a stopped-early
            loop never reached).
        seed: None, int, or int tensor (scalar or `[2]`), default None. For
            the random samplers. The step index is folded into it, so the
            same seed gives the same tokens. With None a fresh seed is drawn
            in Python: inside a traced function pass a seed tensor instead.
        return_scores: bool, default False. If True, also return a float32
            score per row: the summed log-probability (log-softmax of the
            step logits, after the repetition controls and before any
            temperature) of the generated tokens, stop token included; for
            beam search the length-penalized beam score.
        no_repeat_ngram_size: int >= 0 or scalar int tensor, default 0
            (off). A token that would complete an n-gram of this size
            already in the row's buffer is never chosen (1 forbids every
            token already there).
        repetition_penalty: float > 0 or scalar float tensor, default 1.0
            (off). Logits of tokens already in the row's buffer are divided
            by it when positive, multiplied by it when negative (CTRL).
        min_new_tokens: int >= 0 or scalar int tensor, default 0 (off). A
            row cannot stop (its `stop_token_ids` get logit -inf) before it
            has this many new tokens.
        max_new_tokens: None (default) or an int (tensor) >= 1. A row
            (beam) is finished after this many new tokens: with ragged
            prompts no row (or score) runs past its own limit.

    Returns:
        int32 tensor `[B, L]`: prompts followed by the generated tokens (and
        pads after stop tokens); `(token_ids, scores [B])` if
        `return_scores`. A `BeamSampler(return_all_beams=True)` returns
        `(token_ids [B, K, L], scores [B, K])`, best beam first.

    Example:
    >>> import keras
    >>> import keras_transformer
    >>> def step_fn(token_ids, index, cache):
    ...     # A fake model that always prefers token (previous + 1) % 10.
    ...     return keras.ops.one_hot((token_ids + 1) % 10, 10), cache
    >>> token_ids = keras.ops.zeros((2, 6), "int32")
    >>> output = keras_transformer.generation.decode(
    ...     step_fn, token_ids, None, None, "greedy", start_index=1,
    ...     stop_token_ids=[4])
    >>> keras.ops.convert_to_numpy(output).tolist()
    [[0, 1, 2, 3, 4, 0], [0, 1, 2, 3, 4, 0]]

    Prompts of different lengths share one buffer; the loop keeps each
    row's prompt tokens:

    >>> prompts = keras.ops.convert_to_tensor([[7, 0, 0, 0], [5, 8, 0, 0]])
    >>> prompt_mask = keras.ops.not_equal(prompts, 0)
    >>> output = keras_transformer.generation.decode(
    ...     step_fn, prompts, prompt_mask, None, "greedy", start_index=1)
    >>> keras.ops.convert_to_numpy(output).tolist()
    [[7, 8, 9, 0], [5, 8, 9, 0]]

    A model that loops (`a b a b ...`) is kept off repeated bigrams:

    >>> table = keras.ops.convert_to_tensor(
    ...     [[0.0, 2.0, 1.0], [2.0, 0.0, 1.0], [2.0, 0.0, 1.0]])
    >>> def loop_fn(token_ids, index, cache):
    ...     # A fake model: 0 -> 1 -> 0 -> 1 ..., token 2 second best.
    ...     return keras.ops.take(table, token_ids, axis=0), cache
    >>> output = keras_transformer.generation.decode(
    ...     loop_fn, keras.ops.zeros((1, 5), "int32"), None, None, "greedy",
    ...     start_index=1, no_repeat_ngram_size=2)
    >>> keras.ops.convert_to_numpy(output).tolist()
    [[0, 1, 0, 2, 0]]

    References:
        - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762), section 6
          (beam search with a length penalty for translation).
        - [Keskar et al., 2019](https://arxiv.org/abs/1909.05858), section
          4.1 (repetition penalty).
    """
    sampler = get_sampler(sampler)
    token_ids, prompt_mask, start_index = _buffer.check_inputs(
        token_ids, prompt_mask, start_index
    )
    stop = _buffer.stop_ids(stop_token_ids)
    pad = ops.cast(pad_token_id, "int32")
    repetition.check_controls(no_repeat_ngram_size, repetition_penalty)
    repetition.check_min_new_tokens(min_new_tokens)
    repeats_off = repetition.is_off(no_repeat_ngram_size, repetition_penalty)
    minimum_off = stop is None or (
        isinstance(min_new_tokens, int) and min_new_tokens == 0
    )
    prompt_lengths = ops.sum(ops.cast(prompt_mask, "int32"), axis=1)  # [B]
    limit = None
    if max_new_tokens is not None:
        limit = prompt_lengths + ops.cast(max_new_tokens, "int32")  # [B]

    def make_process(lengths):
        """The logits processor of rows with prompt lengths `lengths`."""
        if repeats_off and minimum_off:
            return None

        def process(logits, history, index):
            if not repeats_off:
                logits = repetition.apply_repetition_controls(
                    logits,
                    history,
                    index,
                    no_repeat_ngram_size=no_repeat_ngram_size,
                    repetition_penalty=repetition_penalty,
                )
            if not minimum_off:
                logits = repetition.block_early_stop(
                    logits, index, lengths, stop, min_new_tokens
                )
            return logits

        return process

    if cache is None:
        cache_is_none, cache = True, ()
    else:
        cache_is_none = False

    def call_step(prev, index, cache):
        logits, cache = step_fn(prev, index, None if cache_is_none else cache)
        return logits, (() if cache_is_none else cache)

    if isinstance(sampler, BeamSampler):
        return _beam_decode(
            call_step,
            token_ids,
            prompt_mask,
            cache,
            sampler,
            start_index,
            stop,
            pad,
            return_scores,
            make_process(ops.repeat(prompt_lengths, sampler.num_beams, axis=0)),
            limit,
        )
    process = make_process(prompt_lengths)
    seed = stateless_random.make_seed(seed)
    batch_size, length = ops.shape(token_ids)

    def cond(index, token_ids, cache, done, scores):
        running = index < length
        if stop is None:
            return running
        return ops.logical_and(running, ops.logical_not(ops.all(done)))

    def body(index, token_ids, cache, done, scores):
        logits, cache = call_step(
            ops.take(token_ids, index - 1, axis=1), index - 1, cache
        )
        if process is not None:
            logits = process(logits, token_ids, index)
        sampled = sampler.choose(logits, stateless_random.fold_in(seed, index))
        in_prompt = ops.take(prompt_mask, index, axis=1)  # [B]
        prompt_token = ops.take(token_ids, index, axis=1)  # [B]
        next_token = ops.where(
            in_prompt, prompt_token, ops.where(done, pad, sampled)
        )
        generated = ops.logical_and(
            ops.logical_not(in_prompt), ops.logical_not(done)
        )
        if return_scores:
            log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
            picked = ops.take_along_axis(
                log_probs, next_token[:, None], axis=1
            )[:, 0]
            scores = scores + ops.where(generated, picked, 0.0)
        done = ops.logical_or(
            done, generated & _buffer.is_stop(next_token, stop)
        )
        if limit is not None:  # the row's last allowed position written
            done = ops.logical_or(done, generated & (index + 1 >= limit))
        token_ids = _buffer.write_column(token_ids, index, next_token)
        return index + 1, token_ids, cache, done, scores

    done = ops.zeros((batch_size,), dtype="bool")
    scores = ops.zeros((batch_size,), dtype="float32")
    end, token_ids, _, _, scores = ops.while_loop(
        cond, body, (start_index, token_ids, cache, done, scores)
    )
    token_ids = _buffer.pad_unwritten(token_ids, prompt_mask, end, pad)
    if return_scores:
        return token_ids, scores
    return token_ids


def compile_decode(
    step_fn,
    sampler,
    *,
    stop_token_ids=None,
    pad_token_id=0,
    return_scores=False,
    variables=None,
    jit_compile=True,
    runtime_stop_ids=True,
):
    """Returns `decode` compiled once per input shape for the backend.

    On TensorFlow the loop runs in `tf.function(jit_compile=...,
    reduce_retracing=True)`, on JAX in `jax.jit`; on other backends it runs
    eagerly. Python numbers given to the returned function (`start_index`,
    `seed`, sampler knobs, the repetition controls) are converted to
    tensors first, so calls that only change their values reuse the
    compiled program. The repetition controls are always part of the
    program, behind a `keras.ops.cond` that skips them at their "off"
    values.

    Args:
        step_fn: callable, the model step (see
            `keras_transformer.generation.decode`).
        sampler: a `keras_transformer.generation.Sampler`, a name or a
            config (see `keras_transformer.generation.get`).
        stop_token_ids: None, int or list of ints, default None. As in
            `decode`.
        pad_token_id: int, default 0. As in `decode`.
        return_scores: bool, default False. As in `decode`.
        variables: list of `keras.Variable` or None, default None. The
            variables that `step_fn` reads (e.g. `model.variables`). Needed
            on JAX only: their current values are passed to the jitted
            function on every call (through a `keras.StatelessScope`), so
            they are not frozen into the program and training updates are
            seen. Ignored on other backends.
        jit_compile: bool, default True. XLA compilation on TensorFlow.
        runtime_stop_ids: bool, default True. False compiles without
            `extra_stop_token_ids` (no per-step check for them).

    Returns:
        A function `decode_fn(token_ids, prompt_mask, cache, *, start_index,
        seed=None, no_repeat_ngram_size=0, repetition_penalty=1.0,
        min_new_tokens=0, extra_stop_token_ids=None, max_new_tokens=None,
        **knobs)` returning what `decode` returns. `extra_stop_token_ids`
        (None, an int or up to `MAX_RUNTIME_STOP_IDS` = 16 ints) end rows
        too, beside the compiled `stop_token_ids`, without recompiling;
        `max_new_tokens` is `decode`'s (None: no limit). `knobs`
        are the sampler's run-time arguments among `temperature`, `k`, `p` and
        `length_penalty` (a `k` given here makes top-k sort the whole
        vocabulary); the repetition controls are those of `decode`.

    Example:
    >>> import keras
    >>> import keras_transformer
    >>> def step_fn(token_ids, index, cache):
    ...     # A fake model: token (previous + 1) % 10 is by far the best.
    ...     return keras.ops.one_hot((token_ids + 1) % 10, 10) * 20.0, cache
    >>> decode_fn = keras_transformer.generation.compile_decode(
    ...     step_fn, keras_transformer.generation.TopKSampler(k=3),
    ...     stop_token_ids=[4])
    >>> token_ids = keras.ops.zeros((1, 6), "int32")
    >>> output = decode_fn(token_ids, None, None, start_index=1, seed=1,
    ...                    temperature=0.5)
    >>> keras.ops.convert_to_numpy(output).tolist()
    [[0, 1, 2, 3, 4, 0]]
    >>> output = decode_fn(token_ids, None, None, start_index=1, seed=1,
    ...                    no_repeat_ngram_size=1)  # no recompilation
    >>> keras.ops.convert_to_numpy(output).tolist()  # nothing seen again
    [[0, 1, 2, 3, 4, 0]]
    >>> output = decode_fn(token_ids, None, None, start_index=1, seed=1,
    ...                    extra_stop_token_ids=[2])  # stop at 2 as well
    >>> keras.ops.convert_to_numpy(output).tolist()
    [[0, 1, 2, 0, 0, 0]]
    """
    sampler = get_sampler(sampler)
    config = sampler.get_config()
    knob_names = sorted(set(_RUNTIME_KNOBS) & set(config))
    if isinstance(sampler, BeamSampler):
        knob_names = ["length_penalty"]
    backend = keras.backend.backend()
    variables = list(variables or []) if backend == "jax" else []

    def run(
        token_ids,
        prompt_mask,
        cache,
        start_index,
        seed,
        knobs,
        controls,
        values,
    ):
        current = sampler
        # Compile-time stop ids, then the run-time ones (-1: none).
        stops = controls[3] if runtime_stop_ids else None
        if stop_token_ids is not None:
            fixed = _buffer.stop_ids(stop_token_ids)
            stops = (
                fixed
                if stops is None
                else ops.concatenate([fixed, stops], axis=0)
            )
        if knobs:
            current = type(sampler).from_config({**config, **knobs})
        kwargs = dict(
            start_index=start_index,
            stop_token_ids=stops,
            pad_token_id=pad_token_id,
            seed=seed,
            return_scores=return_scores,
            no_repeat_ngram_size=controls[0],
            repetition_penalty=controls[1],
            min_new_tokens=controls[2],
            max_new_tokens=controls[4],
        )
        if not variables:
            return decode(
                step_fn, token_ids, prompt_mask, cache, current, **kwargs
            )
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return decode(
                step_fn, token_ids, prompt_mask, cache, current, **kwargs
            )

    if backend == "tensorflow":
        import tensorflow as tf  # Only the TensorFlow backend compiles so.

        compiled = tf.function(
            run, jit_compile=jit_compile, reduce_retracing=True
        )
    elif backend == "jax":
        import jax

        compiled = jax.jit(run)
    else:
        compiled = run

    def decode_fn(
        token_ids,
        prompt_mask,
        cache,
        *,
        start_index,
        seed=None,
        no_repeat_ngram_size=0,
        repetition_penalty=1.0,
        min_new_tokens=0,
        extra_stop_token_ids=None,
        max_new_tokens=None,
        **knobs,
    ):
        repetition.check_controls(no_repeat_ngram_size, repetition_penalty)
        repetition.check_min_new_tokens(min_new_tokens)
        controls = (
            ops.convert_to_tensor(no_repeat_ngram_size, "int32"),
            ops.convert_to_tensor(repetition_penalty, "float32"),
            ops.convert_to_tensor(min_new_tokens, "int32"),
            ops.convert_to_tensor(
                _buffer.runtime_stop_ids(extra_stop_token_ids), "int32"
            ),
            ops.convert_to_tensor(
                _NO_LIMIT if max_new_tokens is None else max_new_tokens,
                "int32",
            ),
        )
        unknown = sorted(set(knobs) - set(knob_names))
        if unknown:
            raise ValueError(
                f"Unknown run-time sampler arguments; expected some of "
                f"{knob_names}. Received: knobs={knobs}"
            )
        knobs = {
            name: ops.convert_to_tensor(value, _RUNTIME_KNOBS[name])
            for name, value in knobs.items()
        }
        if prompt_mask is not None:
            prompt_mask = ops.convert_to_tensor(prompt_mask, "bool")
        values = [v.value for v in variables]
        return compiled(
            ops.convert_to_tensor(token_ids, "int32"),
            prompt_mask,
            cache,
            ops.convert_to_tensor(start_index, "int32"),
            stateless_random.make_seed(seed),
            knobs,
            controls,
            values,
        )

    return decode_fn
