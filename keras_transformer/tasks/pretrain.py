"""Masked-LM pretraining of the BERT encoder, and the bundled encoder.

`pretrain_bert` writes a `bert-pretrain` model directory (the masked-LM
model, a tokenizer with a `[MASK]` piece, the one metadata schema of
`keras_transformer.model_dir`); `train_classifier(pretrained=DIR)` starts
from it. `bundled_encoder_directory` writes out the encoder shipped with the
package as such a directory.

Learning rate: `TransformerSchedule` (linear warmup, then inverse square
root decay), its scale set so that the peak equals `learning_rate`.
Training here is bounded by a wall-clock budget (`max_minutes`), so the
total number of steps is not known in advance; a schedule that needs it
(BERT's linear decay to zero) would decay too slowly or stop too early,
while the inverse square root needs no total.
"""

import hashlib
import logging
import os

from keras_transformer import half_weights
from keras_transformer import model_dir as model_dir_lib
from keras_transformer.tasks import _bert, _common

logger = logging.getLogger(__name__)

TASK = "bert-pretrain"
DEFAULT_PRESET = "small"
DEFAULT_VOCABULARY_SIZE = 8000
DEFAULT_SEQUENCE_LENGTH = 128
PRETRAIN_LEARNING_RATE = 1e-3
PRETRAIN_WARMUP_STEPS = 200
# `pretrained=BUNDLED_ENCODER` (`--pretrained bundled`): the encoder shipped
# in keras_transformer/data/bundled/ (see `bundled_encoder_directory`).
BUNDLED_ENCODER = "bundled"
BUNDLED_ENCODER_NAME = "bert_small_genre_mlm"


def _digest(texts):
    """A short fingerprint of texts given as a list (for `settings`)."""
    if texts is None:
        return None
    digest = hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()
    return f"{len(texts)} texts, sha256 {digest[:16]}"


# ---------------------------------------------------------------------------
# Masked-LM pretraining.


