"""GPT task: train, generate, evaluate and export a decoder-only LM.

Command line (see `keras_transformer.cli`):

    keras-transformer train gpt --output runs/gpt [--preset small]
        [--train-file A.txt ...] [--valid-file V.txt ...] [--epochs N]
        [--max-minutes M] [--vocabulary-size V] [--sequence-length L]
    keras-transformer generate --model runs/gpt [--max-new-tokens N]
        [--sampler greedy|random|top_k|top_p|beam] [--temperature T]
        [--top-k K] [--top-p P] [--num-beams K] [--seed S] "prompt" ...
    keras-transformer evaluate gpt --model runs/gpt [--test-file F.txt]
        [--json]
    keras-transformer export --model runs/gpt --output saved_models/gpt/1

Without `--train-file` the bundled English LM corpus is used (text derived
from the WEB, one verse per line, whole books held out for validation and
test). User data is UTF-8 plain text, one passage per line; without
`--valid-file` the last 5% of the training lines are held out.

Python API: `train_gpt`, `evaluate_gpt`, `load_generator` (a
`TextGenerator` with `.generate(prompts, ...)` and `.stream(prompt, ...)`).
"""

import json
import logging
import math
import os
import time

import keras
import tensorflow as tf

from keras_transformer import generation
from keras_transformer import training as training_lib
from keras_transformer.applications.gpt import GPTGenerator, gpt_lm
from keras_transformer.applications.presets import GPT_PRESETS, get_preset
from keras_transformer.data import lm as lm_data
from keras_transformer.data.loaders import (
    load_bundled_lm_text,
    read_text_files,
)
from keras_transformer.generation import stateless_random
from keras_transformer.losses import MaskedSparseCategoricalCrossentropy
from keras_transformer.metrics import Perplexity
from keras_transformer.optimizers import transformer_adam
from keras_transformer.tokenizers import SubwordTokenizer, train_sentencepiece
from keras_transformer.training import (
    METADATA_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    read_metadata,
    standard_callbacks,
    write_metadata,
)

logger = logging.getLogger(__name__)

TASK = "gpt"
TRAIN_TASKS = (TASK,)
EVALUATE_TASKS = (TASK,)
EXPORT_TASKS = (TASK,)
SAMPLERS = ("greedy", "random", "top_k", "top_p", "beam")
SAMPLE_PROMPT = "In the beginning"


