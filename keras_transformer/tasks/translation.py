"""Translation runner: train and evaluate a Transformer encoder-decoder.

- `train_translation(output_dir, ...)` trains a `transformer_seq2seq` on a
  TSV parallel corpus (or the bundled English-Spanish verses) and writes a
  model directory (see `keras_transformer.model_dir`).
- `evaluate_translation(model_dir, ...)` returns corpus BLEU and chrF.

Translating is `keras_transformer.load(model_dir)` (a
`keras_transformer.inference.Translator`); exporting a SavedModel is
`keras_transformer.export.export_translation`.
"""

import logging
import os
import time

import keras

from keras_transformer import model_dir as model_dir_lib
from keras_transformer import training
from keras_transformer.applications.presets import get_preset
from keras_transformer.applications.translation import transformer_seq2seq
from keras_transformer.data.translation import count_target_tokens
from keras_transformer.inference import (
    DEFAULT_LENGTH_PENALTY,
    Translator,
    default_jit_compile,
)
from keras_transformer.losses import MaskedSparseCategoricalCrossentropy
from keras_transformer.metrics import MaskedAccuracy, corpus_bleu
from keras_transformer.optimizers import transformer_adam
from keras_transformer.tasks import (
    _auto_preset,
    _common,
    _init_from,
    _task_data,
)
from keras_transformer.tasks._task_data import load_pairs

logger = logging.getLogger(__name__)

TASK = "translation"

