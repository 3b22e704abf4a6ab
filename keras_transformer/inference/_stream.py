"""Token-by-token decoding behind `stream` (GPT and translation; private).

`step(...)` runs one cached model step with the decode controls and the
sampler, compiled once per model and sampler kind whatever the input (every
argument has a fixed shape); `tokens(...)` drives it from Python so each
token is seen as it is produced; `pieces(...)` turns the growing token list
into text pieces, held back where a stop string could begin. Controls and
stops are the run-time values of `keras_transformer.generation.decode`, so
a stream chooses the same tokens as the compiled loop with a batch of one.
"""

import tensorflow as tf

from keras_transformer.generation import (
    _buffer,
    repetition,
    stateless_random,
    stop_strings,
)


def make_step(step_fn, sampler):
    """`tf.function` of one step: `(token [1], index, cache, seed, history
    [1, L], controls) -> (chosen [1], cache)`."""

    def step(token, index, cache, seed, history, controls):
        logits, cache = step_fn(token, index, cache)
        logits = repetition.apply_repetition_controls(
            logits,
            history,
            index + 1,
            no_repeat_ngram_size=controls[0],
            repetition_penalty=controls[1],
        )
        logits = repetition.block_early_stop(
            logits, index + 1, controls[3], controls[4], controls[2]
        )
        chosen = sampler.choose(
            logits, stateless_random.fold_in(seed, index + 1)
        )
        return chosen, cache

    return tf.function(step, reduce_retracing=True)


def controls(
    no_repeat_ngram_size,
    repetition_penalty,
    min_new_tokens,
    prompt_length,
    end_id,
    stop_token_ids,
):
    """The checked controls as the step's fixed-shape tensors, and the set
    of ids that end the stream: `end_id` (not shown) and the run-time
    `stop_token_ids` (shown, as the compiled loop keeps them)."""
    repetition.check_controls(no_repeat_ngram_size, repetition_penalty)
    repetition.check_min_new_tokens(min_new_tokens)
    extra = _buffer.runtime_stop_ids(stop_token_ids)
    values = (
        tf.constant(no_repeat_ngram_size, tf.int32),
        tf.constant(repetition_penalty, tf.float32),
        tf.constant(min_new_tokens, tf.int32),
        tf.constant([prompt_length], tf.int32),
        tf.constant([end_id] + extra, tf.int32),
    )
    return values, (end_id, {t for t in extra if t >= 0})


def tokens(
    step, history, first_index, steps, cache, seed, values, stops, length
):
    """Yields the new token ids one by one, appending each to `history`
    (a list of int); the end token ends it unseen, a stop token after
    it is yielded.

    Args:
        step: from `make_step`.
        history: list of int, the tokens so far (the last one is fed).
        first_index: int, the position of `history[-1]`.
        steps: int, the most new tokens.
        cache: the model cache, prefilled before `first_index`.
        seed: the stateless seed tensor.
        values, stops: from `controls`.
        length: int, the history buffer's fixed length (the cache's).
    """
    for index in range(first_index, first_index + steps):
        padded = history + [0] * (length - len(history))
        token, cache = step(
            tf.constant([history[-1]], tf.int32),
            tf.constant(index, tf.int32),
            cache,
            seed,
            tf.constant([padded], tf.int32),
            values,
        )
        token = int(token.numpy()[0])
        end_id, stop_ids = stops
        if token == end_id:
            return
        history.append(token)
        yield token
        if token in stop_ids:
            return


def pieces(new_tokens, text_of, stop):
    """Yields the text each new token adds, held back where a stop string
    could begin, ending before the first stop string.

    Args:
        new_tokens: iterator of token ids (from `tokens`).
        text_of: callable `() -> str`, the text of all tokens so far.
        stop: None, a str or a list of str.
    """
    stream = stop_strings.StopStringStream(stop)
    shown = text_of()
    text = shown
    for _ in new_tokens:
        text = text_of()
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
