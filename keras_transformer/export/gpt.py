"""SavedModel export of a GPT model: prompts in, completions out.

The exported graph holds the SentencePiece tokenizer, the model variables
and the whole cached decode loop, so TF Serving (or any process with only
`tensorflow` and `tensorflow_text`) generates text from raw strings:

- `serving_default(prompt: tf.string [B]) -> {"completion": tf.string [B]}`
  greedy, `default_max_new_tokens` new tokens, stops at the end token.
  An empty prompt continues the start token `<s>` alone.
- `generate(prompt, max_new_tokens: int32, temperature: float32,
  top_k: int32, top_p: float32, seed: int64, no_repeat_ngram_size: int32,
  repetition_penalty: float32, min_new_tokens: int32, stop: tf.string [S],
  stop_token_ids: int32 [T])
  -> {"completion": ..., "score": float32 [B]}`, the score the summed
  log-probability of the new tokens (end token included; after the
  controls, before any temperature), as `TextGenerator.generate(...,
  return_scores=True)` gives it.
- `beam_search(prompt, max_new_tokens, length_penalty: float32, and the
  five controls) -> {"completions": tf.string [B, K], "scores": float32
  [B, K]}`: the K best beams of a `num_beams`-beam search (K fixed at
  export, default 4), best first, with length-penalized scores.
  `temperature <= 0` is greedy; `top_k <= 0` and `top_p` outside (0, 1)
  disable those filters; the same seed gives the same completions.
  `no_repeat_ngram_size` 0, `repetition_penalty` 1 and `min_new_tokens` 0
  are off (`keras_transformer.generation.repetition`); each completion ends
  before the first occurrence of any of the `stop` strings (removed; an
  empty list or empty strings stop nothing). All are run-time inputs of one
  graph.

Completions are the text of the new tokens as the tokenizer spells them:
with a whitespace-preserving tokenizer (every GPT model trained by
`keras_transformer.tasks.gpt`) line breaks, tabs and leading spaces are
kept, exactly as `keras_transformer.inference.TextGenerator.generate`
returns them (tested in a fresh process).

Each prompt is tokenized as `<s> ids`; a prompt too long to leave room for
`max_new_tokens` within the model's positions keeps its last tokens. The
token buffer is `longest prompt + max_new_tokens` long (at most the model's
`max_sequence_length`).
"""

import tensorflow as tf
from keras import ops

from keras_transformer import generation
from keras_transformer.applications.gpt import GPTDecoder
from keras_transformer.export.common import (
    check_export_destination,
    export_saved_model,
    open_source,
)

# The decoding-control inputs every generating signature ends with.
CONTROL_SPECS = (
    tf.TensorSpec([], tf.int32, name="no_repeat_ngram_size"),
    tf.TensorSpec([], tf.float32, name="repetition_penalty"),
    tf.TensorSpec([], tf.int32, name="min_new_tokens"),
    tf.TensorSpec([None], tf.string, name="stop"),
    tf.TensorSpec([None], tf.int32, name="stop_token_ids"),
)


class ServingSampler(generation.Sampler):
    """Greedy, temperature, top-k and top-p sampling from tensor knobs.

    Args:
        temperature: scalar float tensor; `<= 0` means greedy.
        top_k: scalar int tensor; `<= 0` means the whole vocabulary.
        top_p: scalar float tensor; outside (0, 1) means no nucleus filter.
    """

    def __init__(self, temperature, top_k, top_p):
        self.temperature = temperature
        self.top_k = top_k
        self.top_p = top_p

    def choose(self, logits, seed=None):
        vocabulary_size = logits.shape[-1]
        greedy = ops.cast(ops.argmax(logits, axis=-1), "int32")
        temperature = ops.maximum(ops.cast(self.temperature, "float32"), 1e-6)
        top_k = ops.cast(self.top_k, "int32")
        top_k = ops.where(top_k > 0, top_k, vocabulary_size)
        top_p = ops.cast(self.top_p, "float32")
        top_p = ops.where((top_p > 0.0) & (top_p < 1.0), top_p, 1.0)
        sampled = generation.TopPSampler(
            p=top_p, temperature=temperature, k=top_k
        ).choose(logits, seed)
        return ops.where(self.temperature > 0, sampled, greedy)


