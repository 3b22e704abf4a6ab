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

from keras_transformer.generation import samplers as samplers_lib
from keras_transformer.generation import stateless_random

# Score of the placeholder beams that start next to the first real beam: low
# enough to lose against any real hypothesis, finite so it never makes NaN.
_DEAD_BEAM_SCORE = -1e9
_NEG_INF = float("-inf")

# Sampler constructor arguments that may change between calls of a compiled
# decode function without retracing, with the dtype they are passed in.
_RUNTIME_KNOBS = {
    "temperature": "float32",
    "k": "int32",
    "p": "float32",
    "length_penalty": "float32",
}


def _stop_ids(stop_token_ids):
    if stop_token_ids is None:
        return None
    if isinstance(stop_token_ids, int) and not isinstance(stop_token_ids, bool):
        stop_token_ids = [stop_token_ids]
    if isinstance(stop_token_ids, (list, tuple)):
        if not stop_token_ids or not all(
            isinstance(t, int) and not isinstance(t, bool)
            for t in stop_token_ids
        ):
            raise ValueError(
                "Argument `stop_token_ids` must be None, an int, a non-empty "
                "list of ints or an int tensor. "
                f"Received: stop_token_ids={stop_token_ids}"
            )
    stop = ops.cast(ops.convert_to_tensor(stop_token_ids), "int32")
    return ops.reshape(stop, (-1,))


def _is_stop(token_ids, stop):
    """True where `token_ids` (any shape) is one of the `stop` ids `[S]`."""
    if stop is None:
        return ops.zeros_like(token_ids, dtype="bool")
    return ops.any(ops.equal(token_ids[..., None], stop), axis=-1)


def _write_column(buffer, index, values):
    """Writes `values [...]` at position `index` of the last axis."""
    length = ops.shape(buffer)[-1]
    here = ops.arange(length, dtype="int32") == index
    return ops.where(here, values[..., None], buffer)


def _pad_unwritten(token_ids, prompt_mask, end, pad):
    """Pads the positions the loop did not reach (it stopped early)."""
    length = ops.shape(token_ids)[-1]
    after = ops.arange(length, dtype="int32") >= end
    return ops.where(after & ~prompt_mask, pad, token_ids)


def _check_inputs(token_ids, prompt_mask, start_index):
    token_ids = ops.convert_to_tensor(token_ids)
    if len(token_ids.shape) != 2:
        raise ValueError(
            "Argument `token_ids` must have shape [B, L]. "
            f"Received: token_ids.shape={token_ids.shape}"
        )
    token_ids = ops.cast(token_ids, "int32")
    length = ops.shape(token_ids)[1]
    if isinstance(start_index, bool) or (
        not isinstance(start_index, int) and not hasattr(start_index, "shape")
    ):
        raise ValueError(
            "Argument `start_index` must be an int or a scalar int tensor. "
            f"Received: start_index={start_index}"
        )
    if isinstance(start_index, int) and isinstance(length, int):
        if not 1 <= start_index <= length:
            raise ValueError(
                "Argument `start_index` must be in [1, L] (the loop feeds "
                f"token start_index - 1; L={length}). "
                f"Received: start_index={start_index}"
            )
    start_index = ops.cast(start_index, "int32")
    if prompt_mask is None:
        positions = ops.arange(length, dtype="int32")[None, :]
        prompt_mask = ops.broadcast_to(
            positions < start_index, ops.shape(token_ids)
        )
    else:
        prompt_mask = ops.convert_to_tensor(prompt_mask)
        if len(prompt_mask.shape) != 2:
            raise ValueError(
                "Argument `prompt_mask` must have shape [B, L], like "
                f"`token_ids`. Received: prompt_mask.shape={prompt_mask.shape}"
            )
        prompt_mask = ops.cast(prompt_mask, "bool")
    return token_ids, prompt_mask, start_index


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
):
    """Fills a static-shape token buffer one position at a time.

    The one decode loop of the package: a `keras.ops.while_loop` over a
    static-shape cache, with the next token chosen by `sampler` (greedy,
    random, top-k, top-p) or by beam search (`BeamSampler`, which expands
    the batch to `B * K` rows, repeating every cache leaf on axis 0, and
    reorders the cache by parent beam each step). See the module docstring
    for the `step_fn` contract.

    Args:
        step_fn: callable `(token_ids [B], index, cache) -> (logits [B, V],
            cache)`.
        token_ids: int tensor `[B, L]`, left-aligned prompts; positions after
            a prompt are overwritten (their content does not matter).
        prompt_mask: bool tensor `[B, L]`, True on prompt tokens, or `None`
            for "positions `< start_index`".
        cache: nested structure of tensors with the batch on axis 0 (may be
            `None` or empty), prefilled up to position `start_index - 2`.
        sampler: a `Sampler`, a name or a config accepted by
            `keras_transformer.generation.get`.
        start_index: int or scalar int tensor in `[1, L]`: the first position
            to generate, normally the shortest prompt length. Every row must
            have a prompt of at least this length.
        stop_token_ids: `None`, an int, a list of ints or an int tensor
            `[S]`. A row is finished after it generates one of them.
        pad_token_id: int or scalar tensor written after a finished row's
            stop token (and into positions a stopped-early loop never
            reached).
        seed: `None`, an int, or an int tensor (scalar or `[2]`) for the
            random samplers. The step index is folded into it, so the same
            seed gives the same tokens. With `None` a fresh seed is drawn in
            Python: inside a traced function pass a seed tensor instead.
        return_scores: if True, also return a float32 score per row: the
            summed log-probability (log-softmax of the step logits, before
            any temperature) of the generated tokens, stop token included;
            for beam search the length-penalized beam score.

    Returns:
        int32 tensor `[B, L]`: prompts followed by the generated tokens (and
        pads after stop tokens); `(token_ids, scores [B])` if
        `return_scores`. A `BeamSampler(return_all_beams=True)` returns
        `(token_ids [B, K, L], scores [B, K])`, best beam first.

    Example:

    >>> def step_fn(token_ids, index, cache):
    ...     # A fake model that always prefers token (previous + 1) % 10.
    ...     logits = keras.ops.one_hot((token_ids + 1) % 10, 10)
    ...     return logits, cache
    >>> token_ids = keras.ops.zeros((2, 6), "int32")
    >>> keras_transformer.generation.decode(
    ...     step_fn, token_ids, None, {}, "greedy", start_index=1
    ... )  # [[0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4, 5]]

    References:
        - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762), section 6
          (beam search with a length penalty for translation).
    """
    sampler = samplers_lib.get(sampler)
    token_ids, prompt_mask, start_index = _check_inputs(
        token_ids, prompt_mask, start_index
    )
    stop = _stop_ids(stop_token_ids)
    pad = ops.cast(pad_token_id, "int32")
    if cache is None:
        cache_is_none, cache = True, ()
    else:
        cache_is_none = False

    def call_step(prev, index, cache):
        logits, cache = step_fn(prev, index, None if cache_is_none else cache)
        return logits, (() if cache_is_none else cache)

    if isinstance(sampler, samplers_lib.BeamSampler):
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
        )
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
        done = ops.logical_or(done, generated & _is_stop(next_token, stop))
        token_ids = _write_column(token_ids, index, next_token)
        return index + 1, token_ids, cache, done, scores

    done = ops.zeros((batch_size,), dtype="bool")
    scores = ops.zeros((batch_size,), dtype="float32")
    end, token_ids, _, _, scores = ops.while_loop(
        cond, body, (start_index, token_ids, cache, done, scores)
    )
    token_ids = _pad_unwritten(token_ids, prompt_mask, end, pad)
    if return_scores:
        return token_ids, scores
    return token_ids