def pretrain_bert(
    output, *, texts=None, valid_texts=None, train_files=None,
    valid_files=None, preset=DEFAULT_PRESET,
    vocabulary_size=DEFAULT_VOCABULARY_SIZE,
    sequence_length=DEFAULT_SEQUENCE_LENGTH, batch_size=64, epochs=10,
    steps_per_epoch=None, max_minutes=None,
    learning_rate=PRETRAIN_LEARNING_RATE, warmup_steps=PRETRAIN_WARMUP_STEPS,
    mask_rate=0.15, skip_bad_lines=False, seed=0, force=False,
    verbose="auto",
):  # fmt: skip
    """Pretrains a BERT encoder with masked language modeling.

    Writes `output/model.keras` (the `bert_masked_lm` model with the best
    validation loss), `tokenizer.model` (with a `[MASK]` piece) and the
    metadata (task "bert-pretrain", `config`: the backbone kwargs), ready
    for `train_classifier(..., pretrained=output)`.

    Args:
        output: str, the model directory; an unfinished one is resumed.
        texts: list of str or None (default): one example per item (e.g. a
            verse). Without `texts` and `train_files`, the bundled English
            LM corpus (train split).
        valid_texts: list of str or None (default): the bundled LM valid
            split when training on it, else 5% of the training texts.
        train_files: str, list of str or None (default): UTF-8 text files,
            one example per line (instead of `texts`).
        valid_files: str, list of str or None (default): validation files
            (instead of `valid_texts`).
        preset: str or dict, default "small". A `BERT_PRESETS` name or a
            dict of `bert_backbone` kwargs (without `vocabulary_size`).
        vocabulary_size: int, default 8000. SentencePiece pieces.
        sequence_length: int, default 128. Longest sequence, [CLS] and
            [SEP] included.
        batch_size: int, default 64. Examples per step.
        epochs: int, default 10. The most epochs (of `steps_per_epoch`).
        steps_per_epoch: int or None (default: one pass over the texts).
        max_minutes: float or None (default). Wall-clock budget; training
            stops cleanly when it is spent.
        learning_rate: float, default 1e-3. The peak learning rate.
        warmup_steps: int, default 200. Warmup steps of the schedule.
        mask_rate: float, default 0.15. Share of tokens to predict.
        skip_bad_lines: bool, default False. Skip lines of `train_files` /
            `valid_files` that are not valid UTF-8 instead of stopping.
        seed: int, default 0. Seed of the tokenizer sample, initialization,
            shuffle and masks.
        force: bool, default False. Resume although the settings differ
            from the recorded ones.
        verbose: "auto" (default), 0, 1 or 2. Keras `fit` verbosity.

    Returns:
        The metadata dict written (`model_dir.METADATA_KEYS`).

    Example:
    >>> from keras_transformer.tasks.pretrain import pretrain_bert
    >>> pretrain_bert("models/bert", preset="tiny",
    ...               max_minutes=1)  # doctest: +SKIP
    """
    # Every argument but `output` defines the run: recorded in the
    # metadata and compared when the run is resumed.
    settings = dict(locals())
    output = os.fspath(settings.pop("output"))
    import keras

    from keras_transformer.data.bert import USER_SYMBOLS
    from keras_transformer.data.masked_lm import masked_lm_dataset

    # Check the arguments.
    _bert.check_encoder_arguments(**settings)
    _check_pretrain_arguments(**settings)
    settings.update(
        texts=_digest(texts),
        valid_texts=_digest(valid_texts),
        train_files=_common.abspath(train_files),
        valid_files=_common.abspath(valid_files),
    )
    _common.start_run(output, TASK, settings, force)

    # Data, tokenizer, model.
    texts, valid_texts, data = _pretraining_texts(
        texts, valid_texts, train_files, valid_files, skip_bad_lines
    )
    keras.utils.set_random_seed(seed)
    tokenizer = _common.tokenizer_or_resume(
        output, texts, vocabulary_size, seed, user_defined_symbols=USER_SYMBOLS
    )
    config = _bert.backbone_config(
        preset, tokenizer.vocabulary_size, sequence_length
    )
    model = masked_lm_model(config, learning_rate, warmup_steps)
    common = dict(
        sequence_length=sequence_length,
        batch_size=batch_size,
        mask_rate=mask_rate,
        seed=seed,
    )
    train_data = masked_lm_dataset(
        texts, tokenizer, shuffle=True, repeat=True, **common
    )
    valid_data = masked_lm_dataset(valid_texts, tokenizer, **common)
    logger.info(
        "Pretraining %s (%d parameters) on %d texts",
        preset if isinstance(preset, str) else "custom",
        model.count_params(),
        len(texts),
    )

    # Training.
    result = _bert.fit(
        model, (texts, train_data, valid_data), output, settings, tokenizer
    )
    return _common.finish(
        output,
        TASK,
        inference={"sequence_length": sequence_length},
        metrics=result.metrics("val_loss"),
        fit_result=result,
        config=config,
        settings=settings,
        tokenizer=tokenizer,
        data=data,
    )


def _check_pretrain_arguments(
    *,
    texts,
    valid_texts,
    train_files,
    valid_files,
    learning_rate,
    warmup_steps,
    mask_rate,
    **unused,
):
    """`pretrain_bert`'s own checks, before any data is read."""
    _bert.check_number("learning_rate", learning_rate)
    _bert.check_number("warmup_steps", warmup_steps)
    _bert.check_number("mask_rate", mask_rate)
    if mask_rate >= 1:
        raise ValueError(
            f"`mask_rate` must be below 1. Received: mask_rate={mask_rate}"
        )
    if texts is not None and train_files is not None:
        raise ValueError(
            "Pass `texts` or `train_files`, not both. "
            f"Received: train_files={train_files}"
        )
    if valid_texts is not None and valid_files is not None:
        raise ValueError(
            "Pass `valid_texts` or `valid_files`, not both. "
            f"Received: valid_files={valid_files}"
        )


