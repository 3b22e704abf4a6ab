"""Translation task: train, translate, evaluate and export from the CLI.

The command-line functions (`run_train`, `run_evaluate`, `COMMANDS`,
`run_export`) are thin wrappers over a Python API that tests and examples
use directly:

- `train_translation(output_dir, ...)` trains a `transformer_seq2seq` on a
  TSV parallel corpus (or the bundled English-Spanish verses) and writes a
  model directory (see `keras_transformer.training`).
- `load_translator(model_dir)` returns a `Translator` with
  `.translate(texts, beam_size=..., length_penalty=...)`.
- `evaluate_translation(model_dir, ...)` returns corpus BLEU and chrF.
- `export_translation(model_dir, output)` writes a TF Serving SavedModel.
"""

import json
import logging
import os
import time

import keras
import tensorflow as tf

from keras_transformer import training
from keras_transformer.applications.presets import get_preset
from keras_transformer.applications.translation import (
    Seq2SeqDecoder,
    transformer_seq2seq,
)
from keras_transformer.data.loaders import (
    load_bundled_translation,
    read_pairs_tsv,
    stdin_lines,
)
from keras_transformer.data.translation import (
    count_target_tokens,
    make_translation_dataset,
    pad_batch,
)
from keras_transformer.generation import BeamSampler, compile_decode
from keras_transformer.losses import MaskedSparseCategoricalCrossentropy
from keras_transformer.metrics import MaskedAccuracy, corpus_bleu
from keras_transformer.optimizers import transformer_adam
from keras_transformer.tokenizers import SubwordTokenizer, train_sentencepiece

logger = logging.getLogger(__name__)

TASK = "translation"
TRAIN_TASKS = (TASK,)
EVALUATE_TASKS = (TASK,)
EXPORT_TASKS = (TASK,)

# Training defaults per preset, sized to the budget each preset is for.
TRAIN_DEFAULTS = {
    "tiny": {"batch_size": 16, "warmup_steps": 30, "learning_rate_scale": 1.0},
    # On 2 shared CPU cores a 20-minute run makes only a few hundred
    # steps: a short warmup and small batches give more useful updates.
    "small": {
        "batch_size": 32,
        "warmup_steps": 100,
        "learning_rate_scale": 0.5,
    },
    "base": {
        "batch_size": 64,
        "warmup_steps": 4000,
        "learning_rate_scale": 1.0,
    },
}
DEFAULT_LENGTH_PENALTY = 0.6
NUM_SAMPLE_SENTENCES = 4


def default_jit_compile():
    """XLA where it pays: on a GPU or TPU, not on CPU.

    Measured on the 2-core CPU machines (small preset, batch 32): XLA and
    plain graph mode take the same time per step, but XLA compiles every
    new bucket shape for 10-20 s, which costs a quarter of a 20-minute run.
    """
    return bool(
        tf.config.list_logical_devices("GPU")
        or tf.config.list_logical_devices("TPU")
    )


# ---------------------------------------------------------------------------
# Data.


def load_pairs(path=None, split="train", skip_bad_lines=False):
    """Loads sentence pairs from a TSV file, or the bundled corpus.

    Args:
        path: a UTF-8 `source<TAB>target` file, or None for the bundled
            English-Spanish verses.
        split: the bundled split used when `path` is None.
        skip_bad_lines: skip malformed lines instead of raising.

    Returns:
        `(sources, targets, num_skipped)`.
    """
    if path is None:
        sources, targets = load_bundled_translation(split)
        return sources, targets, 0
    return read_pairs_tsv(path, skip_bad_lines=skip_bad_lines)


# ---------------------------------------------------------------------------
# Decoding.


