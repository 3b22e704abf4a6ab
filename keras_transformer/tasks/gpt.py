"""GPT runner: train and evaluate a decoder-only language model.

- `train_gpt(output_dir, ...)` trains a `gpt_lm` on UTF-8 text files or
  directories (documents: paragraphs separated by blank lines, or one per
  file with `document_per_file=True`, line breaks and indentation kept) or
  the bundled English LM corpus (text derived from the WEB, one verse per
  document, whole books held out for validation and test) and writes a
  model directory (see `keras_transformer.model_dir`).

The tokenizer keeps every character (`train_sentencepiece(...,
preserve_whitespace=True)`, with byte pieces for unseen characters when
the vocabulary has room for them), so a model trained on Python source
completes `"def f(x):\\n"` with an indented line, and the generator and the
exported SavedModel return completions with their line breaks.
- `evaluate_gpt(model_dir, ...)` returns the held-out perplexity.

Generating text is `keras_transformer.load(model_dir)` (a
`keras_transformer.inference.TextGenerator`); exporting a SavedModel is
`keras_transformer.export.export_gpt`.
"""

import logging
import math

import keras

from keras_transformer import model_dir as model_dir_lib
from keras_transformer.applications.gpt import gpt_lm
from keras_transformer.applications.presets import get_preset
from keras_transformer.data import lm as lm_data
from keras_transformer.data.loaders import load_bundled_lm_text
from keras_transformer.inference import TextGenerator
from keras_transformer.losses import MaskedSparseCategoricalCrossentropy
from keras_transformer.metrics import Perplexity
from keras_transformer.optimizers import transformer_adam
from keras_transformer.tasks import _common, _init_from

logger = logging.getLogger(__name__)

TASK = "gpt"
SAMPLE_PROMPT = "In the beginning"
SAMPLE_TOKENS = 32
# The pieces of `vocabulary_size=None`, lowered to what the text gives.
DEFAULT_VOCABULARY_SIZE = 8000
# Smaller vocabularies have no room for the 256 byte pieces.
BYTE_FALLBACK_MIN_VOCABULARY = 512


def read_texts(
    paths, skip_bad_lines=False, document_per_file=False, max_lines=None
):
    """Reads UTF-8 text files (or directories of them) as documents.

    Documents are paragraphs separated by blank lines, or whole files with
    `document_per_file`; their line breaks and indentation are kept (see
    `keras_transformer.data.lm.read_documents`). A line that is not valid
    UTF-8 raises `DataFormatError` naming the file and the line, or with
    `skip_bad_lines` is left out and counted.

    Args:
        paths: str or list of str, files or directories, read in order.
        skip_bad_lines: bool, default False. Skip lines that are not valid
            UTF-8 (their count is logged) instead of raising.
        document_per_file: bool, default False. Each file is one document.
        max_lines: int or None (default). Read only the first N lines.

    Returns:
        `(documents, num_skipped)`.

    Example:
    >>> from keras_transformer.tasks.gpt import read_texts
    >>> documents, skipped = read_texts(["a.txt"])  # doctest: +SKIP
    """
    return lm_data.read_documents(
        paths,
        document_per_file=document_per_file,
        skip_bad_lines=skip_bad_lines,
        max_lines=max_lines,
    )


def _hold_out(documents):
    """`(train, valid)` documents: 5% of the documents, or with a single
    document its last lines (5%, at least one)."""
    if len(documents) >= 2:
        return _common.hold_out(documents)
    lines = documents[0].splitlines(keepends=True) if documents else []
    filled = [i for i, line in enumerate(lines) if line.strip()]
    if len(filled) < 2:
        raise ValueError(
            "The training files hold a single document of fewer than 2 "
            "lines; give more text or `valid_files`. Received: "
            f"{len(filled)} lines"
        )
    count = min(
        _common.MAX_VALIDATION_EXAMPLES,
        len(filled) - 1,
        max(1, round(len(filled) * _common.VALIDATION_SHARE)),
    )
    cut = filled[-count]
    return ["".join(lines[:cut])], ["".join(lines[cut:])]


# ---------------------------------------------------------------------------
# Training steps.