def _pretraining_texts(
    texts, valid_texts, train_files, valid_files, skip_bad_lines=False
):
    """`(train texts, valid texts, data entry)`; blank texts dropped."""
    from keras_transformer.data import load_bundled_lm_text, read_text_files

    data = {"train": "texts", "valid": "texts"}
    if train_files is not None:
        texts = read_text_files(train_files, skip_bad_lines)
        data["train"] = _common.abspath(train_files)
    if valid_files is not None:
        valid_texts = read_text_files(valid_files, skip_bad_lines)
        data["valid"] = _common.abspath(valid_files)
    if texts is None:
        texts = load_bundled_lm_text("train")
        data["train"] = "bundled:english_lm:train"
        if valid_texts is None:
            valid_texts = load_bundled_lm_text("valid")
            data["valid"] = "bundled:english_lm:valid"
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise ValueError("No text to pretrain on. Received: texts=[]")
    if valid_texts is None:
        texts, valid_texts = _common.hold_out(texts)
        texts = texts or valid_texts
        data["valid"] = "held out from train"
    data.update(train_examples=len(texts), valid_examples=len(valid_texts))
    return texts, valid_texts, data


def masked_lm_model(backbone, learning_rate, warmup_steps):
    """`bert_masked_lm(backbone)` compiled for pretraining.

    `bert_adamw` peaking at `learning_rate`, the masked cross-entropy over
    the used prediction slots (label 0 marks an unused slot) and the masked
    accuracy. Backend-agnostic: `pretrain_bert` and the JAX pretraining
    example (`examples/pretrain_bert_jax.py`) both use it.

    Args:
        backbone: dict of `bert_backbone` keyword arguments (or a backbone
            model).
        learning_rate: float, the peak learning rate.
        warmup_steps: int, warmup steps of the schedule.

    Returns:
        The compiled `keras.Model`.

    Example:
    >>> from keras_transformer.tasks.pretrain import masked_lm_model
    >>> model = masked_lm_model(dict(vocabulary_size=50, num_layers=1,
    ...     hidden_dim=16, num_heads=2, intermediate_dim=32), 1e-3, 10)
    >>> model.optimizer is not None
    True
    """
    from keras_transformer.applications.bert import bert_masked_lm
    from keras_transformer.losses import MaskedSparseCategoricalCrossentropy
    from keras_transformer.metrics import MaskedAccuracy
    from keras_transformer.optimizers import bert_adamw

    model = bert_masked_lm(backbone)
    hidden_dim = model.get_layer("mlm_dense").units
    model.compile(
        optimizer=bert_adamw(hidden_dim, learning_rate, warmup_steps),
        loss=MaskedSparseCategoricalCrossentropy(ignore_index=0),
        weighted_metrics=[MaskedAccuracy(ignore_index=0)],
    )
    return model


# ---------------------------------------------------------------------------
# Writing a pretrained directory; the bundled encoder.


def write_pretrained_directory(
    directory, model, tokenizer_file, *, config, sequence_length,
    settings=None, data=None, metrics=None, train_seconds=None, steps=0,
    parent=None, overwrite=True,
):  # fmt: skip
    """Writes a `bert-pretrain` model directory, atomically.

    What `train_classifier(pretrained=directory)` reads: `model.keras` (a
    `bert_masked_lm` model), `tokenizer.model` and the metadata (one
    schema, see `keras_transformer.model_dir`). For masked-LM models
    trained elsewhere (e.g. `examples/pretrain_bert_jax.py`). An existing
    directory is replaced only once the new one is complete.

    Args:
        directory: str, the directory to write.
        model: the masked-LM `keras.Model`.
        tokenizer_file: str, path of its SentencePiece model.
        config: dict, the `bert_backbone` kwargs the model was built with.
        sequence_length: int, the longest sequence it was trained on.
        settings: dict or None (default), how it was trained.
        data: dict or None (default), what it was trained on.
        metrics: dict or None (default), e.g. `val_loss`.
        train_seconds: float or None (default), time in training steps.
        steps: int, default 0. Optimizer steps taken.
        parent: str or None (default), what it started from.
        overwrite: bool, default True. Replace an existing directory; if
            False, an existing one (also one that another process completes
            meanwhile) is a `FileExistsError` and is left as it is.

    Returns:
        The directory, str.

    Example:
    >>> from keras_transformer.tasks.pretrain import (
    ...     write_pretrained_directory)
    >>> write_pretrained_directory("runs/mlm", model, "tokenizer.model",
    ...     config=backbone, sequence_length=128)  # doctest: +SKIP
    """
    from keras_transformer.tokenizers import SubwordTokenizer

    tokenizer = SubwordTokenizer.load(os.fspath(tokenizer_file))
    metadata = model_dir_lib.make_metadata(
        TASK,
        config=config,
        settings=settings,
        tokenizer=_common.tokenizer_summary(tokenizer),
        data=data,
        inference={"sequence_length": int(sequence_length)},
        train_seconds=train_seconds,
        steps=steps,
        metrics=metrics,
        parent=parent,
    )
    return _bert.write_directory(
        directory, model, tokenizer_file, metadata, overwrite
    )