class Translator:
    """Translates text with a trained model: tokenize, decode, detokenize.

    Decoding is batched (sentences sorted by length, batches padded to a
    fixed size and lengths rounded up to a multiple of 8, so a few compiled
    programs serve every input) and compiled once per shape through
    `keras_transformer.generation.compile_decode` (with XLA on a GPU/TPU;
    on CPU plain graph mode, since XLA's per-shape compile time outweighs
    its gain there).

    Args:
        model: a `transformer_seq2seq` model.
        tokenizer: its `SubwordTokenizer`.
        max_length: target buffer length (start token included); defaults
            to the model's `max_sequence_length`.
        batch_size: sentences decoded together.
        jit_compile: XLA-compile the decode loop; None (default) means
            on a GPU/TPU only (see `default_jit_compile`).

    Example:
    >>> translator = load_translator("runs/en-es")  # doctest: +SKIP
    >>> translator.translate(["In the beginning."], beam_size=4)
    ...  # doctest: +SKIP
    """

    def __init__(
        self, model, tokenizer, max_length=None, batch_size=64, jit_compile=None
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.decoder = Seq2SeqDecoder(model)
        self.max_length = max_length or self.decoder.max_sequence_length
        self.batch_size = batch_size
        if jit_compile is None:
            jit_compile = default_jit_compile()
        self.jit_compile = jit_compile
        self._decode_fns = {}
        self._prepare = tf.function(
            self._prepare_fn, jit_compile=jit_compile, reduce_retracing=True
        )

    def _prepare_fn(self, encoder_token_ids):
        return self.decoder.prepare(
            encoder_token_ids, self.max_length, self.tokenizer.start_id
        )

    def _decode_fn(self, beam_size):
        if beam_size not in self._decode_fns:
            sampler = (
                "greedy"
                if beam_size == 1
                else BeamSampler(beam_size, DEFAULT_LENGTH_PENALTY)
            )
            self._decode_fns[beam_size] = compile_decode(
                self.decoder.step_fn,
                sampler,
                stop_token_ids=[self.tokenizer.end_id],
                pad_token_id=0,
                variables=self.model.variables,
                jit_compile=self.jit_compile,
            )
        return self._decode_fns[beam_size]

    def encode_texts(self, texts):
        """Source token id lists (end token appended, truncated)."""
        ids = self.tokenizer.tokenize(tf.constant(list(texts), tf.string))
        ids = ids[:, : self.max_length - 1].to_list()
        return [row + [self.tokenizer.end_id] for row in ids]

    def translate_ids(
        self, encoder_token_ids, beam_size=1, length_penalty=None
    ):
        """Decodes one padded batch of source ids.

        Args:
            encoder_token_ids: int32 [B, S], 0 for padding.
            beam_size: 1 for greedy search, more for beam search.
            length_penalty: GNMT alpha for beam search (default 0.6).

        Returns:
            int32 numpy array [B, L]: start token, output, end, padding.
        """
        _check_beam_size(beam_size)
        token_ids, cache = self._prepare(
            tf.convert_to_tensor(encoder_token_ids, tf.int32)
        )
        knobs = {}
        if beam_size > 1:
            knobs["length_penalty"] = (
                DEFAULT_LENGTH_PENALTY
                if length_penalty is None
                else float(length_penalty)
            )
        out = self._decode_fn(beam_size)(
            token_ids, None, cache, start_index=1, **knobs
        )
        return keras.ops.convert_to_numpy(out)

    def translate(self, texts, beam_size=1, length_penalty=None):
        """Translates a list of strings.

        Args:
            texts: list of source sentences.
            beam_size: 1 for greedy search, more for beam search.
            length_penalty: GNMT alpha for beam search (default 0.6).

        Returns:
            A list of translated strings, in the order of `texts`.
        """
        if isinstance(texts, str):
            raise ValueError(
                "`texts` must be a list of strings. "
                f"Received: texts={texts[:40]!r}"
            )
        texts = list(texts)
        if not texts:
            return []
        source_ids = self.encode_texts(texts)
        order = sorted(range(len(texts)), key=lambda i: len(source_ids[i]))
        size = min(self.batch_size, 1 << (len(texts) - 1).bit_length())
        results = [None] * len(texts)
        for begin in range(0, len(order), size):
            chunk = order[begin : begin + size]
            rows = [source_ids[i] for i in chunk]
            # Dummy rows (just the end token) keep the batch shape fixed.
            rows += [[self.tokenizer.end_id]] * (size - len(rows))
            out = self.translate_ids(
                pad_batch(rows), beam_size, length_penalty
            )[: len(chunk)]
            strings = self.tokenizer.detokenize(tf.constant(out[:, 1:]))
            for i, text in zip(chunk, strings.numpy()):
                results[i] = text.decode("utf-8")
        return results


def _check_beam_size(beam_size):
    if isinstance(beam_size, bool) or not isinstance(beam_size, int):
        raise ValueError(
            f"`beam_size` must be an integer >= 1. Received: beam_size="
            f"{beam_size!r}"
        )
    if beam_size < 1:
        raise ValueError(
            f"`beam_size` must be an integer >= 1. Received: beam_size="
            f"{beam_size}"
        )


def load_translator(model_dir, batch_size=64, jit_compile=None):
    """Loads a trained translation model directory.

    Args:
        model_dir: a directory written by `train_translation`.
        batch_size: sentences decoded together.
        jit_compile: XLA-compile decoding; None: on a GPU/TPU only.

    Returns:
        A `Translator`.

    Raises:
        ValueError: the directory is missing, incomplete or holds another
            task's model (a clean one-line message).

    Example:
    >>> from keras_transformer.tasks.translation import load_translator
    >>> load_translator("runs/en-es").translate(["Hello."])  # doctest: +SKIP
    """
    metadata = training.read_metadata(model_dir, TASK)
    model = keras.saving.load_model(
        os.path.join(model_dir, training.MODEL_FILE), compile=False
    )
    tokenizer = SubwordTokenizer.load(
        os.path.join(model_dir, training.TOKENIZER_FILE)
    )
    translator = Translator(
        model,
        tokenizer,
        max_length=metadata.get("max_length"),
        batch_size=batch_size,
        jit_compile=jit_compile,
    )
    translator.metadata = metadata
    return translator


# ---------------------------------------------------------------------------
# Training.


class SampleTranslations(keras.callbacks.Callback):
    """Writes greedy translations of fixed sentences as TensorBoard text.

    Args:
        log_dir: TensorBoard directory (a `samples` run is written there).
        tokenizer: the model's tokenizer.
        sources: the source sentences.
        references: their reference translations.
        max_length: target buffer length.
    """

    def __init__(self, log_dir, tokenizer, sources, references, max_length):
        super().__init__()
        self.log_dir = log_dir
        self.tokenizer = tokenizer
        self.sources = list(sources)
        self.references = list(references)
        self.max_length = max_length
        self._translator = None
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        if self._translator is None:
            self._translator = Translator(
                self.model,
                self.tokenizer,
                self.max_length,
                batch_size=len(self.sources),
                jit_compile=False,
            )
            self._writer = tf.summary.create_file_writer(self.log_dir)
        outputs = self._translator.translate(self.sources)
        lines = ["| source | output | reference |", "|---|---|---|"]
        for source, output, reference in zip(
            self.sources, outputs, self.references
        ):
            cells = [c.replace("|", "/") for c in (source, output, reference)]
            lines.append("| " + " | ".join(cells) + " |")
            logger.info("Sample: %s => %s", source, output)
        with self._writer.as_default():
            tf.summary.text("sample_translations", "\n".join(lines), epoch)
        self._writer.flush()


class TrainTimer(keras.callbacks.Callback):
    """Measures time spent in training steps (validation excluded)."""

    def __init__(self):
        super().__init__()
        self.seconds = 0.0
        self.steps = 0
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        self._last = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        if self._start is not None and getattr(self, "_last", None):
            self.seconds += max(0.0, self._last - self._start)
        self._start = self._last = None


def _split_validation(sources, targets, count):
    """Deterministically holds out `count` pairs (every k-th one)."""
    step = max(1, len(sources) // count)
    held = set(range(0, len(sources), step)[:count])
    train = [i for i in range(len(sources)) if i not in held]
    held = sorted(held)
    return (
        [sources[i] for i in train],
        [targets[i] for i in train],
        [sources[i] for i in held],
        [targets[i] for i in held],
    )


def train_translation(
    output_dir,
    *,
    train_file=None,
    valid_file=None,
    test_file=None,
    preset="small",
    epochs=10,
    steps_per_epoch=None,
    max_minutes=None,
    batch_size=None,
    vocabulary_size=None,
    warmup_steps=None,
    learning_rate_scale=None,
    skip_bad_lines=False,
    max_train_pairs=None,
    seed=0,
    jit_compile=None,
    verbose="auto",
):
    """Trains a translation model and writes its model directory.

    The tokenizer (one SentencePiece vocabulary shared by source and target)
    is trained on the training split and saved first; `model.keras` is the
    best model by validation loss; `metadata.json` is written last. Running
    again with the same `output_dir` resumes from `output_dir/backup`.

    Args:
        output_dir: the model directory.
        train_file: `source<TAB>target` TSV; None for the bundled corpus.
        valid_file: validation TSV; defaults to the bundled validation split
            (bundled corpus) or 5% (at most 1000 pairs) held out of
            `train_file`.
        test_file: test TSV, recorded for `evaluate_translation`.
        preset: a `TRANSLATION_PRESETS` name.
        epochs: number of epochs.
        steps_per_epoch: optional steps per epoch (the data repeats);
            validation and checkpoints happen every epoch.
        max_minutes: wall-clock budget; training stops cleanly and still
            saves.
        batch_size: sentence pairs per batch (preset default).
        vocabulary_size: subword vocabulary size (preset default).
        warmup_steps: warmup of `TransformerSchedule` (preset default).
        learning_rate_scale: multiplier of the schedule (preset default).
        skip_bad_lines: skip malformed TSV lines (the count is reported).
        max_train_pairs: use only the first N training pairs.
        seed: random seed.
        jit_compile: passed to `model.compile`; None: XLA on a GPU/TPU
            only (see `default_jit_compile`).
        verbose: passed to `model.fit`.

    Returns:
        The metadata dict written to `metadata.json` (task, preset, model
        config, steps, seconds, tokens/s, validation loss and accuracy, ...).

    Example:
    >>> from keras_transformer.tasks.translation import train_translation
    >>> train_translation("runs/en-es", preset="small", max_minutes=20)
    ...  # doctest: +SKIP
    """
    defaults = TRAIN_DEFAULTS.get(preset, TRAIN_DEFAULTS["small"])
    config = get_preset("translation", preset)
    batch_size = batch_size or defaults["batch_size"]
    warmup_steps = warmup_steps or defaults["warmup_steps"]
    learning_rate_scale = learning_rate_scale or defaults["learning_rate_scale"]
    for name, value in (
        ("epochs", epochs),
        ("batch_size", batch_size),
        ("warmup_steps", warmup_steps),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f"`{name}` must be a positive integer. Received: "
                f"{name}={value!r}"
            )
    keras.utils.set_random_seed(seed)

    sources, targets, skipped = load_pairs(train_file, "train", skip_bad_lines)
    if max_train_pairs:
        sources, targets = sources[:max_train_pairs], targets[:max_train_pairs]
    if valid_file is not None:
        valid_sources, valid_targets, skipped_valid = load_pairs(
            valid_file, "valid", skip_bad_lines
        )
        skipped += skipped_valid
    elif train_file is None:
        valid_sources, valid_targets, _ = load_pairs(None, "valid")
    else:
        count = min(1000, max(1, len(sources) // 20))
        sources, targets, valid_sources, valid_targets = _split_validation(
            sources, targets, count
        )
    if test_file is not None and not os.path.isfile(test_file):
        raise FileNotFoundError(f"No such data file: {test_file!r}")
    if len(sources) < 2 or not valid_sources:
        raise ValueError(
            "Too few sentence pairs to train on. Received: "
            f"{len(sources)} training and {len(valid_sources)} validation "
            "pairs"
        )
    logger.info(
        "%d training pairs, %d validation pairs, %d malformed line(s) skipped.",
        len(sources),
        len(valid_sources),
        skipped,
    )

    os.makedirs(output_dir, exist_ok=True)
    tokenizer_path = os.path.join(output_dir, training.TOKENIZER_FILE)
    if os.path.exists(tokenizer_path):
        tokenizer = SubwordTokenizer.load(tokenizer_path)
        logger.info("Reusing the tokenizer in %s (resuming).", tokenizer_path)
    else:
        proto = train_sentencepiece(
            sources + targets,
            vocabulary_size or config["vocabulary_size"],
            seed=seed,
        )
        tokenizer = SubwordTokenizer(proto)
        tokenizer.save(tokenizer_path)
    config["vocabulary_size"] = tokenizer.vocabulary_size
    max_length = config["max_sequence_length"]

    train_data = make_translation_dataset(
        sources,
        targets,
        tokenizer,
        batch_size=batch_size,
        max_length=max_length,
        seed=seed,
        repeat=steps_per_epoch is not None,
    )
    valid_data = make_translation_dataset(
        valid_sources,
        valid_targets,
        tokenizer,
        batch_size=batch_size,
        max_length=max_length,
        shuffle=False,
    )
    tokens_per_pair = count_target_tokens(targets, tokenizer, max_length) / len(
        targets
    )

    if jit_compile is None:
        jit_compile = default_jit_compile()
    model = transformer_seq2seq(**config)
    model.compile(
        optimizer=transformer_adam(
            config["hidden_dim"],
            warmup_steps=warmup_steps,
            scale=learning_rate_scale,
        ),
        loss=MaskedSparseCategoricalCrossentropy(label_smoothing=0.1),
        metrics=[MaskedAccuracy(name="accuracy")],
        jit_compile=jit_compile,
    )
    timer = TrainTimer()
    samples = SampleTranslations(
        os.path.join(output_dir, "logs", "samples"),
        tokenizer,
        valid_sources[:NUM_SAMPLE_SENTENCES],
        valid_targets[:NUM_SAMPLE_SENTENCES],
        max_length,
    )
    example = next(iter(valid_data.take(1)))[0]
    attention = training.AttentionMapLogger(
        os.path.join(output_dir, "logs", "attention"),
        {name: value[:1] for name, value in example.items()},
    )
    callbacks = training.standard_callbacks(
        output_dir, max_minutes=max_minutes, extra=(timer, samples, attention)
    )
    start = time.monotonic()
    history = training.fit(
        model,
        train_data,
        validation_data=valid_data,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=callbacks,
        verbose=verbose,
    )
    wall_seconds = time.monotonic() - start
    steps = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    logs = {k: float(v[-1]) for k, v in history.history.items() if v}
    tokens_per_second = (
        timer.steps * batch_size * tokens_per_pair / timer.seconds
        if timer.seconds
        else None
    )
    metadata = {
        "preset": preset,
        "config": config,
        "max_length": max_length,
        "batch_size": batch_size,
        "warmup_steps": warmup_steps,
        "learning_rate_scale": learning_rate_scale,
        "parameters": int(model.count_params()),
        "train_pairs": len(sources),
        "valid_pairs": len(valid_sources),
        "skipped_lines": skipped,
        "train_file": _abspath(train_file),
        "valid_file": _abspath(valid_file),
        "test_file": _abspath(test_file),
        "steps": steps,
        "epochs_run": len(history.epoch),
        "stopped_early": bool(callbacks[0].stopped_early),
        "train_seconds": round(timer.seconds, 1),
        "wall_seconds": round(wall_seconds, 1),
        "target_tokens_per_second": (
            round(tokens_per_second, 1) if tokens_per_second else None
        ),
        "final_logs": logs,
    }
    training.write_metadata(output_dir, TASK, **metadata)
    return dict(metadata, task=TASK)


def _abspath(path):
    return None if path is None else os.path.abspath(path)


# ---------------------------------------------------------------------------
# Evaluation.


def evaluate_translation(
    model_dir,
    test_file=None,
    beam_size=1,
    length_penalty=None,
    skip_bad_lines=False,
    translator=None,
    max_pairs=None,
):
    """Corpus BLEU and chrF (sacrebleu) of a model on a test set.

    Args:
        model_dir: a translation model directory.
        test_file: `source<TAB>target` TSV; defaults to the test file given
            at training time, else the bundled test split.
        beam_size: 1 for greedy search, more for beam search.
        length_penalty: beam-search length penalty (default 0.6).
        skip_bad_lines: skip malformed TSV lines.
        translator: an already loaded `Translator` for `model_dir`.
        max_pairs: evaluate only the first N pairs.

    Returns:
        A dict with `bleu`, `chrf`, `signature`, `sentences`, `beam_size`,
        `seconds` and `target_tokens_per_second` (decoding speed).
    """
    translator = translator or load_translator(model_dir)
    metadata = translator.metadata
    test_file = test_file or metadata.get("test_file")
    sources, references, _ = load_pairs(test_file, "test", skip_bad_lines)
    if max_pairs:
        sources, references = sources[:max_pairs], references[:max_pairs]
    start = time.monotonic()
    outputs = translator.translate(
        sources, beam_size=beam_size, length_penalty=length_penalty
    )
    seconds = time.monotonic() - start
    produced = sum(len(ids) for ids in translator.encode_texts(outputs))
    scores = corpus_bleu(outputs, references)
    return {
        **scores,
        "sentences": len(sources),
        "beam_size": beam_size,
        "length_penalty": (
            None
            if beam_size == 1
            else (
                DEFAULT_LENGTH_PENALTY
                if length_penalty is None
                else length_penalty
            )
        ),
        "test_file": test_file or "bundled:test",
        "seconds": round(seconds, 1),
        "target_tokens_per_second": round(produced / max(seconds, 1e-9), 1),
    }


# ---------------------------------------------------------------------------
# Export.


def export_translation(model_dir, output, overwrite=False):
    """Exports a model directory as a TF Serving SavedModel.

    Args:
        model_dir: a translation model directory.
        output: `.../NAME/VERSION`.
        overwrite: replace an existing version.

    Returns:
        The absolute export path.
    """
    from keras_transformer.export.common import check_export_destination
    from keras_transformer.export.translation import export_translator

    # Refuse a bad destination before the slow loading and tracing.
    output = check_export_destination(output, overwrite)
    translator = load_translator(model_dir, jit_compile=False)
    return export_translator(translator, output, overwrite=overwrite)


# ---------------------------------------------------------------------------
# Command line.


def add_train_arguments(task, parser):
    parser.add_argument("--train-file", help="source<TAB>target TSV")
    parser.add_argument("--valid-file", help="validation TSV")
    parser.add_argument("--test-file", help="test TSV (used by evaluate)")
    parser.add_argument("--output", required=True, help="model directory")
    parser.add_argument("--preset", default="small", help="tiny/small/base")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument(
        "--steps-per-epoch", type=int, help="steps between validations"
    )
    parser.add_argument("--max-minutes", type=float, help="time budget")
    parser.add_argument("--batch-size", type=int, help="pairs per batch")
    parser.add_argument("--vocabulary-size", type=int)
    parser.add_argument("--warmup-steps", type=int)
    parser.add_argument("--learning-rate-scale", type=float)
    parser.add_argument(
        "--max-train-pairs", type=int, help="use the first N pairs"
    )
    parser.add_argument("--skip-bad-lines", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--export",
        metavar="DIR",
        help="after training, also export a SavedModel to DIR "
        "(.../NAME/VERSION)",
    )


def run_train(task, args):
    metadata = train_translation(
        args.output,
        train_file=args.train_file,
        valid_file=args.valid_file,
        test_file=args.test_file,
        preset=args.preset,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        max_minutes=args.max_minutes,
        batch_size=args.batch_size,
        vocabulary_size=args.vocabulary_size,
        warmup_steps=args.warmup_steps,
        learning_rate_scale=args.learning_rate_scale,
        skip_bad_lines=args.skip_bad_lines,
        max_train_pairs=args.max_train_pairs,
        seed=args.seed,
    )
    if metadata["skipped_lines"]:
        print(f"Skipped {metadata['skipped_lines']} malformed line(s).")
    logs = metadata["final_logs"]
    print(
        f"Trained {metadata['steps']} steps in "
        f"{metadata['train_seconds']:.0f} s "
        f"({metadata['target_tokens_per_second']} target tokens/s); "
        f"val_loss {logs.get('val_loss', float('nan')):.4f}, "
        f"val_accuracy {logs.get('val_accuracy', float('nan')):.4f}. "
        f"Model directory: {args.output}"
    )
    if args.export:
        print(f"Exported {export_translation(args.output, args.export)}")
    return 0


def add_evaluate_arguments(task, parser):
    parser.add_argument("--model", required=True, help="model directory")
    parser.add_argument("--test-file", help="source<TAB>target TSV")
    parser.add_argument("--beam-size", type=int, default=1)
    parser.add_argument("--length-penalty", type=float)
    parser.add_argument("--skip-bad-lines", action="store_true")
    parser.add_argument("--json", action="store_true", help="print JSON")


def run_evaluate(task, args):
    result = evaluate_translation(
        args.model,
        test_file=args.test_file,
        beam_size=args.beam_size,
        length_penalty=args.length_penalty,
        skip_bad_lines=args.skip_bad_lines,
    )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"BLEU {result['bleu']:.2f}  chrF {result['chrf']:.2f}  "
            f"({result['sentences']} sentences, beam {result['beam_size']})"
        )
    return 0


def _add_translate_arguments(parser):
    parser.add_argument("--model", required=True, help="model directory")
    parser.add_argument("--beam-size", type=int, default=1)
    parser.add_argument("--length-penalty", type=float)
    parser.add_argument(
        "text", nargs="*", help="sentences (default: lines of stdin)"
    )


def _run_translate(args):
    translator = load_translator(args.model)
    # One output line per input line, empty ones included, so outputs stay
    # aligned with inputs; invalid UTF-8 on stdin becomes U+FFFD.
    texts = args.text or stdin_lines()
    for output in translator.translate(
        texts, beam_size=args.beam_size, length_penalty=args.length_penalty
    ):
        print(output)
    return 0


COMMANDS = {"translate": (_add_translate_arguments, _run_translate)}


def run_export(task, args):
    path = export_translation(args.model, args.output, args.overwrite)
    print(f"Exported {path}")
    return 0


def main(argv=None):
    """Runs the `keras-transformer` CLI (for `python -m` style use)."""
    from keras_transformer.cli import main as cli_main

    return cli_main(argv)


__all__ = [
    "Translator",
    "evaluate_translation",
    "export_translation",
    "load_translator",
    "train_translation",
]