def _load_texts(
    train_files, valid_files, max_train_lines, skip_bad_lines,
    document_per_file,
):  # fmt: skip
    """Training and validation documents, and the `data` entry of the
    metadata."""
    if train_files:
        train, skipped = read_texts(
            train_files, skip_bad_lines, document_per_file, max_train_lines
        )
        if valid_files:
            valid, more = read_texts(
                valid_files, skip_bad_lines, document_per_file
            )
            skipped += more
        else:
            train, valid = _hold_out(train)
    else:
        train = load_bundled_lm_text("train")[:max_train_lines]
        valid, skipped = load_bundled_lm_text("valid"), 0
    data = {
        "train": _common.abspath(train_files) or "bundled:train",
        "valid": _common.abspath(valid_files)
        or ("held-out:train" if train_files else "bundled:valid"),
        "test": None if train_files else "bundled:test",
        "train_documents": len(train),
        "valid_documents": len(valid),
        "train_lines": lm_data.count_lines(train),
        "valid_lines": lm_data.count_lines(valid),
        "skipped_lines": skipped,
    }
    return train, valid, data


def _model_config(preset, vocabulary_size, sequence_length):
    config = get_preset(TASK, preset)
    config["vocabulary_size"] = vocabulary_size
    if sequence_length is not None:
        # Positions the training windows never reach would stay untrained.
        config["max_sequence_length"] = sequence_length
    return config


def _make_datasets(train, valid, tokenizer, length, batch_size, seed):
    """The repeating training and the finite validation datasets.

    Returns:
        `(train_data, valid_data, num_train_windows, num_valid_windows)`.
    """
    train_windows = lm_data.pack_windows(
        lm_data.tokenize_texts(train, tokenizer), length
    )
    valid_windows = lm_data.pack_windows(
        lm_data.tokenize_texts(valid, tokenizer), length
    )
    # Full batches only (static shapes), unless there is less than one.
    train_data = lm_data.lm_dataset(
        train_windows,
        batch_size,
        shuffle=True,
        seed=seed,
        drop_remainder=len(train_windows) >= batch_size,
    ).repeat()
    valid_data = lm_data.lm_dataset(valid_windows, batch_size)
    logger.info(
        "%d training windows, %d validation windows of %d tokens.",
        len(train_windows),
        len(valid_windows),
        length,
    )
    return train_data, valid_data, len(train_windows), len(valid_windows)


def _build_model(
    config, warmup_steps, learning_rate_scale, parent_dir=None, settings=None
):
    """A compiled `gpt_lm`, new or the parent directory's (LoRA adapters
    added when asked; gradients are clipped to norm 1), and the
    metadata's `inference["lora"]` entry (or None)."""
    optimizer = transformer_adam(
        config["hidden_dim"], warmup_steps, learning_rate_scale, clipnorm=1.0
    )
    lora = None
    if parent_dir is None:
        model = gpt_lm(**config)
    else:
        model, lora = _init_from.parent_model(parent_dir, settings)
    model.compile(
        optimizer,
        loss=MaskedSparseCategoricalCrossentropy(),
        metrics=[Perplexity()],
    )
    return model, lora


def _samples(model, tokenizer):
    """A greedy completion of `SAMPLE_PROMPT`, for `run_fit(samples=...)`."""
    generator = TextGenerator(model, tokenizer)
    max_new_tokens = min(SAMPLE_TOKENS, generator.max_sequence_length - 2)

    def samples(model):
        text = generator.generate(
            SAMPLE_PROMPT, max_new_tokens, return_full_text=True
        )
        return [(SAMPLE_PROMPT, text)]

    return samples