def _cache_root():
    return os.environ.get("KERAS_TRANSFORMER_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "keras_transformer"
    )


def bundled_encoder_directory(directory=None):
    """The bundled pretrained encoder, as a `bert-pretrain` model directory.

    The package ships a `small` encoder (5.8M parameters, 10,000 pieces)
    pretrained with masked-LM on the bundled genre task's training verses
    only (provenance in `data/bundled/PROVENANCE.md`), stored in float16.
    The first call writes it out as a directory `train_classifier` can start
    from; later calls return the existing one (a directory written by an
    older version is written again).

    Args:
        directory: str or None (default):
            `$KERAS_TRANSFORMER_CACHE/bert_small_genre_mlm` (the cache
            defaults to `~/.cache/keras_transformer`).

    Returns:
        The directory path, str.

    Example:
    >>> from keras_transformer.tasks import classifier, pretrain
    >>> path = pretrain.bundled_encoder_directory()  # doctest: +SKIP
    >>> classifier.train_classifier("runs/genre",
    ...                             pretrained=path)  # doctest: +SKIP
    """
    import importlib.resources
    import json

    from keras_transformer.applications.bert import bert_masked_lm

    if directory is None:
        directory = os.path.join(_cache_root(), BUNDLED_ENCODER_NAME)
    directory = os.fspath(directory)
    try:  # Written by this version: use it.
        model_dir_lib.read_metadata(directory, TASK)
        return directory
    except model_dir_lib.ModelDirectoryError:
        pass
    bundled = importlib.resources.files("keras_transformer.data") / "bundled"
    info = json.loads(
        (bundled / f"{BUNDLED_ENCODER_NAME}.json").read_text(encoding="utf-8")
    )
    model = bert_masked_lm(info["backbone"])
    with importlib.resources.as_file(
        bundled / f"{BUNDLED_ENCODER_NAME}.npz"
    ) as path:
        half_weights.load_float16_weights(model, [path])
    with importlib.resources.as_file(
        bundled / f"{BUNDLED_ENCODER_NAME}.tokenizer.model"
    ) as path:
        try:
            write_pretrained_directory(
                directory,
                model,
                path,
                overwrite=os.path.exists(directory),
                **_bundled_metadata(info),
            )
        except FileExistsError:
            # Another process (two fine-tunes started together) wrote it
            # first; its directory is complete, since writes are atomic.
            if not os.path.exists(
                os.path.join(directory, model_dir_lib.METADATA_FILE)
            ):
                raise
            return directory
    logger.info("Wrote the bundled pretrained encoder to %s", directory)
    return directory


def _bundled_metadata(info):
    """`write_pretrained_directory` kwargs from the bundled JSON record."""
    results = ("train_texts", "text", "steps", "minutes", "val_loss")
    settings = {
        key: value
        for key, value in info.items()
        if key not in ("backbone", "val_masked_accuracy", *results)
    }
    settings["vocabulary_size"] = info["backbone"]["vocabulary_size"]
    return dict(
        config=info["backbone"],
        sequence_length=info["sequence_length"],
        settings=settings,
        data={
            "train": "bundled:genre:train",
            "valid": "bundled:genre:valid",
            "train_examples": info.get("train_texts"),
            "text": info.get("text"),
        },
        metrics={
            "val_loss": info.get("val_loss"),
            "val_masked_accuracy": info.get("val_masked_accuracy"),
        },
        train_seconds=info["minutes"] * 60 if "minutes" in info else None,
        steps=info.get("steps", 0),
        parent=None,
    )