# ----------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------
def _load_texts(train_files, valid_files, max_train_lines=None):
    """Returns `(train_lines, valid_lines, description)`."""
    if train_files:
        train = read_text_files(train_files)
        if valid_files:
            valid = read_text_files(valid_files)
        else:
            held = max(1, len(train) // 20)
            if len(train) < 2:
                raise ValueError(
                    "The training files hold fewer than 2 lines; give more "
                    f"text or a --valid-file. Received: {len(train)} lines"
                )
            train, valid = train[:-held], train[-held:]
        description = ", ".join(map(str, train_files))
    else:
        if valid_files:
            raise ValueError(
                "--valid-file needs --train-file (the bundled corpus has "
                f"its own validation books). Received: {valid_files}"
            )
        train = load_bundled_lm_text("train")
        valid = load_bundled_lm_text("valid")
        description = "bundled English LM corpus (derived from the WEB)"
    if max_train_lines is not None:
        train = train[:max_train_lines]
    return train, valid, description


def encode_prompts(tokenizer, prompts):
    """Token ids `[<s>, ...]` of each prompt (a list of lists of int)."""
    if isinstance(prompts, str):
        raise ValueError(
            "`prompts` must be a list of strings. "
            f"Received: prompts={prompts!r}"
        )
    prompts = list(prompts)
    if not prompts:
        return []
    ids = tokenizer.tokenize(prompts, add_start=True)
    return [row.tolist() for row in ids.numpy()]


# ----------------------------------------------------------------------
# Generation
# ----------------------------------------------------------------------
def make_sampler(
    name="greedy", temperature=1.0, top_k=40, top_p=0.9, num_beams=4
):
    """Builds a sampler from command-line style settings.

    Args:
        name: one of `SAMPLERS`.
        temperature: for random, top_k and top_p.
        top_k: k of top_k.
        top_p: p of top_p.
        num_beams: beams of beam search.

    Returns:
        A `keras_transformer.generation.Sampler`.
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


class TextGenerator:
    """Generates text from strings with a GPT model and its tokenizer.

    Prompts are encoded as `<s> ids`; generation stops at `</s>`.

    Args:
        model: a model built by `keras_transformer.applications.gpt.gpt_lm`.
        tokenizer: its `SubwordTokenizer`.

    Example:
    >>> generator = load_generator("runs/gpt")  # doctest: +SKIP
    >>> generator.generate(["In the beginning"], max_new_tokens=20)
    """

    def __init__(self, model, tokenizer):
        self.model = model
        self.tokenizer = tokenizer
        self.generator = GPTGenerator(model)
        self.max_sequence_length = self.generator.max_sequence_length
        self._stream_steps = {}
        self._prefill = tf.function(
            self.generator.prefill, reduce_retracing=True
        )

    def generate_ids(
        self, prompts, max_new_tokens=64, sampler="greedy", seed=None
    ):
        """Returns `(prompt_ids, new_ids)`: lists of lists of int."""
        prompt_ids = encode_prompts(self.tokenizer, prompts)
        if not prompt_ids:
            return [], []
        new_ids = self.generator.generate(
            prompt_ids,
            max_new_tokens=max_new_tokens,
            sampler=sampler,
            stop_token_ids=[self.tokenizer.end_id],
            seed=seed,
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
    ):
        """Completes a batch of prompts (compiled, batched).

        Args:
            prompts: list of str (an empty string starts a new passage).
            max_new_tokens: int, the most new tokens per prompt.
            sampler: a sampler or a name (see `GPTGenerator.generate`).
            seed: None or an int for reproducible sampling.
            return_full_text: return prompt plus completion, detokenized
                together; by default only the completion (the text of the
                new tokens, as the exported SavedModel returns it).

        Returns:
            A list of str.
        """
        prompt_ids, new_ids = self.generate_ids(
            prompts, max_new_tokens, sampler, seed
        )
        if not new_ids:
            return []
        rows = new_ids
        if return_full_text:
            rows = [p + n for p, n in zip(prompt_ids, new_ids, strict=True)]
        return self._detokenize(rows)

    def _detokenize(self, rows):
        texts = self.tokenizer.detokenize(tf.ragged.constant(rows, tf.int32))
        return [t.decode("utf-8") for t in texts.numpy().tolist()]

    def _stream_step(self, sampler):
        key = repr(sampler)
        if key not in self._stream_steps:
            step_fn = self.generator.step_fn

            def step(token, index, cache, seed):
                logits, cache = step_fn(token, index, cache)
                chosen = sampler.choose(
                    logits, stateless_random.fold_in(seed, index + 1)
                )
                return chosen, cache

            self._stream_steps[key] = tf.function(step)
        return self._stream_steps[key]

    def stream(self, prompt, max_new_tokens=64, sampler="greedy", seed=None):
        """Yields the text of one completion piece by piece.

        Runs the cached step token by token (one TensorFlow graph per
        model and sampler, whatever the prompt) so text appears as it is
        produced. With the same seed it yields the
        same tokens as `generate` with a batch of one.

        Args:
            prompt: str.
            max_new_tokens: int.
            sampler: a non-beam sampler or its name.
            seed: None or an int.

        Yields:
            str pieces; joined they give the prompt's full continuation
            (with the space between the prompt and the first new word).
        """
        if isinstance(sampler, str):
            sampler = make_sampler(sampler)
        if isinstance(sampler, generation.BeamSampler):
            raise ValueError(
                "Beam search cannot stream; use `generate`. "
                f"Received: sampler={sampler!r}"
            )
        prompt_ids, _, _, lengths = self.generator.prepare(
            encode_prompts(self.tokenizer, [prompt]), max_new_tokens
        )
        length = self.max_sequence_length
        cache = self.generator.empty_cache(
            tf.constant(prompt_ids, tf.int32), length
        )
        cache = self._prefill(cache)
        # A fixed-shape cache: the step compiles once for every prompt.
        cache["prompt"] = tf.zeros((1, 1), tf.int32)
        step = self._stream_step(sampler)
        seed = stateless_random.make_seed(seed)
        tokens = list(prompt_ids[0][: lengths[0]])
        shown = self._detokenize([tokens])[0]
        end = self.tokenizer.end_id
        for index in range(lengths[0] - 1, lengths[0] - 1 + max_new_tokens):
            token, cache = step(
                tf.constant([tokens[-1]], tf.int32),
                tf.constant(index, tf.int32),
                cache,
                seed,
            )
            token = int(token.numpy()[0])
            if token == end:
                return
            tokens.append(token)
            text = self._detokenize([tokens])[0]
            if text.startswith(shown) and len(text) > len(shown):
                yield text[len(shown) :]
                shown = text


def load_generator(model_dir):
    """Loads a `TextGenerator` from a `train gpt` model directory.

    Args:
        model_dir: the directory.

    Returns:
        A `TextGenerator`.

    Example:
    >>> generator = load_generator("runs/gpt")  # doctest: +SKIP
    """
    read_metadata(model_dir, TASK)
    model = keras.saving.load_model(
        os.path.join(model_dir, MODEL_FILE), compile=False
    )
    tokenizer = SubwordTokenizer.load(os.path.join(model_dir, TOKENIZER_FILE))
    return TextGenerator(model, tokenizer)


# ----------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------
class ThroughputMeter(keras.callbacks.Callback):
    """Measures training tokens per second (after `skip` warm-up batches).

    Args:
        tokens_per_batch: tokens processed by one training batch.
        skip: batches at the start (compilation) left out.
    """

    def __init__(self, tokens_per_batch, skip=3):
        super().__init__()
        self.tokens_per_batch = tokens_per_batch
        self.skip = skip
        self.seconds = 0.0
        self.batches = 0
        self._seen = 0
        self._start = None

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._seen += 1
        if self._seen > self.skip:
            self.seconds += time.perf_counter() - self._start
            self.batches += 1

    @property
    def tokens_per_second(self):
        if not self.seconds:
            return None
        return self.batches * self.tokens_per_batch / self.seconds

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.tokens_per_second:
            logs["tokens_per_second"] = self.tokens_per_second


class SampleGeneration(keras.callbacks.Callback):
    """Writes a greedy sample generation as TensorBoard text each epoch.

    Args:
        tokenizer: the `SubwordTokenizer`.
        log_dir: TensorBoard directory (the text goes to `log_dir/samples`).
        prompt: the prompt.
        max_new_tokens: tokens generated.
    """

    def __init__(
        self, tokenizer, log_dir, prompt=SAMPLE_PROMPT, max_new_tokens=32
    ):
        super().__init__()
        self.tokenizer = tokenizer
        self.log_dir = os.path.join(log_dir, "samples")
        self.prompt = prompt
        self.max_new_tokens = max_new_tokens
        self._generator = None
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        if self._generator is None:
            self._generator = TextGenerator(self.model, self.tokenizer)
            self._writer = tf.summary.create_file_writer(self.log_dir)
        limit = self._generator.max_sequence_length - 2
        text = self._generator.generate(
            [self.prompt],
            max_new_tokens=min(self.max_new_tokens, limit),
            return_full_text=True,
        )[0]
        logger.info("Sample after epoch %d: %s", epoch + 1, text)
        with self._writer.as_default():
            tf.summary.text("sample_generation", text, step=epoch + 1)
        self._writer.flush()


def _model_config(preset, vocabulary_size, sequence_length):
    config = get_preset(TASK, preset)
    config["vocabulary_size"] = vocabulary_size
    if sequence_length is not None:
        # Positions the training windows never reach would stay untrained.
        config["max_sequence_length"] = sequence_length
    return config


def train_gpt(
    output_dir,
    train_files=None,
    valid_files=None,
    preset="small",
    epochs=10,
    max_minutes=None,
    vocabulary_size=8000,
    sequence_length=None,
    batch_size=16,
    warmup_steps=200,
    learning_rate_scale=0.5,
    steps_per_epoch=None,
    max_train_lines=None,
    seed=0,
    backup_every_steps=None,
):
    """Trains a GPT language model and writes a model directory.

    Training is resumable: run the same command again after an
    interruption and it continues from the last finished epoch (the
    tokenizer in the directory is reused).

    Args:
        output_dir: the model directory to write.
        train_files: UTF-8 text files (one passage per line); the bundled
            corpus when None.
        valid_files: validation text files; with `train_files` and none
            given, the last 5% of the training lines.
        preset: a key of `GPT_PRESETS`.
        epochs: passes over the training windows.
        max_minutes: optional wall-clock budget.
        vocabulary_size: SentencePiece vocabulary size.
        sequence_length: window length, which is also the model's number
            of positions; the preset's `max_sequence_length` when None.
        batch_size: windows per batch.
        warmup_steps: warmup of `TransformerSchedule`.
        learning_rate_scale: `scale` of `TransformerSchedule`.
        steps_per_epoch: optional cap on batches per epoch.
        max_train_lines: use only the first lines of the training text.
        seed: seed of weights and shuffling.
        backup_every_steps: back up for resuming every N steps as well as
            at the end of every epoch.

    Returns:
        The metadata dict written to `output_dir/metadata.json`.

    Example:
    >>> train_gpt("runs/gpt", preset="small", max_minutes=15)  # doctest: +SKIP
    """
    if preset not in GPT_PRESETS:
        raise ValueError(
            f"Unknown gpt preset; expected one of {sorted(GPT_PRESETS)}. "
            f"Received: preset={preset!r}"
        )
    for name, value in (
        ("epochs", epochs),
        ("batch_size", batch_size),
        ("vocabulary_size", vocabulary_size),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f"`{name}` must be a positive integer. "
                f"Received: {name}={value!r}"
            )
    for name, value, minimum in (
        ("sequence_length", sequence_length, 2),
        ("steps_per_epoch", steps_per_epoch, 1),
        ("max_train_lines", max_train_lines, 1),
    ):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            value_ok = False
        else:
            value_ok = value >= minimum
        if not value_ok:
            raise ValueError(
                f"`{name}` must be an integer of at least {minimum} (or "
                f"None). Received: {name}={value!r}"
            )
    if max_minutes is not None and not max_minutes > 0:
        raise ValueError(
            "`max_minutes` must be positive (or None). "
            f"Received: max_minutes={max_minutes!r}"
        )
    keras.utils.set_random_seed(seed)
    train_texts, valid_texts, description = _load_texts(
        train_files, valid_files, max_train_lines
    )
    os.makedirs(output_dir, exist_ok=True)
    tokenizer_path = os.path.join(output_dir, TOKENIZER_FILE)
    if os.path.exists(tokenizer_path):
        logger.info("Resuming: reusing %s", tokenizer_path)
        tokenizer = SubwordTokenizer.load(tokenizer_path)
    else:
        logger.info("Training a %d-piece SentencePiece model", vocabulary_size)
        tokenizer = SubwordTokenizer(
            train_sentencepiece(train_texts, vocabulary_size, seed=seed)
        )
        tokenizer.save(tokenizer_path)

    config = _model_config(preset, tokenizer.vocabulary_size, sequence_length)
    length = sequence_length or config["max_sequence_length"]
    train_windows = lm_data.pack_windows(
        lm_data.tokenize_texts(train_texts, tokenizer), length
    )
    valid_windows = lm_data.pack_windows(
        lm_data.tokenize_texts(valid_texts, tokenizer), length
    )
    train_ds = lm_data.lm_dataset(
        train_windows, batch_size, shuffle=True, seed=seed, drop_remainder=True
    )
    if len(train_windows) < batch_size:
        train_ds = lm_data.lm_dataset(train_windows, batch_size, shuffle=True)
    valid_ds = lm_data.lm_dataset(valid_windows, batch_size)
    logger.info(
        "Data: %s; %d train windows, %d valid windows of %d tokens",
        description,
        len(train_windows),
        len(valid_windows),
        length,
    )

    model = gpt_lm(**config)
    model.compile(
        optimizer=transformer_adam(
            config["hidden_dim"],
            warmup_steps=warmup_steps,
            scale=learning_rate_scale,
            clipnorm=1.0,
        ),
        loss=MaskedSparseCategoricalCrossentropy(),
        metrics=[Perplexity()],
    )
    meter = ThroughputMeter(batch_size * length)
    callbacks = standard_callbacks(
        output_dir,
        max_minutes=max_minutes,
        backup_every_steps=backup_every_steps,
        extra=[
            meter,
            SampleGeneration(tokenizer, os.path.join(output_dir, "logs")),
        ],
    )
    start = time.monotonic()
    history = training_lib.fit(
        model,
        train_ds,
        validation_data=valid_ds,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=callbacks,
        shuffle=False,  # The dataset shuffles itself.
        verbose=2,
    )
    minutes = (time.monotonic() - start) / 60.0
    if not history.history and os.path.exists(
        os.path.join(output_dir, METADATA_FILE)
    ):
        logger.info("%s already finished all %d epochs", output_dir, epochs)
        return read_metadata(output_dir, TASK)
    val_losses = history.history.get("val_loss") or []
    best = best_perplexity = None
    if val_losses:
        # The checkpoint kept is the one of the lowest validation loss; its
        # token-weighted perplexity is the metric at that epoch.
        epoch = min(range(len(val_losses)), key=val_losses.__getitem__)
        best = float(val_losses[epoch])
        best_perplexity = float(history.history["val_perplexity"][epoch])
    metadata = {
        "preset": preset,
        "model_config": config,
        "sequence_length": length,
        "parameters": int(model.count_params()),
        "data": description,
        "train_windows": len(train_windows),
        "epochs_run": len(history.history.get("loss", [])),
        "train_minutes": round(minutes, 2),
        "stopped_early": bool(callbacks[0].stopped_early),
        "train_tokens_per_second": (
            round(meter.tokens_per_second, 1)
            if meter.tokens_per_second
            else None
        ),
        "best_val_loss": best,
        "best_val_perplexity": best_perplexity,
    }
    write_metadata(output_dir, TASK, **metadata)
    return {"task": TASK, **metadata}


# ----------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------
def evaluate_gpt(model_dir, test_files=None, batch_size=32):
    """Held-out perplexity of a trained model (token-weighted).

    Args:
        model_dir: a `train gpt` model directory.
        test_files: UTF-8 text files; the bundled test books when None.
        batch_size: windows per batch.

    Returns:
        A dict `{"perplexity", "loss" (mean NLL per token), "tokens",
        "data"}`.

    Example:
    >>> evaluate_gpt("runs/gpt")["perplexity"]  # doctest: +SKIP
    """
    metadata = read_metadata(model_dir, TASK)
    model = keras.saving.load_model(
        os.path.join(model_dir, MODEL_FILE), compile=False
    )
    tokenizer = SubwordTokenizer.load(os.path.join(model_dir, TOKENIZER_FILE))
    if test_files:
        texts = read_text_files(test_files)
        description = ", ".join(map(str, test_files))
    else:
        texts = load_bundled_lm_text("test")
        description = "bundled test books"
    length = (
        metadata.get("sequence_length")
        or model.get_layer("embeddings").sequence_length
    )
    dataset, _, tokens = lm_data.text_lm_dataset(
        texts, tokenizer, length, batch_size
    )
    model.compile(
        loss=MaskedSparseCategoricalCrossentropy(), metrics=[Perplexity()]
    )
    results = model.evaluate(dataset, return_dict=True, verbose=0)
    perplexity = float(results["perplexity"])
    return {
        "perplexity": perplexity,
        "loss": math.log(perplexity),
        "tokens": tokens,
        "data": description,
    }


# ----------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------
def add_train_arguments(task, parser):
    parser.add_argument(
        "--train-file", nargs="+", help="UTF-8 text files, one passage a line"
    )
    parser.add_argument("--valid-file", nargs="+", help="validation files")
    parser.add_argument("--output", required=True, help="model directory")
    parser.add_argument(
        "--preset", default="small", choices=sorted(GPT_PRESETS)
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--max-minutes", type=float, default=None)
    parser.add_argument("--vocabulary-size", type=int, default=8000)
    parser.add_argument(
        "--sequence-length",
        type=int,
        default=None,
        help="training window length and model positions (default: the "
        "preset's)",
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--warmup-steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--steps-per-epoch", type=int, default=None, help="cap per epoch"
    )
    parser.add_argument(
        "--backup-every-steps",
        type=int,
        default=None,
        help="also back up for resuming every N steps (default: per epoch)",
    )


def run_train(task, args):
    metadata = train_gpt(
        args.output,
        train_files=args.train_file,
        valid_files=args.valid_file,
        preset=args.preset,
        epochs=args.epochs,
        max_minutes=args.max_minutes,
        vocabulary_size=args.vocabulary_size,
        sequence_length=args.sequence_length,
        batch_size=args.batch_size,
        warmup_steps=args.warmup_steps,
        steps_per_epoch=args.steps_per_epoch,
        backup_every_steps=args.backup_every_steps,
        seed=args.seed,
    )
    perplexity = metadata.get("best_val_perplexity")
    speed = metadata.get("train_tokens_per_second")
    print(
        f"Saved {args.output}: {metadata['parameters']:,} parameters, "
        "valid perplexity "
        + (f"{perplexity:.2f}" if perplexity is not None else "n/a")
        + (f", {speed:.0f} train tokens/s" if speed else "")
    )
    return 0


def add_evaluate_arguments(task, parser):
    parser.add_argument("--model", required=True, help="model directory")
    parser.add_argument(
        "--test-file", nargs="+", help="text files (default: test books)"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--json", action="store_true", help="print JSON")


def run_evaluate(task, args):
    result = evaluate_gpt(args.model, args.test_file, args.batch_size)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"perplexity {result['perplexity']:.3f} over {result['tokens']} "
            f"tokens ({result['data']})"
        )
    return 0


def add_generate_arguments(parser):
    parser.add_argument("--model", required=True, help="model directory")
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        help="default: 64, or fewer for a model with few positions",
    )
    parser.add_argument("--sampler", default="greedy", choices=SAMPLERS)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=40)
    parser.add_argument("--top-p", type=float, default=0.9)
    parser.add_argument("--num-beams", type=int, default=4)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--no-stream",
        action="store_true",
        help="generate all prompts as one compiled batch",
    )
    parser.add_argument(
        "prompts", nargs="*", help="prompts (default: one per stdin line)"
    )


def run_generate(args):
    generator = load_generator(args.model)
    if args.max_new_tokens is None:
        args.max_new_tokens = min(64, generator.max_sequence_length // 2)
    if args.max_new_tokens < 1 or (
        args.max_new_tokens >= generator.max_sequence_length
    ):
        raise ValueError(
            "--max-new-tokens must be in [1, "
            f"{generator.max_sequence_length - 1}]. "
            f"Received: max_new_tokens={args.max_new_tokens}"
        )
    sampler = make_sampler(
        args.sampler, args.temperature, args.top_k, args.top_p, args.num_beams
    )
    prompts = args.prompts
    if not prompts:
        from keras_transformer.data import stdin_lines

        prompts = stdin_lines()
    if args.no_stream or args.sampler == "beam":
        texts = generator.generate(
            prompts,
            args.max_new_tokens,
            sampler,
            args.seed,
            return_full_text=True,
        )
        for text in texts:
            print(text, flush=True)
        return 0
    for prompt in prompts:
        print(
            generator._detokenize(  # The prompt as the model reads it.
                encode_prompts(generator.tokenizer, [prompt])
            )[0],
            end="",
            flush=True,
        )
        for piece in generator.stream(
            prompt, args.max_new_tokens, sampler, args.seed
        ):
            print(piece, end="", flush=True)
        print(flush=True)
    return 0


COMMANDS = {"generate": (add_generate_arguments, run_generate)}


def run_export(task, args):
    from keras_transformer.export.gpt import export_gpt

    path = export_gpt(args.model, args.output, overwrite=args.overwrite)
    print(f"Exported {path} (signatures: serving_default, generate)")
    return 0