# Training defaults per preset, sized to the budget each preset is for.
AUTO = "auto"
TRAIN_DEFAULTS = {
    "tiny": {"batch_size": 16, "warmup_steps": 30, "learning_rate_scale": 1.0},
    "mini": {
        "batch_size": 32,
        "warmup_steps": 100,
        "learning_rate_scale": 0.5,
    },
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
NUM_SAMPLE_SENTENCES = 4


def _build_model(
    config, warmup_steps, learning_rate_scale, jit_compile, parent_dir=None,
    settings=None,
):  # fmt: skip
    """A compiled `transformer_seq2seq` (label smoothing 0.1), new or the
    parent directory's (LoRA adapters added when asked), and the metadata's
    `inference["lora"]` entry (or None)."""
    lora = None
    if parent_dir is None:
        model = transformer_seq2seq(**config)
    else:
        model, lora = _init_from.parent_model(parent_dir, settings)
    model.compile(
        optimizer=transformer_adam(
            config["hidden_dim"], warmup_steps, learning_rate_scale
        ),
        loss=MaskedSparseCategoricalCrossentropy(label_smoothing=0.1),
        metrics=[MaskedAccuracy(name="accuracy")],
        jit_compile=jit_compile,
    )
    return model, lora


def _monitors(model, tokenizer, valid, valid_data, max_length, output_dir):
    """Sample translations and attention maps written every epoch."""
    sources = valid[0][:NUM_SAMPLE_SENTENCES]
    translator = Translator(
        model,
        tokenizer,
        max_length=max_length,
        batch_size=len(sources),
        jit_compile=False,
    )

    def samples(model):
        return list(zip(sources, translator.translate(sources)))

    example = next(iter(valid_data.take(1)))[0]
    attention = training.AttentionMapLogger(
        os.path.join(output_dir, model_dir_lib.LOGS_DIR, "attention"),
        {name: value[:1] for name, value in example.items()},
    )
    return samples, attention


def train_translation(
    output_dir,
    *,
    train_file=None,
    valid_file=None,
    test_file=None,
    preset="auto",
    epochs=10,
    steps_per_epoch=None,
    max_minutes=None,
    batch_size=None,
    vocabulary_size=None,
    warmup_steps=None,
    learning_rate_scale=None,
    skip_bad_lines=False,
    max_train_examples=None,
    seed=0,
    jit_compile=None,
    force=False,
    verbose="auto",
    max_train_pairs=None,
    init_from=None,
    lora_rank=None,
    lora_alpha=None,
    lora_save="merged",
):
    """Trains a translation model and writes its model directory.

    The tokenizer (one SentencePiece vocabulary shared by source and target)
    is trained on the training pairs and saved first; `model.keras` is the
    best model by validation loss; `metadata.json` is written last. Running
    again with the same `output_dir` resumes from `output_dir/backup`; the
    settings must then be the recorded ones (or `force=True`).

    Args:
        output_dir: str, the model directory.
        train_file: str or None (default: the bundled corpus). A
            `source<TAB>target` TSV file.
        valid_file: str or None (default). Validation TSV; without it the
            bundled validation split (bundled corpus) or 5% (at most 1000
            pairs) held out of `train_file`.
        test_file: str or None (default). Test TSV, recorded for
            `evaluate_translation`.
        preset: str, default "auto". A `TRANSLATION_PRESETS` name, or
            "auto": the largest of `_auto_preset.CANDIDATES` that the
            corpus size and the budget (`max_minutes`, `epochs`) can train
            (the rule: `keras_transformer.tasks._auto_preset`); the choice
            and its reasons are in the metadata's `settings`.
        epochs: int, default 10. The most epochs.
        steps_per_epoch: int or None (default: one pass over the training
            pairs). Steps between validations and checkpoints.
        max_minutes: float or None (default). Wall-clock budget; training
            stops cleanly at a step and still saves.
        batch_size: int or None (default: the preset's, `TRAIN_DEFAULTS`).
        vocabulary_size: int or None (default: the preset's, lowered to
            what a small corpus can give).
        warmup_steps: int or None (default: the preset's). Warmup of
            `TransformerSchedule`.
        learning_rate_scale: float or None (default: the preset's).
            Multiplier of the schedule.
        skip_bad_lines: bool, default False. Skip malformed TSV lines.
        max_train_examples: int or None (default). Use the first N pairs
            only.
        seed: int, default 0. Seed of weights, tokenizer and shuffling.
        jit_compile: bool or None (default: XLA on a GPU/TPU only).
        force: bool, default False. Resume with settings that differ from
            the recorded ones.
        verbose: "auto" (default: bars on a terminal, a line per epoch
            otherwise), 0, 1 or 2.
        max_train_pairs: deprecated name of `max_train_examples`.
        init_from: str or None (default). A translation directory to
            fine-tune: its tokenizer, architecture and weights are kept
            (`preset`, `vocabulary_size` are then ignored) and a fresh
            optimizer trains them on `train_file`; the metadata's `parent`
            names it.
        lora_rank, lora_alpha, lora_save: LoRA fine-tuning of `init_from`
            (see `keras_transformer.tasks._init_from`).

    Returns:
        The metadata dict written to `metadata.json` (the keys of
        `keras_transformer.model_dir.METADATA_KEYS`).

    Raises:
        ResumeMismatchError: `output_dir` was trained with other settings.

    Example:
    >>> from keras_transformer.tasks.translation import train_translation
    >>> train_translation("runs/en-es", max_minutes=20)  # doctest: +SKIP
    """
    # Every argument but the directory defines the run (see `run.json`).
    settings = _common.run_settings(
        locals(),
        "train_translation",
        renamed=("max_train_examples", "max_train_pairs"),
    )
    max_train_examples = settings["max_train_examples"]
    _init_from.check_arguments(init_from, lora_rank, lora_alpha, lora_save)
    parent_dir, parent = _init_from.resolve(init_from, TASK)
    auto = preset == AUTO and parent is None
    # An unknown preset fails here, before any work.
    config = get_preset(
        TASK, _auto_preset.CANDIDATES[-1] if preset == AUTO else preset
    )
    if parent is not None:
        config = dict(parent["config"])
    _common.check_positive(
        integers=[
            ("epochs", epochs),
            ("steps_per_epoch", steps_per_epoch),
            ("batch_size", batch_size),
            ("vocabulary_size", vocabulary_size),
            ("warmup_steps", warmup_steps),
            ("max_train_examples", max_train_examples),
        ],
        numbers=[
            ("max_minutes", max_minutes),
            ("learning_rate_scale", learning_rate_scale),
        ],
    )
    if test_file is not None and not os.path.isfile(test_file):
        raise FileNotFoundError(f"No such data file: {test_file!r}")
    defaults = TRAIN_DEFAULTS.get(preset, TRAIN_DEFAULTS["small"])
    batch_size = batch_size or defaults["batch_size"]
    if not auto:  # With "auto", the chosen preset's, once it is chosen.
        warmup_steps = warmup_steps or defaults["warmup_steps"]
        learning_rate_scale = (
            learning_rate_scale or defaults["learning_rate_scale"]
        )
    settings.update(
        train_file=_common.abspath(train_file),
        valid_file=_common.abspath(valid_file),
        test_file=_common.abspath(test_file),
        batch_size=batch_size,
        vocabulary_size=vocabulary_size,
        warmup_steps=warmup_steps,
        learning_rate_scale=learning_rate_scale,
        init_from=parent_dir,
    )
    _common.start_run(output_dir, TASK, settings, force)
    if parent_dir is not None:
        _init_from.copy_tokenizer(parent_dir, output_dir)
    keras.utils.set_random_seed(seed)
    if jit_compile is None:
        jit_compile = default_jit_compile()
    entries = {"settings": settings}  # The metadata entries, gathered.

    train, valid, entries["data"] = _task_data.load_data(
        train_file, valid_file, test_file, skip_bad_lines, max_train_examples
    )
    tokenizer = _common.tokenizer_or_resume(
        output_dir,
        train[0] + train[1],
        vocabulary_size,
        seed,
        default_size=config["vocabulary_size"],
    )
    max_length = (
        parent["inference"]["max_length"]
        if parent is not None
        else config["max_sequence_length"]
    )
    tokens_per_pair = count_target_tokens(train[1], tokenizer, max_length)
    if auto:
        preset, config, warmup_steps, learning_rate_scale = _resolve_auto(
            entries, len(train[0]), tokens_per_pair / len(train[1]),
            batch_size, max_minutes, epochs, warmup_steps,
            learning_rate_scale,
        )  # fmt: skip
    config["vocabulary_size"] = tokenizer.vocabulary_size
    entries.update(
        tokenizer=tokenizer, config=config, inference={"max_length": max_length}
    )

    datasets = _task_data.make_datasets(
        train, valid, tokenizer, batch_size, max_length, seed
    )
    model, lora = _build_model(
        config, warmup_steps, learning_rate_scale, jit_compile,
        parent_dir, settings,
    )  # fmt: skip
    _init_from.record(entries, lora, parent_dir)
    samples, attention = _monitors(
        model, tokenizer, valid, datasets[1], max_length, output_dir
    )
    fit_result = _common.run_fit(
        model,
        *datasets,  # Training (repeating) and validation.
        output_dir,
        epochs=epochs,
        steps_per_epoch=_common.steps_per_epoch_for(
            len(train[0]), batch_size, steps_per_epoch
        ),
        max_minutes=max_minutes,
        tokens_per_batch=batch_size * tokens_per_pair / len(train[1]),
        samples=samples,
        extra=(attention,),
        verbose=verbose,
        **_init_from.run_fit_options(lora, output_dir),
    )
    metadata = _common.finish_training(
        output_dir, TASK, model, fit_result, entries
    )
    return _init_from.finish(output_dir, lora, metadata)


def _resolve_auto(
    entries, num_pairs, tokens_per_pair, batch_size, max_minutes, epochs,
    warmup_steps, learning_rate_scale,
):  # fmt: skip
    """`preset="auto"`: `(preset, config, warmup, scale)` of the choice.

    The metadata's settings get the chosen preset, its warmup and scale (the
    values the run trained with) and the rule's details (`auto_preset`);
    `run.json` keeps what was asked for, so a rerun resumes.
    """
    preset, details = _auto_preset.choose_preset(
        num_pairs,
        tokens_per_pair,
        batch_size=batch_size,
        max_minutes=max_minutes,
        epochs=epochs,
        accelerator=default_jit_compile(),
    )
    defaults = TRAIN_DEFAULTS[preset]
    warmup_steps = warmup_steps or defaults["warmup_steps"]
    learning_rate_scale = learning_rate_scale or defaults["learning_rate_scale"]
    entries["settings"] = {
        **entries["settings"],
        "preset": preset,
        "warmup_steps": warmup_steps,
        "learning_rate_scale": learning_rate_scale,
        "auto_preset": details,
    }
    logger.info(
        "preset=auto chose %r: %s (expected steps %s).",
        preset,
        details["rule"],
        details["expected_steps"],
    )
    return preset, get_preset(TASK, preset), warmup_steps, learning_rate_scale


# ---------------------------------------------------------------------------
# Evaluation.


def evaluate_translation(
    model_dir,
    test_file=None,
    num_beams=1,
    length_penalty=None,
    skip_bad_lines=False,
    translator=None,
    max_pairs=None,
    verbose=0,
):
    """Corpus BLEU and chrF (sacrebleu) of a model on a test set.

    Args:
        model_dir: str, a translation model directory.
        test_file: str or None (default: the test file given at training
            time, else the bundled test split). A `source<TAB>target` TSV.
        num_beams: int, default 1. 1 for greedy search, more for beam
            search.
        length_penalty: float or None (default: 0.6). Beam-search length
            penalty.
        skip_bad_lines: bool, default False. Skip malformed TSV lines.
        translator: a `keras_transformer.inference.Translator` already
            loaded from `model_dir`, or None (default).
        max_pairs: int or None (default). Evaluate the first N pairs only.
        verbose: int, default 0. 1 shows a progress bar over the decoded
            batches.

    Returns:
        A dict with `bleu`, `chrf`, `signature`, `sentences`, `num_beams`,
        `length_penalty`, `test_file`, `seconds` and
        `target_tokens_per_second` (decoding speed).

    Example:
    >>> from keras_transformer.tasks.translation import evaluate_translation
    >>> evaluate_translation("runs/en-es", num_beams=4)["bleu"]
    ...  # doctest: +SKIP
    """
    _common.check_positive(integers=[("max_pairs", max_pairs)])
    translator = translator or Translator.from_dir(model_dir)
    recorded = (translator.metadata or {}).get("data", {}).get("test")
    if test_file is None and recorded and not recorded.startswith("bundled:"):
        test_file = recorded
    sources, references, _ = load_pairs(test_file, "test", skip_bad_lines)
    if max_pairs:
        sources, references = (
            sources[:max_pairs],
            references[:max_pairs],
        )
    start = time.monotonic()
    outputs = translator.translate(
        sources,
        num_beams=num_beams,
        length_penalty=length_penalty,
        verbose=verbose,
    )
    seconds = time.monotonic() - start
    produced = sum(len(ids) for ids in translator.encode_texts(outputs))
    if num_beams > 1 and length_penalty is None:
        length_penalty = DEFAULT_LENGTH_PENALTY
    return {
        **corpus_bleu(outputs, references),
        "sentences": len(sources),
        "num_beams": num_beams,
        "length_penalty": None if num_beams == 1 else length_penalty,
        "test_file": test_file or "bundled:test",
        "seconds": round(seconds, 1),
        "target_tokens_per_second": round(produced / max(seconds, 1e-9), 1),
    }


__all__ = [
    "AUTO",
    "TRAIN_DEFAULTS",
    "evaluate_translation",
    "load_pairs",
    "train_translation",
]