class GPTServingModule(tf.Module):
    """The `tf.Module` written by `export_gpt` (see the module docstring).

    Args:
        model: a model built by `keras_transformer.applications.gpt.gpt_lm`.
        tokenizer: its `keras_transformer.tokenizers.SubwordTokenizer`.
        default_max_new_tokens: new tokens of `serving_default`.
    """

    def __init__(
        self, model, tokenizer, default_max_new_tokens=64, num_beams=4
    ):
        super().__init__(name="gpt_serving")
        self._num_beams = int(num_beams)
        self.tokenizer = tokenizer
        self._generator = GPTDecoder(model)
        self._max_length = self._generator.max_sequence_length
        if not 1 <= default_max_new_tokens < self._max_length:
            raise ValueError(
                "`default_max_new_tokens` must be in [1, "
                f"{self._max_length - 1}]. Received: "
                f"default_max_new_tokens={default_max_new_tokens}"
            )
        self._default_max_new_tokens = default_max_new_tokens
        self.serving_default = tf.function(
            self._serve,
            input_signature=[tf.TensorSpec([None], tf.string, name="prompt")],
            autograph=False,
        )
        self.generate = tf.function(
            self._generate,
            input_signature=[
                tf.TensorSpec([None], tf.string, name="prompt"),
                tf.TensorSpec([], tf.int32, name="max_new_tokens"),
                tf.TensorSpec([], tf.float32, name="temperature"),
                tf.TensorSpec([], tf.int32, name="top_k"),
                tf.TensorSpec([], tf.float32, name="top_p"),
                tf.TensorSpec([], tf.int64, name="seed"),
                *CONTROL_SPECS,
            ],
            autograph=False,
        )
        self.beam_search = tf.function(
            self._beam_search,
            input_signature=[
                tf.TensorSpec([None], tf.string, name="prompt"),
                tf.TensorSpec([], tf.int32, name="max_new_tokens"),
                tf.TensorSpec([], tf.float32, name="length_penalty"),
                *CONTROL_SPECS,
            ],
            autograph=False,
        )

    def _beam_search(
        self,
        prompt,
        max_new_tokens,
        length_penalty,
        no_repeat_ngram_size,
        repetition_penalty,
        min_new_tokens,
        stop,
        stop_token_ids,
    ):
        k = self._num_beams
        sampler = generation.BeamSampler(
            k, tf.maximum(length_penalty, 0.0), return_all_beams=True
        )
        texts, scores = self._complete(
            prompt,
            max_new_tokens,
            sampler,
            tf.constant(0, tf.int64),
            controls=serving_controls(
                no_repeat_ngram_size, repetition_penalty, min_new_tokens
            ),
            return_scores=True,
            stop_token_ids=stop_token_ids,
        )  # texts [B*K], scores [B, K]
        texts = cut_at_stop_strings(texts, stop)
        return {"completions": tf.reshape(texts, [-1, k]), "scores": scores}

    def _serve(self, prompt):
        completion = self._complete(
            prompt,
            tf.constant(self._default_max_new_tokens, tf.int32),
            generation.GreedySampler(),
            tf.constant(0, tf.int64),
        )
        return {"completion": completion}

    def _generate(
        self,
        prompt,
        max_new_tokens,
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
        sampler = ServingSampler(temperature, top_k, top_p)
        completion, score = self._complete(
            prompt,
            max_new_tokens,
            sampler,
            seed,
            controls=serving_controls(
                no_repeat_ngram_size, repetition_penalty, min_new_tokens
            ),
            return_scores=True,
            stop_token_ids=stop_token_ids,
        )
        return {
            "completion": cut_at_stop_strings(completion, stop),
            "score": score,
        }

    def _complete(
        self,
        prompt,
        max_new_tokens,
        sampler,
        seed,
        controls=None,
        return_scores=False,
        stop_token_ids=None,
    ):
        max_new = tf.clip_by_value(max_new_tokens, 1, self._max_length - 1)
        room = self._max_length - max_new
        ids = self.tokenizer.tokenize(prompt, add_start=True)  # [B, None]
        row_lengths = tf.cast(ids.row_lengths(), tf.int32)  # [B]
        # Keep the last `room` tokens of each prompt.
        first_kept = tf.maximum(row_lengths - room, 0)
        positions = tf.ragged.range(row_lengths)  # [B, None]
        ids = tf.ragged.boolean_mask(ids, positions >= first_kept[:, None])
        lengths = tf.minimum(row_lengths, room)  # [B]
        batch_size = tf.shape(lengths)[0]
        # At least 1, so an empty batch gives empty outputs.
        width = tf.maximum(tf.reduce_max(lengths), 1)
        length = width + max_new
        buffer = ids.to_tensor(0, shape=tf.stack([batch_size, length]))
        prompt_ids = buffer[:, :width]  # [B, P]
        columns = tf.range(length)[None, :]  # [1, L]
        prompt_mask = columns < lengths[:, None]  # [B, L]
        cache = self._generator.empty_cache(prompt_ids, length)
        output = generation.decode(
            self._generator.step_fn,
            buffer,
            prompt_mask,
            cache,
            sampler,
            start_index=tf.minimum(tf.reduce_min(lengths), width),
            stop_token_ids=end_and_stop_ids(
                self.tokenizer.end_id, stop_token_ids
            ),
            pad_token_id=0,
            seed=seed,
            return_scores=return_scores,
            max_new_tokens=max_new,
            **(controls or {}),
        )
        if return_scores or isinstance(sampler, generation.BeamSampler):
            output, scores = output
        if isinstance(sampler, generation.BeamSampler):  # [B, K, L]
            k = sampler.num_beams
            output = tf.reshape(output, [-1, length])  # [B*K, L]
            lengths = tf.repeat(lengths, k)
        new = (columns >= lengths[:, None]) & (
            columns < (lengths + max_new)[:, None]
        )
        new_ids = tf.ragged.boolean_mask(output, new)  # [B, None]
        texts = self.tokenizer.detokenize(new_ids)
        return (texts, scores) if return_scores else texts


def end_and_stop_ids(end_id, stop_token_ids=None):
    """The stop ids of a signature's loop: the end token and the request's
    `stop_token_ids` (int32 [S]; negative ids stop nothing)."""
    end = tf.constant([end_id], tf.int32)
    if stop_token_ids is None:
        return end
    valid = tf.boolean_mask(stop_token_ids, stop_token_ids >= 0)
    return tf.concat([end, valid], axis=0)


def serving_controls(no_repeat_ngram_size, repetition_penalty, min_new_tokens):
    """The decode controls of a signature's inputs, out-of-range values
    meaning "off"."""
    return {
        "no_repeat_ngram_size": tf.maximum(no_repeat_ngram_size, 0),
        "repetition_penalty": tf.where(
            repetition_penalty > 0, repetition_penalty, 1.0
        ),
        "min_new_tokens": tf.maximum(min_new_tokens, 0),
    }


def cut_at_stop_strings(texts, stops):
    """Each of `texts` [B] cut before its first occurrence of any of
    `stops` [S] (empty strings skipped), in the graph.

    Cutting at each stop in turn leaves the text before the earliest one.
    """

    def cut(i, texts):
        stop = stops[i]

        def split():
            parts = tf.strings.split(texts, sep=stop, maxsplit=1)
            return parts.to_tensor("", shape=tf.stack([tf.size(texts), 1]))[
                :, 0
            ]

        texts = tf.cond(tf.strings.length(stop) > 0, split, lambda: texts)
        return i + 1, tf.reshape(texts, [-1])

    _, texts = tf.while_loop(
        lambda i, _: i < tf.size(stops),
        cut,
        (tf.constant(0), texts),
        shape_invariants=(tf.TensorShape([]), tf.TensorShape([None])),
    )
    return texts


def export_gpt(
    source,
    output,
    overwrite=False,
    default_max_new_tokens=64,
    dtype=None,
    num_beams=4,
):
    """Exports a GPT model as a TF Serving SavedModel.

    Args:
        source: str, a GPT model directory, or an object with `.model`,
            `.tokenizer` and `.metadata` (a
            `keras_transformer.inference.TextGenerator`).
        output: str, the versioned destination `.../NAME/VERSION`.
        overwrite: bool, default False. Replace an existing version.
        default_max_new_tokens: int, default 64. New tokens generated by
            `serving_default` (clipped to the model's positions minus one).
        dtype: None (default: the model's), "float32", "bfloat16" or
            "float16": the weights and computation of the SavedModel
            (`keras_transformer.export.common.cast_model`).
        num_beams: int, default 4. The beams (and n-best size) of the
            `beam_search` signature.

    Returns:
        The absolute export path.

    Example:
    >>> from keras_transformer.export import export_gpt
    >>> export_gpt("runs/gpt", "saved_models/gpt/1")  # doctest: +SKIP
    """
    # Refuse a bad destination before the slow loading and tracing.
    output = check_export_destination(output, overwrite)
    source = open_source(source, "gpt", dtype)
    limit = GPTDecoder(source.model).max_sequence_length - 1
    module = GPTServingModule(
        source.model,
        source.tokenizer,
        min(default_max_new_tokens, limit),
        num_beams=num_beams,
    )
    return export_saved_model(
        module,
        output,
        signatures={
            "serving_default": module.serving_default,
            "generate": module.generate,
            "beam_search": module.beam_search,
        },
        overwrite=overwrite,
    )