def _beam_decode(
    call_step,
    token_ids,
    prompt_mask,
    cache,
    sampler,
    start_index,
    stop,
    pad,
    return_scores,
):
    """Beam search over the shared loop; see `BeamSampler`.

    Beams of row `b` live at rows `b * K .. b * K + K - 1` of the expanded
    batch. Only beam 0 starts alive (the others hold `_DEAD_BEAM_SCORE`) so
    the first expansion does not produce K copies of the same hypothesis.
    While a row is still inside its prompt every beam is forced to the
    prompt token at zero cost, so ragged prompts are supported too.
    """
    num_beams = sampler.num_beams
    batch_size, length = ops.shape(token_ids)

    def expand(x):
        return ops.repeat(x, num_beams, axis=0)

    beams = ops.reshape(expand(token_ids), (-1, num_beams, length))  # B,K,L
    cache = keras.tree.map_structure(expand, cache)
    first = ops.arange(num_beams, dtype="int32") == 0
    scores = ops.where(first, 0.0, _DEAD_BEAM_SCORE)[None, :]
    scores = ops.broadcast_to(scores, (batch_size, num_beams))  # [B, K]
    lengths = ops.zeros((batch_size, num_beams), dtype="int32")
    finished = ops.zeros((batch_size, num_beams), dtype="bool")
    row_offset = ops.arange(batch_size, dtype="int32")[:, None] * num_beams

    def cond(index, beams, cache, scores, lengths, finished):
        running = index < length
        if stop is None:
            return running
        return ops.logical_and(running, ops.logical_not(ops.all(finished)))

    def body(index, beams, cache, scores, lengths, finished):
        prev = ops.reshape(ops.take(beams, index - 1, axis=2), (-1,))  # B*K
        logits, cache = call_step(prev, index - 1, cache)
        vocab_size = logits.shape[-1]
        log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
        log_probs = ops.reshape(log_probs, (-1, num_beams, vocab_size))
        in_prompt = ops.take(prompt_mask, index, axis=1)[:, None]  # [B, 1]
        prompt_token = ops.take(beams[:, 0, :], index, axis=1)[:, None]

        # Candidate scores [B, K, V]: a forced beam (inside the prompt, or
        # finished) may only extend with one token at zero cost.
        forced = ops.logical_or(finished, in_prompt)  # [B, K]
        forced_token = ops.where(in_prompt, prompt_token, pad)  # [B, 1]
        vocab = ops.arange(vocab_size, dtype="int32")
        allowed = vocab[None, None, :] == forced_token[..., None]
        forced_scores = ops.where(allowed, scores[..., None], _NEG_INF)
        free_scores = scores[..., None] + log_probs
        candidates = ops.where(forced[..., None], forced_scores, free_scores)
        candidate_lengths = ops.where(forced, lengths, lengths + 1)  # [B, K]
        ranked = candidates / sampler.penalty(candidate_lengths)[..., None]

        flat_size = num_beams * vocab_size
        _, best = ops.top_k(ops.reshape(ranked, (-1, flat_size)), num_beams)
        parent = best // vocab_size  # [B, K]
        token = best % vocab_size  # [B, K]
        scores = ops.take_along_axis(
            ops.reshape(candidates, (-1, flat_size)), best, axis=1
        )
        lengths = ops.take_along_axis(candidate_lengths, parent, axis=1)
        parent_finished = ops.take_along_axis(
            ops.cast(finished, "int32"), parent, axis=1
        )
        parent_finished = ops.cast(parent_finished, "bool")
        token = ops.where(
            in_prompt, prompt_token, ops.where(parent_finished, pad, token)
        )
        finished = ops.logical_or(
            parent_finished,
            ops.logical_and(ops.logical_not(in_prompt), _is_stop(token, stop)),
        )

        # Reorder the histories and the cache by parent beam.
        flat_parent = ops.reshape(parent + row_offset, (-1,))  # [B*K]
        beams = ops.take(ops.reshape(beams, (-1, length)), flat_parent, axis=0)
        beams = ops.reshape(beams, (-1, num_beams, length))
        beams = _write_column(beams, index, token)
        cache = keras.tree.map_structure(
            lambda x: ops.take(x, flat_parent, axis=0), cache
        )
        return index + 1, beams, cache, scores, lengths, finished

    end, beams, _, scores, lengths, _ = ops.while_loop(
        cond, body, (start_index, beams, cache, scores, lengths, finished)
    )
    beams = _pad_unwritten(beams, prompt_mask[:, None, :], end, pad)
    final = scores / sampler.penalty(lengths)  # [B, K]
    final, order = ops.top_k(final, num_beams)
    beams = ops.take_along_axis(beams, order[..., None], axis=1)
    if sampler.return_all_beams:
        return beams, final
    if return_scores:
        return beams[:, 0, :], final[:, 0]
    return beams[:, 0, :]