def train_gpt(
    output_dir,
    *,
    train_files=None,
    valid_files=None,
    document_per_file=False,
    preset="small",
    epochs=10,
    max_minutes=None,
    vocabulary_size=None,
    sequence_length=None,
    batch_size=16,
    warmup_steps=200,
    learning_rate_scale=0.5,
    steps_per_epoch=None,
    max_train_examples=None,
    backup_every_steps=None,
    skip_bad_lines=False,
    seed=0,
    force=False,
    verbose="auto",
    max_train_lines=None,
    init_from=None,
    lora_rank=None,
    lora_alpha=None,
    lora_save="merged",
):
    """Trains a GPT language model and writes its model directory.

    Training is resumable: run the same call again after an interruption
    and it continues from the last backup (the tokenizer in the directory
    is reused); the settings must then be the recorded ones (or
    `force=True`).

    Args:
        output_dir: str, the model directory.
        train_files: str, list of str or None (default: the bundled
            corpus). UTF-8 text files or directories (every non-hidden
            file under them, in sorted order). A document is a paragraph
            (lines up to a blank line), line breaks kept; long documents
            span several training windows.
        valid_files: str, list of str or None (default). Validation text
            files or directories, read like `train_files`; without them 5%
            of the training documents (at most 1000) are held out, or the
            last 5% of the lines of a single document.
        document_per_file: bool, default False. Each file is one document
            (source code: blank lines inside a file do not split it).
        preset: str, default "small". A key of `GPT_PRESETS`.
        epochs: int, default 10. The most epochs.
        max_minutes: float or None (default). Wall-clock budget; training
            stops cleanly at a step and still saves.
        vocabulary_size: int or None (default: 8000, lowered to what the
            text can give). SentencePiece pieces; from 512 on they include
            256 byte pieces, so unseen characters are spelled in bytes.
        sequence_length: int or None (default: the preset's
            `max_sequence_length`). The window length, which is also the
            model's number of positions.
        batch_size: int, default 16. Windows per batch.
        warmup_steps: int, default 200. Warmup of `TransformerSchedule`.
        learning_rate_scale: float, default 0.5. Multiplier of the schedule.
        steps_per_epoch: int or None (default: one pass over the windows).
            Steps between validations and checkpoints.
        max_train_examples: int or None (default). Read only the first N
            lines of the training files (blank and skipped lines count),
            or use the first N verses of the bundled corpus.
        backup_every_steps: int or None (default). Also back up for
            resuming every N steps (always at the end of every epoch).
        skip_bad_lines: bool, default False. Skip lines that are not valid
            UTF-8 instead of raising `DataFormatError`.
        seed: int, default 0. Seeds the weights, the SentencePiece
            training and the window shuffling.
        force: bool, default False. When True, a rerun may change settings
            recorded in `run.json` (the new ones are recorded).
        verbose: "auto" (default), 0, 1 or 2: Keras' `fit` verbosity;
            "auto" is a progress bar on a terminal, else a line per epoch.
        max_train_lines: deprecated name of `max_train_examples`.
        init_from: str or None (default). A GPT directory to fine-tune:
            its tokenizer, architecture and weights are kept (`preset`,
            `vocabulary_size` are then ignored; `sequence_length` may not
            exceed its positions) and a fresh optimizer trains them on
            `train_files`; the metadata's `parent` names it.
        lora_rank, lora_alpha, lora_save: LoRA fine-tuning of `init_from`
            (see `keras_transformer.tasks._init_from`).

    Returns:
        A dict: `output_dir/metadata.json`, with the keys of
        `keras_transformer.model_dir.METADATA_KEYS`.

    Raises:
        ResumeMismatchError: `output_dir` holds a run with other settings
            (and `force` is False).
        DataFormatError: a text file holds invalid UTF-8 (and
            `skip_bad_lines` is False).

    Example:
    >>> from keras_transformer.tasks.gpt import train_gpt
    >>> train_gpt("runs/gpt", max_minutes=15)  # doctest: +SKIP
    """
    # Every argument but the directory defines the run (see `run.json`).
    settings = _common.run_settings(
        locals(), "train_gpt", renamed=("max_train_examples", "max_train_lines")
    )
    max_train_examples = settings["max_train_examples"]
    get_preset(TASK, preset)  # An unknown preset fails here.
    _init_from.check_arguments(init_from, lora_rank, lora_alpha, lora_save)
    parent_dir, parent = _init_from.resolve(init_from, TASK)
    if parent is not None and sequence_length is not None:
        most = parent["inference"]["max_sequence_length"]
        if sequence_length > most:
            raise ValueError(
                f"`sequence_length` may not exceed the {most} positions of "
                f"{parent_dir}. Received: sequence_length={sequence_length}"
            )
    _common.check_positive(
        integers=[
            ("epochs", epochs),
            ("vocabulary_size", vocabulary_size),
            ("sequence_length", sequence_length),
            ("batch_size", batch_size),
            ("warmup_steps", warmup_steps),
            ("steps_per_epoch", steps_per_epoch),
            ("max_train_examples", max_train_examples),
            ("backup_every_steps", backup_every_steps),
        ],
        numbers=[
            ("max_minutes", max_minutes),
            ("learning_rate_scale", learning_rate_scale),
        ],
    )
    if sequence_length == 1:
        raise ValueError(
            "`sequence_length` must be at least 2 (or None). "
            f"Received: sequence_length={sequence_length}"
        )
    if valid_files and not train_files:
        raise ValueError(
            "`valid_files` needs `train_files` (the bundled corpus has its "
            f"own validation books). Received: valid_files={valid_files!r}"
        )
    settings.update(
        train_files=_common.abspath(train_files),
        valid_files=_common.abspath(valid_files),
        init_from=parent_dir,
    )
    _common.start_run(output_dir, TASK, settings, force)
    if parent_dir is not None:
        _init_from.copy_tokenizer(parent_dir, output_dir)
    keras.utils.set_random_seed(seed)

    entries = {"settings": settings}  # The metadata entries, gathered.
    train, valid, entries["data"] = _load_texts(
        train_files,
        valid_files,
        max_train_examples,
        skip_bad_lines,
        document_per_file,
    )
    tokenizer = _common.tokenizer_or_resume(
        output_dir,
        train,
        vocabulary_size,
        seed,
        default_size=DEFAULT_VOCABULARY_SIZE,
        preserve_whitespace=True,
        byte_fallback=vocabulary_size is None
        or vocabulary_size >= BYTE_FALLBACK_MIN_VOCABULARY,
    )
    if parent is None:
        config = _model_config(
            preset, tokenizer.vocabulary_size, sequence_length
        )
        length = config["max_sequence_length"]
    else:
        config = dict(parent["config"])
        length = sequence_length or parent["inference"]["max_sequence_length"]
    entries.update(
        tokenizer=tokenizer,
        config=config,
        inference={
            "max_sequence_length": parent["inference"]["max_sequence_length"]
            if parent is not None
            else length
        },
        parent=parent_dir,
    )

    train_data, valid_data, *windows = _make_datasets(
        train, valid, tokenizer, length, batch_size, seed
    )
    entries["data"].update(train_examples=windows[0], valid_examples=windows[1])
    model, lora = _build_model(
        config, warmup_steps, learning_rate_scale, parent_dir, settings
    )
    _init_from.record(entries, lora, parent_dir)
    fit_result = _common.run_fit(
        model,
        train_data,
        valid_data,
        output_dir,
        epochs=epochs,
        # One pass: the full batches (all windows when less than one).
        steps_per_epoch=_common.steps_per_epoch_for(
            windows[0] // batch_size * batch_size or windows[0],
            batch_size,
            steps_per_epoch,
        ),
        max_minutes=max_minutes,
        tokens_per_batch=batch_size * length,
        samples=_samples(model, tokenizer),
        backup_every_steps=backup_every_steps,
        verbose=verbose,
        **_init_from.run_fit_options(lora, output_dir, backup_every_steps),
    )
    metadata = _common.finish_training(
        output_dir, TASK, model, fit_result, entries
    )
    return _init_from.finish(output_dir, lora, metadata)