def compile_decode(
    step_fn,
    sampler,
    *,
    stop_token_ids=None,
    pad_token_id=0,
    return_scores=False,
    variables=None,
    jit_compile=True,
):
    """Returns `decode` compiled once per input shape for the backend.

    On TensorFlow the loop runs in `tf.function(jit_compile=...,
    reduce_retracing=True)`, on JAX in `jax.jit`; on other backends it runs
    eagerly. Python numbers given to the returned function (`start_index`,
    `seed`, sampler knobs) are converted to tensors first, so calls that
    only change their values reuse the compiled program.

    Args:
        step_fn: the model step, see `keras_transformer.generation.decode`.
        sampler: a `Sampler`, a name or a config (see
            `keras_transformer.generation.get`).
        stop_token_ids: as in `decode`.
        pad_token_id: as in `decode`.
        return_scores: as in `decode`.
        variables: list of `keras.Variable` that `step_fn` reads (e.g.
            `model.variables`). Needed on JAX only: their current values are
            passed to the jitted function on every call (through a
            `keras.StatelessScope`), so they are not frozen into the program
            and training updates are seen. Ignored on other backends.
        jit_compile: bool, XLA compilation on TensorFlow.

    Returns:
        A function `decode_fn(token_ids, prompt_mask, cache, *, start_index,
        seed=None, **knobs)` returning what `decode` returns. `knobs` are
        the sampler's run-time arguments among `temperature`, `k`, `p` and
        `length_penalty` (a `k` given here makes top-k sort the whole
        vocabulary).

    Example:

    >>> decode_fn = keras_transformer.generation.compile_decode(
    ...     step_fn, keras_transformer.generation.TopKSampler(k=5),
    ...     stop_token_ids=[2],
    ... )
    >>> decode_fn(token_ids, prompt_mask, cache, start_index=3, seed=1,
    ...           temperature=0.8)
    """
    sampler = samplers_lib.get(sampler)
    config = sampler.get_config()
    knob_names = sorted(set(_RUNTIME_KNOBS) & set(config))
    if isinstance(sampler, samplers_lib.BeamSampler):
        knob_names = ["length_penalty"]
    backend = keras.backend.backend()
    variables = list(variables or []) if backend == "jax" else []

    def run(token_ids, prompt_mask, cache, start_index, seed, knobs, values):
        current = sampler
        if knobs:
            current = type(sampler).from_config({**config, **knobs})
        kwargs = dict(
            start_index=start_index,
            stop_token_ids=stop_token_ids,
            pad_token_id=pad_token_id,
            seed=seed,
            return_scores=return_scores,
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
        token_ids, prompt_mask, cache, *, start_index, seed=None, **knobs
    ):
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
            values,
        )

    return decode_fn