# ---------------------------------------------------------------------------
# Evaluation.


def evaluate_gpt(
    model_dir,
    test_files=None,
    batch_size=32,
    skip_bad_lines=False,
    document_per_file=None,
):
    """Held-out perplexity of a trained model (token-weighted).

    Args:
        model_dir: str, a GPT model directory.
        test_files: str, list of str or None (default: the bundled test
            books). UTF-8 text files or directories, read as documents
            like the training files.
        batch_size: int, default 32. Windows per batch.
        skip_bad_lines: bool, default False. Skip lines that are not valid
            UTF-8 instead of raising `DataFormatError`.
        document_per_file: bool or None (default: as the model was
            trained). Each test file is one document.

    Returns:
        A dict `{"perplexity", "loss" (mean NLL per token), "tokens",
        "data"}`.

    Example:
    >>> from keras_transformer.tasks.gpt import evaluate_gpt
    >>> evaluate_gpt("runs/gpt")["perplexity"]  # doctest: +SKIP
    """
    _common.check_positive(integers=[("batch_size", batch_size)])
    metadata, model, tokenizer = model_dir_lib.open_model_dir(model_dir, TASK)
    if document_per_file is None:
        settings = metadata.get("settings") or {}
        document_per_file = bool(settings.get("document_per_file", False))
    if test_files:
        texts, _ = read_texts(test_files, skip_bad_lines, document_per_file)
        description = _common.abspath(test_files)
    else:
        texts, description = load_bundled_lm_text("test"), "bundled:test"
    length = metadata["inference"]["max_sequence_length"]
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


__all__ = ["evaluate_gpt", "read_texts", "train_gpt"]
