"""BERT-style tasks: masked-LM pretraining, text classification, export.

Command line (see `keras_transformer.cli`):

    keras-transformer train bert-pretrain --output DIR [--train-file T.txt]
    keras-transformer train classifier --output DIR [--train-file F.tsv]
        [--pretrained PRETRAIN_DIR | bundled] [--preset small]
        [--max-minutes M]
    keras-transformer classify --model DIR "text" ...      (or stdin lines)
    keras-transformer evaluate classifier --model DIR [--test-file F.tsv]
    keras-transformer export --model DIR --output saved_models/NAME/1
    keras-transformer average-classifiers --model A --model B --output DIR
        [--mode weights|probabilities]

Python API: `pretrain_bert`, `train_classifier`, `load_classifier` (its
`.classify(texts)` returns `(label, probability)` pairs) and
`evaluate_classifier`; `bundled_encoder_directory` (the shipped pretrained
encoder) and `average_classifiers` (weight averages or ensembles).

`train classifier --architecture ngram` trains a bag-of-n-grams model on
the same tokens instead of the encoder; `average-classifiers --mode
probabilities` averages it with a fine-tuned encoder into one model
directory (the best figures on the bundled task; see docs/classifier.md).

Without `--train-file`, `bert-pretrain` uses the bundled English LM corpus
and `classifier` the bundled 6-genre verse task. Both write a model
directory (see `keras_transformer.training`); running the same command
again on it resumes training from the last finished epoch.

Learning rate: `TransformerSchedule` (linear warmup, then inverse square
root decay), with its scale set so that the peak equals `learning_rate`.
Training here is bounded by a wall-clock budget (`max_minutes`), so the total
number of steps is not known in advance; a schedule that needs it (BERT's
linear decay to zero) would decay too slowly or stop too early, while the
inverse square root needs no total. Fine-tuning from a pretrained encoder
uses a lower peak rate and a shorter warmup.
"""

import json
import logging
import os
import sys
import time

import numpy as np

from keras_transformer import training
from keras_transformer.data.loaders import stdin_lines
from keras_transformer.layers._utils import check_rate
from keras_transformer.optimizers import bert_adamw, transformer_adam

logger = logging.getLogger(__name__)

PRETRAIN_TASK = "bert-pretrain"
CLASSIFIER_TASK = "classifier"
TRAIN_TASKS = (PRETRAIN_TASK, CLASSIFIER_TASK)
EVALUATE_TASKS = (CLASSIFIER_TASK,)
EXPORT_TASKS = (CLASSIFIER_TASK,)

DEFAULT_PRESET = "small"
DEFAULT_VOCABULARY_SIZE = 8000
DEFAULT_SEQUENCE_LENGTH = 128
# Peak learning rates and warmup steps (see the module docstring).
PRETRAIN_LEARNING_RATE = 1e-3
PRETRAIN_WARMUP_STEPS = 200
SCRATCH_LEARNING_RATE = 1e-3
SCRATCH_WARMUP_STEPS = 200
FINETUNE_LEARNING_RATE = 5e-4
FINETUNE_WARMUP_STEPS = 100
# `architecture="ngram"`: a bag of hashed n-grams (`ngram_classifier`).
ARCHITECTURES = ("bert", "ngram")
NGRAM_LEARNING_RATE = 1e-2
NGRAM_WARMUP_STEPS = 100
NGRAM_OPTIONS = dict(orders=(1, 2), buckets=2**18, embedding_dim=64)
CONFUSION_MATRIX_FILE = "confusion_matrix.png"
# `pretrained=BUNDLED_ENCODER` (`--pretrained bundled`): the encoder shipped
# in keras_transformer/data/bundled/ (see `bundled_encoder_directory`).
BUNDLED_ENCODER = "bundled"
BUNDLED_ENCODER_NAME = "bert_small_genre_mlm"


# ---------------------------------------------------------------------------
# Shared helpers.


def _backbone_kwargs(preset, vocabulary_size, sequence_length):
    """Backbone kwargs from a preset name or dict, checked against lengths."""
    from keras_transformer.applications.presets import get_preset

    kwargs = (
        get_preset("bert", preset) if isinstance(preset, str) else dict(preset)
    )
    kwargs["vocabulary_size"] = int(vocabulary_size)
    if kwargs.get("max_sequence_length", 512) < sequence_length:
        raise ValueError(
            "`sequence_length` must not exceed the preset's "
            f"max_sequence_length ({kwargs['max_sequence_length']}). "
            f"Received: sequence_length={sequence_length}"
        )
    return kwargs


def _check_positive(name, value, allow_none=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"`{name}` must be a number. Received: {name}={value}")
    if value <= 0:
        raise ValueError(f"`{name}` must be positive. Received: {name}={value}")


def _check_training_arguments(
    preset, vocabulary_size, sequence_length, batch_size, steps_per_epoch
):
    """Fails fast, before any data is read or a tokenizer trained."""
    from keras_transformer.applications.presets import get_preset

    if isinstance(preset, str):
        get_preset("bert", preset)  # Names the known presets.
    _check_positive("vocabulary_size", vocabulary_size)
    _check_positive("batch_size", batch_size)
    _check_positive("steps_per_epoch", steps_per_epoch, allow_none=True)
    if isinstance(sequence_length, bool) or not isinstance(
        sequence_length, int
    ):
        raise ValueError(
            "`sequence_length` must be an integer. "
            f"Received: sequence_length={sequence_length}"
        )
    if sequence_length < 3:
        raise ValueError(
            "`sequence_length` must be at least 3 ([CLS], a token, [SEP]). "
            f"Received: sequence_length={sequence_length}"
        )


def _tokenizer_for(output, texts, vocabulary_size, seed):
    """The output directory's tokenizer (when resuming) or a new one."""
    from keras_transformer.data.bert import USER_SYMBOLS
    from keras_transformer.tokenizers import (
        SubwordTokenizer,
        train_sentencepiece,
    )

    path = os.path.join(output, training.TOKENIZER_FILE)
    if os.path.exists(path):
        logger.info("Resuming with the tokenizer in %s", path)
        return SubwordTokenizer.load(path)
    logger.info("Training a %d-piece SentencePiece model", vocabulary_size)
    proto = train_sentencepiece(
        texts,
        vocabulary_size,
        user_defined_symbols=USER_SYMBOLS,
        seed=seed,
    )
    tokenizer = SubwordTokenizer(proto)
    tokenizer.save(path)
    return tokenizer


def _check_output_dir(output, task):
    """Refuses to train into a directory holding another task's model."""
    if os.path.exists(os.path.join(output, training.METADATA_FILE)):
        training.read_metadata(output, task)
    elif os.path.isfile(output):
        raise ValueError(
            f"`output` must be a directory. Received: output={output}"
        )
    os.makedirs(output, exist_ok=True)


def _fit(
    model,
    train_data,
    valid_data,
    output,
    *,
    epochs,
    steps_per_epoch,
    max_minutes,
    monitor,
    mode,
    verbose,
    extra=(),
):
    callbacks = training.standard_callbacks(
        output,
        max_minutes=max_minutes,
        monitor=monitor,
        mode=mode,
        extra=extra,
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
    minutes = (time.monotonic() - start) / 60.0
    steps = int(model.optimizer.iterations.numpy())
    return history, minutes, steps


# ---------------------------------------------------------------------------
# Masked-LM pretraining.


def pretrain_bert(
    output,
    *,
    texts=None,
    valid_texts=None,
    preset=DEFAULT_PRESET,
    vocabulary_size=DEFAULT_VOCABULARY_SIZE,
    sequence_length=DEFAULT_SEQUENCE_LENGTH,
    batch_size=64,
    epochs=10,
    steps_per_epoch=None,
    max_minutes=None,
    learning_rate=PRETRAIN_LEARNING_RATE,
    warmup_steps=PRETRAIN_WARMUP_STEPS,
    mask_rate=0.15,
    seed=0,
    verbose="auto",
):
    """Pretrains a BERT encoder with masked language modeling.

    Writes `output/model.keras` (the `bert_masked_lm` model with the best
    validation loss), `tokenizer.model` (with a `[MASK]` piece) and
    `metadata.json` (task `"bert-pretrain"`, the backbone arguments), ready
    for `train_classifier(..., pretrained=output)`.

    Args:
        output: the model directory; an unfinished one is resumed.
        texts: list of str (one example per item, e.g. a verse); defaults
            to the bundled English LM corpus (train split).
        valid_texts: list of str; defaults to the bundled LM valid split,
            or 5% of `texts` when `texts` is given.
        preset: a `BERT_PRESETS` name or a dict of `bert_backbone` kwargs
            (without `vocabulary_size`).
        vocabulary_size: SentencePiece vocabulary size.
        sequence_length: longest sequence, [CLS] and [SEP] included.
        batch_size: examples per step.
        epochs: number of epochs (of `steps_per_epoch` steps).
        steps_per_epoch: steps per epoch; defaults to one pass over `texts`.
        max_minutes: wall-clock budget; training stops cleanly when spent.
        learning_rate: peak learning rate.
        warmup_steps: warmup steps of the schedule.
        mask_rate: share of tokens to predict.
        seed: seed of the tokenizer sample, initialization, shuffle, masks.
        verbose: Keras `fit` verbosity.

    Returns:
        A dict: `output`, `steps`, `minutes`, `val_loss`,
        `val_masked_accuracy`.

    Example:
    >>> from keras_transformer.tasks.bert import pretrain_bert
    >>> pretrain_bert("models/bert", preset="tiny",
    ...               max_minutes=1)  # doctest: +SKIP
    """
    import keras

    from keras_transformer.data import load_bundled_lm_text
    from keras_transformer.data.bert import masked_lm_dataset

    _check_positive("max_minutes", max_minutes, allow_none=True)
    _check_positive("epochs", epochs)
    _check_positive("learning_rate", learning_rate)
    _check_positive("warmup_steps", warmup_steps)
    _check_training_arguments(
        preset, vocabulary_size, sequence_length, batch_size, steps_per_epoch
    )
    output = os.fspath(output)
    _check_output_dir(output, PRETRAIN_TASK)
    if texts is None:
        texts = load_bundled_lm_text("train")
        if valid_texts is None:
            valid_texts = load_bundled_lm_text("valid")
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise ValueError("No text to pretrain on. Received: texts=[]")
    if valid_texts is None:
        # Hold out every 20th line for validation.
        valid_texts = texts[::20]
        texts = [t for i, t in enumerate(texts) if i % 20] or valid_texts
    keras.utils.set_random_seed(seed)
    tokenizer = _tokenizer_for(output, texts, vocabulary_size, seed)
    backbone = _backbone_kwargs(
        preset, tokenizer.vocabulary_size, sequence_length
    )
    model = masked_lm_model(backbone, learning_rate, warmup_steps)
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
    if steps_per_epoch is None:
        steps_per_epoch = max(1, len(texts) // batch_size)
    logger.info(
        "Pretraining %s (%d parameters) on %d texts",
        preset if isinstance(preset, str) else "custom",
        model.count_params(),
        len(texts),
    )
    history, minutes, steps = _fit(
        model,
        train_data,
        valid_data,
        output,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        max_minutes=max_minutes,
        monitor="val_loss",
        mode="min",
        verbose=verbose,
    )
    logs = {k: float(v[-1]) for k, v in history.history.items() if v}
    summary = {
        "output": output,
        "steps": steps,
        "minutes": round(minutes, 2),
        "val_loss": logs.get("val_loss"),
        "val_masked_accuracy": logs.get("val_masked_accuracy"),
    }
    training.write_metadata(
        output,
        PRETRAIN_TASK,
        preset=preset if isinstance(preset, str) else None,
        backbone=backbone,
        sequence_length=sequence_length,
        mask_rate=mask_rate,
        train_texts=len(texts),
        **{k: v for k, v in summary.items() if k != "output"},
    )
    return summary


def masked_lm_model(backbone, learning_rate, warmup_steps):
    """`bert_masked_lm(backbone)` compiled for pretraining.

    `bert_adamw` peaking at `learning_rate`, the masked cross-entropy over
    the used prediction slots (label 0 marks an unused slot) and the masked
    accuracy. Backend-agnostic: `pretrain_bert` and the JAX pretraining
    example (`examples/pretrain_bert_jax.py`) both use it.

    Args:
        backbone: `bert_backbone` keyword arguments (or a backbone model).
        learning_rate: the peak learning rate.
        warmup_steps: warmup steps of the schedule.

    Returns:
        The compiled `keras.Model`.
    """
    from keras_transformer.applications.bert import bert_masked_lm
    from keras_transformer.losses import MaskedSparseCategoricalCrossentropy
    from keras_transformer.metrics import MaskedAccuracy

    model = bert_masked_lm(backbone)
    hidden_dim = model.get_layer("mlm_dense").units
    model.compile(
        optimizer=bert_adamw(hidden_dim, learning_rate, warmup_steps),
        loss=MaskedSparseCategoricalCrossentropy(ignore_index=0),
        weighted_metrics=[MaskedAccuracy(ignore_index=0)],
    )
    return model


def write_pretrained_directory(
    directory, model, tokenizer_file, overwrite=True, **metadata
):
    """Writes a `bert-pretrain` model directory, atomically.

    What `train_classifier(pretrained=directory)` reads: `model.keras` (a
    `bert_masked_lm` model), `tokenizer.model` and `metadata.json` (task
    `"bert-pretrain"`, with at least `backbone`). An existing directory is
    replaced only once the new one is complete.

    Args:
        directory: the directory to write.
        model: the masked-LM model.
        tokenizer_file: path of its SentencePiece model.
        overwrite: replace an existing directory; if False, an existing
            one (also one that another process completes meanwhile) is an
            `OSError` and is left as it is.
        **metadata: metadata fields (`backbone` required).

    Returns:
        The directory.
    """
    import shutil

    if "backbone" not in metadata:
        raise ValueError(
            "A pretrained directory needs the `backbone` arguments in its "
            f"metadata. Received fields: {sorted(metadata)}"
        )
    with training.atomic_directory(directory, overwrite=overwrite) as tmp:
        shutil.copyfile(
            tokenizer_file, os.path.join(tmp, training.TOKENIZER_FILE)
        )
        training.atomic_save_model(
            model, os.path.join(tmp, training.MODEL_FILE)
        )
        training.write_metadata(tmp, PRETRAIN_TASK, **metadata)
    return directory


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
    from (`model.keras`, `tokenizer.model`, `metadata.json`); later calls
    return the existing one.

    Args:
        directory: where to write it; defaults to
            `$KERAS_TRANSFORMER_CACHE/bert_small_genre_mlm` (the cache
            defaults to `~/.cache/keras_transformer`).

    Returns:
        The directory path.

    Example:
    >>> path = bundled_encoder_directory()  # doctest: +SKIP
    >>> train_classifier("runs/genre", pretrained=path)  # doctest: +SKIP
    """
    import importlib.resources

    from keras_transformer.applications.bert import bert_masked_lm

    if directory is None:
        directory = os.path.join(_cache_root(), BUNDLED_ENCODER_NAME)
    directory = os.fspath(directory)
    if os.path.exists(os.path.join(directory, training.METADATA_FILE)):
        return directory
    bundled = importlib.resources.files("keras_transformer.data") / "bundled"
    with (
        importlib.resources.as_file(
            bundled / f"{BUNDLED_ENCODER_NAME}.json"
        ) as path,
        open(path, encoding="utf-8") as f,
    ):
        info = json.load(f)
    model = bert_masked_lm(info["backbone"])
    with importlib.resources.as_file(
        bundled / f"{BUNDLED_ENCODER_NAME}.npz"
    ) as path:
        training.load_float16_weights(model, [path])
    with importlib.resources.as_file(
        bundled / f"{BUNDLED_ENCODER_NAME}.tokenizer.model"
    ) as path:
        try:
            write_pretrained_directory(
                directory, model, path, overwrite=False, **info
            )
        except OSError:
            # Another process (two fine-tunes started together) wrote it
            # first; its directory is complete, since writes are atomic.
            if not os.path.exists(
                os.path.join(directory, training.METADATA_FILE)
            ):
                raise
            return directory
    logger.info("Wrote the bundled pretrained encoder to %s", directory)
    return directory


# ---------------------------------------------------------------------------
# Classification: data, training, loading, evaluation.


def _load_labeled(path, split, skip_bad_lines):
    """(texts, labels, bundled class names or None) of a file or split."""
    from keras_transformer.data import load_bundled_genre, read_labeled_tsv

    if path is None:
        texts, labels, names = load_bundled_genre(split)
        return texts, labels, list(names)
    texts, labels, _ = read_labeled_tsv(path, skip_bad_lines=skip_bad_lines)
    if not texts:
        raise ValueError(f"{path} holds no labeled text. Received: file={path}")
    return texts, labels, None


def _label_ids(labels, class_names, source):
    index = {name: i for i, name in enumerate(class_names)}
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise ValueError(
            f"{source} has labels the model does not know (known: "
            f"{class_names}). Received: labels={unknown[:5]}"
        )
    return [index[label] for label in labels]


def train_classifier(
    output,
    *,
    train_file=None,
    valid_file=None,
    test_file=None,
    pretrained=None,
    architecture="bert",
    preset=DEFAULT_PRESET,
    vocabulary_size=DEFAULT_VOCABULARY_SIZE,
    sequence_length=DEFAULT_SEQUENCE_LENGTH,
    batch_size=32,
    epochs=20,
    steps_per_epoch=None,
    max_minutes=None,
    learning_rate=None,
    warmup_steps=None,
    dropout=0.1,
    encoder_dropout=None,
    pooling="first",
    token_mask_rate=0.0,
    ema_momentum=None,
    layer_decay=None,
    skip_bad_lines=False,
    max_train_examples=None,
    seed=0,
    verbose="auto",
):
    """Trains a BERT text classifier on `label<TAB>text` data.

    Without `train_file`, trains on the bundled 6-genre verse task (with its
    valid and test splits). Writes `output/model.keras` (best validation
    accuracy), `tokenizer.model` and `metadata.json` (task "classifier",
    `class_names`, test metrics when a test set is available).

    Args:
        output: the model directory; an unfinished one is resumed.
        train_file: UTF-8 TSV `label<TAB>text`, optional header line.
        valid_file: validation TSV; defaults to the bundled valid split, or
            every 20th line of `train_file` when `train_file` is given.
        test_file: test TSV; defaults to the bundled test split (only when
            training on the bundled task).
        pretrained: a directory written by `pretrain_bert`, or
            `BUNDLED_ENCODER` (`"bundled"`) for the pretrained `small`
            encoder shipped with the package; its tokenizer, backbone
            arguments and encoder weights are used (`preset`,
            `vocabulary_size` are then ignored).
        preset: a `BERT_PRESETS` name or dict of `bert_backbone` kwargs.
        vocabulary_size: SentencePiece vocabulary size (from scratch).
        sequence_length: longest sequence, [CLS] and [SEP] included.
        batch_size: examples per step.
        epochs: number of epochs (of `steps_per_epoch` steps).
        steps_per_epoch: defaults to one pass over the training set.
        max_minutes: wall-clock budget.
        learning_rate: peak rate; defaults to 1e-3 from scratch, 5e-4 when
            fine-tuning, 1e-2 for the n-gram model.
        warmup_steps: defaults to 200 from scratch, 100 when fine-tuning
            or for the n-gram model.
        dropout: dropout of the classification head.
        encoder_dropout: dropout inside the encoder; defaults to the
            preset's (or the pretrained encoder's) rate.
        pooling: `"first"` (BERT's [CLS] pooler) or `"mean"` (masked mean
            of the final hidden states); see `bert_classifier`.
        token_mask_rate: share of the training texts' pieces replaced by
            `[MASK]` in every batch (fresh each time; a regularizer, see
            `classification_dataset`); 0 keeps the texts as they are.
        ema_momentum: keep an exponential moving average of the weights
            with this momentum (e.g. 0.999); validation, the saved best
            model and the test figures then use the averaged weights.
            None (the default) uses the weights as trained.
        layer_decay: layer-wise learning-rate decay in (0, 1]: the head
            trains at the full rate, encoder block i of L at
            `layer_decay ** (L - i)` of it, the embeddings at
            `layer_decay ** (L + 1)` (see
            `applications.bert.layer_rate_multipliers`). Meant for
            fine-tuning a pretrained encoder; None (the default) or 1
            trains every layer at the full rate.
        skip_bad_lines: skip malformed TSV lines instead of raising.
        max_train_examples: use only the first N training examples.
        seed: seed of the tokenizer sample, initialization and shuffle.
        verbose: Keras `fit` verbosity.

    Returns:
        A dict: `output`, `steps`, `minutes`, `val_accuracy`, and
        `test_accuracy`, `test_macro_f1` when a test set exists.

    Example:
    >>> from keras_transformer.tasks.bert import train_classifier
    >>> train_classifier("models/genre", preset="tiny",
    ...                  max_minutes=1)  # doctest: +SKIP
    """
    import keras

    from keras_transformer.applications.bert import (
        bert_classifier,
        check_layer_decay,
        check_pooling,
        layer_rate_multipliers,
        load_backbone_weights,
        ngram_classifier,
    )
    from keras_transformer.data.bert import classification_dataset
    from keras_transformer.tokenizers import SubwordTokenizer

    check_pooling(pooling)  # Before any data is read.
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"`architecture` must be one of {ARCHITECTURES}. "
            f"Received: architecture={architecture!r}"
        )
    if architecture == "ngram" and (
        layer_decay is not None or encoder_dropout is not None
    ):
        raise ValueError(
            "`layer_decay` and `encoder_dropout` apply to the encoder; the "
            "n-gram model has none. Received: "
            f"layer_decay={layer_decay}, encoder_dropout={encoder_dropout}"
        )
    check_rate("token_mask_rate", token_mask_rate)
    if encoder_dropout is not None:
        check_rate("encoder_dropout", encoder_dropout)
    if ema_momentum is not None:
        check_rate("ema_momentum", ema_momentum)
    if layer_decay is not None:
        check_layer_decay(layer_decay)
    _check_positive("max_minutes", max_minutes, allow_none=True)
    _check_positive("epochs", epochs)
    _check_training_arguments(
        preset, vocabulary_size, sequence_length, batch_size, steps_per_epoch
    )
    output = os.fspath(output)
    pretrained_metadata = None
    if pretrained is not None:
        pretrained = os.fspath(pretrained)
        if pretrained == BUNDLED_ENCODER and not os.path.isdir(pretrained):
            pretrained = bundled_encoder_directory()
        pretrained_metadata = training.read_metadata(pretrained, PRETRAIN_TASK)
    _check_output_dir(output, CLASSIFIER_TASK)

    # Data.
    texts, labels, class_names = _load_labeled(
        train_file, "train", skip_bad_lines
    )
    if max_train_examples:
        texts, labels = texts[:max_train_examples], labels[:max_train_examples]
    if valid_file is not None:
        valid_texts, valid_labels, _ = _load_labeled(
            valid_file, "valid", skip_bad_lines
        )
    elif train_file is None:
        valid_texts, valid_labels, _ = _load_labeled(None, "valid", False)
    else:
        valid_texts, valid_labels = texts[::20], labels[::20]
        keep = [i for i in range(len(texts)) if i % 20]
        texts = [texts[i] for i in keep]
        labels = [labels[i] for i in keep]
    if test_file is not None or train_file is None:
        test_texts, test_labels, _ = _load_labeled(
            test_file, "test", skip_bad_lines
        )
    else:
        test_texts, test_labels = None, None
    if class_names is None:
        class_names = sorted(set(labels))
    if len(class_names) < 2:
        raise ValueError(
            "The training data must have at least 2 classes. "
            f"Received: classes={class_names}"
        )
    y = _label_ids(labels, class_names, train_file or "bundled train split")
    valid_y = _label_ids(
        valid_labels, class_names, valid_file or "the validation data"
    )

    # Tokenizer and model.
    keras.utils.set_random_seed(seed)
    backbone, preset_name = None, None
    if pretrained_metadata is not None:
        tokenizer = SubwordTokenizer.load(
            os.path.join(pretrained, training.TOKENIZER_FILE)
        )
        tokenizer.save(os.path.join(output, training.TOKENIZER_FILE))
        backbone = dict(pretrained_metadata["backbone"])
        preset_name = pretrained_metadata.get("preset")
        if backbone["max_sequence_length"] < sequence_length:
            sequence_length = backbone["max_sequence_length"]
    else:
        tokenizer = _tokenizer_for(output, texts, vocabulary_size, seed)
    ngram = None
    fine_tuning = False
    if architecture == "ngram":
        ngram = dict(NGRAM_OPTIONS, orders=list(NGRAM_OPTIONS["orders"]))
        model = ngram_classifier(
            tokenizer.vocabulary_size,
            len(class_names),
            dropout=dropout,
            **ngram,
        )
        backbone, preset_name, pooling = None, None, None
        defaults = (NGRAM_LEARNING_RATE, NGRAM_WARMUP_STEPS)
    else:
        if backbone is None:
            backbone = _backbone_kwargs(
                preset, tokenizer.vocabulary_size, sequence_length
            )
            preset_name = preset if isinstance(preset, str) else None
        if encoder_dropout is not None:
            backbone["dropout"] = encoder_dropout
        model = bert_classifier(
            backbone, len(class_names), dropout=dropout, pooling=pooling
        )
        if pretrained_metadata is not None:
            source = keras.saving.load_model(
                os.path.join(pretrained, training.MODEL_FILE), compile=False
            )
            copied = load_backbone_weights(model, source)
            logger.info("Loaded pretrained weights of %d layers", len(copied))
            del source
            fine_tuning = True
        defaults = (
            (FINETUNE_LEARNING_RATE, FINETUNE_WARMUP_STEPS)
            if fine_tuning
            else (SCRATCH_LEARNING_RATE, SCRATCH_WARMUP_STEPS)
        )
    if learning_rate is None:
        learning_rate = defaults[0]
    if warmup_steps is None:
        warmup_steps = defaults[1]
    if architecture == "ngram":
        # Adam without weight decay or clipping: both would touch the whole
        # (large, sparsely used) n-gram table at every step.
        optimizer = transformer_adam(
            ngram["embedding_dim"],
            warmup_steps,
            peak_learning_rate=learning_rate,
            use_ema=ema_momentum is not None,
            ema_momentum=ema_momentum or 0.99,
        )
    else:
        optimizer = bert_adamw(
            backbone["hidden_dim"],
            learning_rate,
            warmup_steps,
            ema_momentum,
            None
            if layer_decay is None
            else layer_rate_multipliers(model, layer_decay),
        )
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )

    # Training.
    train_data = classification_dataset(
        texts,
        tokenizer,
        y,
        sequence_length=sequence_length,
        batch_size=batch_size,
        shuffle=True,
        seed=seed,
        repeat=True,
        token_mask_rate=token_mask_rate,
    )
    valid_data = classification_dataset(
        valid_texts,
        tokenizer,
        valid_y,
        sequence_length=sequence_length,
        batch_size=64,
    )
    if steps_per_epoch is None:
        steps_per_epoch = max(1, len(texts) // batch_size)
    logger.info(
        "Training a %d-class classifier (%d parameters) on %d texts%s",
        len(class_names),
        model.count_params(),
        len(texts),
        f", from {pretrained}" if fine_tuning else "",
    )
    history, minutes, steps = _fit(
        model,
        train_data,
        valid_data,
        output,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        max_minutes=max_minutes,
        monitor="val_accuracy",
        mode="max",
        verbose=verbose,
        # Validate and save the averaged weights (swapped in at the end of
        # each epoch, swapped back before the next).
        extra=(
            [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)]
            if ema_momentum is not None
            else []
        ),
    )
    val_accuracy = history.history.get("val_accuracy") or [None]
    metadata = dict(
        architecture=architecture,
        preset=preset_name,
        backbone=backbone,
        ngram=ngram,
        class_names=list(class_names),
        sequence_length=sequence_length,
        pooling=pooling,
        token_mask_rate=token_mask_rate,
        ema_momentum=ema_momentum,
        layer_decay=layer_decay,
        pretrained=os.path.abspath(pretrained) if pretrained else None,
        train_file=os.path.abspath(train_file) if train_file else None,
        train_examples=len(texts),
        steps=steps,
        minutes=round(minutes, 2),
        learning_rate=learning_rate,
        warmup_steps=warmup_steps,
        best_val_accuracy=max(
            (v for v in val_accuracy if v is not None), default=None
        ),
    )
    # Write metadata first so the best checkpoint can be loaded, then add
    # the test figures of that checkpoint.
    training.write_metadata(output, CLASSIFIER_TASK, **metadata)
    summary = {
        "output": output,
        "steps": steps,
        "minutes": round(minutes, 2),
        "val_accuracy": metadata["best_val_accuracy"],
    }
    if test_texts is not None:
        classifier = load_classifier(output)
        report = classifier.evaluate(test_texts, test_labels)
        metadata["test_accuracy"] = report["accuracy"]
        metadata["test_macro_f1"] = report["macro_f1"]
        training.write_metadata(output, CLASSIFIER_TASK, **metadata)
        summary["test_accuracy"] = report["accuracy"]
        summary["test_macro_f1"] = report["macro_f1"]
    return summary


class TextClassifier:
    """A trained classifier with its tokenizer and class names.

    Made by `load_classifier`. Texts are encoded exactly as in training and
    in the exported SavedModel.

    Args:
        model: a `bert_classifier` model.
        tokenizer: its `SubwordTokenizer`.
        class_names: list of str, one per model output.
        sequence_length: the longest encoded sequence.
        batch_size: texts per model call.
    """

    def __init__(
        self, model, tokenizer, class_names, sequence_length, batch_size=64
    ):
        import tensorflow as tf

        from keras_transformer.data.bert import encode_batch

        self.model = model
        self.tokenizer = tokenizer
        self.class_names = list(class_names)
        self.sequence_length = int(sequence_length)
        self.batch_size = int(batch_size)

        def probabilities(text):
            features = encode_batch(tokenizer, text, self.sequence_length)
            logits = model(features, training=False)
            return tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)

        self._probabilities = tf.function(
            probabilities,
            input_signature=[tf.TensorSpec([None], tf.string)],
        )

    def predict_proba(self, texts):
        """Class probabilities.

        Args:
            texts: a list of str.

        Returns:
            A float32 numpy array [N, C], columns in `class_names` order.
        """
        import tensorflow as tf

        texts = _text_list(texts)
        if not texts:
            return np.zeros((0, len(self.class_names)), np.float32)
        chunks = []
        for start in range(0, len(texts), self.batch_size):
            batch = tf.constant(texts[start : start + self.batch_size])
            chunks.append(self._probabilities(batch).numpy())
        return np.concatenate(chunks, axis=0)

    def classify(self, texts):
        """The most probable label of each text.

        Args:
            texts: a str or a list of str.

        Returns:
            A list of `(label, probability)` tuples, one per text.

        Example:
        >>> classifier.classify(["Blessed are the meek"])  # doctest: +SKIP
        [('gospels_acts', 0.93)]
        """
        probabilities = self.predict_proba(texts)
        best = probabilities.argmax(axis=-1)
        return [
            (self.class_names[i], float(p[i]))
            for i, p in zip(best, probabilities)
        ]

    def evaluate(self, texts, labels):
        """Accuracy, macro-F1 and the confusion matrix on labeled texts.

        Args:
            texts: list of str.
            labels: list of str class names.

        Returns:
            A dict with `accuracy`, `macro_f1`, `per_class_f1`,
            `confusion_matrix` (rows: true class, columns: predicted),
            `class_names` and `examples`.
        """
        y = np.array(_label_ids(labels, self.class_names, "The test data"))
        predicted = self.predict_proba(texts).argmax(axis=-1)
        return classification_report(y, predicted, self.class_names)


def _text_list(texts):
    if isinstance(texts, str):
        return [texts]
    texts = list(texts)
    for text in texts:
        if not isinstance(text, str):
            raise ValueError(
                "`texts` must hold str items. Received: item of type "
                f"{type(text).__name__}"
            )
    return texts


def classification_report(y_true, y_pred, class_names):
    """Accuracy, macro-F1 and the confusion matrix of integer predictions.

    Args:
        y_true: int array [N] of true class ids.
        y_pred: int array [N] of predicted class ids.
        class_names: list of C str.

    Returns:
        A dict: `accuracy`, `macro_f1` (the unweighted mean of the per-class
        F1, 0 for a class never predicted nor present), `per_class_f1`,
        `confusion_matrix` (a C x C list of lists, rows true, columns
        predicted), `class_names`, `examples`.

    Example:
    >>> classification_report([0, 1, 1], [0, 1, 0], ["a", "b"])["accuracy"]
    0.6666666666666666
    """
    y_true = np.asarray(y_true, np.int64)
    y_pred = np.asarray(y_pred, np.int64)
    num_classes = len(class_names)
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    true_positive = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0)
    actual = matrix.sum(axis=1)
    denominator = predicted + actual
    f1 = np.divide(
        2 * true_positive,
        denominator,
        out=np.zeros(num_classes),
        where=denominator > 0,
    )
    examples = int(matrix.sum())
    return {
        "accuracy": float(true_positive.sum() / max(examples, 1)),
        "macro_f1": float(f1.mean()),
        "per_class_f1": {n: float(v) for n, v in zip(class_names, f1)},
        "confusion_matrix": matrix.tolist(),
        "class_names": list(class_names),
        "examples": examples,
    }


def load_classifier(model_dir, batch_size=64):
    """Loads a classifier directory written by `train_classifier`.

    Args:
        model_dir: the model directory.
        batch_size: texts per model call.

    Returns:
        A `TextClassifier`.

    Raises:
        ValueError: not a classifier directory (missing, unfinished or of
            another task).

    Example:
    >>> from keras_transformer.tasks.bert import load_classifier
    >>> classifier = load_classifier("models/genre")  # doctest: +SKIP
    >>> classifier.classify(["In the beginning"])  # doctest: +SKIP
    """
    import keras

    import keras_transformer.layers  # noqa: F401  (registers the layers)
    from keras_transformer.tokenizers import SubwordTokenizer

    metadata = training.read_metadata(model_dir, CLASSIFIER_TASK)
    for name in (training.MODEL_FILE, training.TOKENIZER_FILE):
        if not os.path.exists(os.path.join(model_dir, name)):
            raise training.ModelDirectoryError(
                f"{model_dir} has no {name}; was training interrupted?"
            )
    model = keras.saving.load_model(
        os.path.join(model_dir, training.MODEL_FILE), compile=False
    )
    tokenizer = SubwordTokenizer.load(
        os.path.join(model_dir, training.TOKENIZER_FILE)
    )
    return TextClassifier(
        model,
        tokenizer,
        metadata["class_names"],
        metadata["sequence_length"],
        batch_size=batch_size,
    )


def plot_confusion_matrix(matrix, class_names, title="Confusion matrix"):
    """Draws a confusion matrix and returns it as PNG bytes.

    Args:
        matrix: C x C counts, rows true class, columns predicted.
        class_names: list of C str.
        title: the figure title.

    Returns:
        The PNG file content, bytes.
    """
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    matrix = np.asarray(matrix)
    size = 1.0 + 0.9 * len(class_names)
    figure, axes = plt.subplots(figsize=(size + 1.5, size))
    try:
        image = axes.imshow(matrix, cmap="Blues")
        figure.colorbar(image, ax=axes)
        ticks = np.arange(len(class_names))
        axes.set_xticks(ticks, class_names, rotation=45, ha="right")
        axes.set_yticks(ticks, class_names)
        axes.set_xlabel("predicted")
        axes.set_ylabel("true")
        axes.set_title(title)
        threshold = matrix.max() / 2.0 if matrix.size else 0
        for (row, column), count in np.ndenumerate(matrix):
            axes.text(
                column,
                row,
                str(count),
                ha="center",
                va="center",
                color="white" if count > threshold else "black",
            )
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100)
    finally:
        plt.close(figure)
    return buffer.getvalue()


def evaluate_classifier(
    model_dir, test_file=None, output_dir=None, skip_bad_lines=False
):
    """Evaluates a classifier and writes its confusion matrix.

    The matrix goes to `output_dir/confusion_matrix.png` and, as an image
    summary, to the TensorBoard logs `model_dir/logs/evaluation`.

    Args:
        model_dir: a classifier directory.
        test_file: labeled TSV; defaults to the bundled test split (for a
            model trained on the bundled task).
        output_dir: where to write the PNG; defaults to `model_dir`.
        skip_bad_lines: skip malformed TSV lines.

    Returns:
        The dict of `classification_report`, plus `png` (its path) and
        `test_file`.

    Example:
    >>> from keras_transformer.tasks.bert import evaluate_classifier
    >>> evaluate_classifier("models/genre")["accuracy"]  # doctest: +SKIP
    """
    import tensorflow as tf

    metadata = training.read_metadata(model_dir, CLASSIFIER_TASK)
    if test_file is None and metadata.get("train_file"):
        raise ValueError(
            "This model was trained on a user file; pass the test data "
            "with `--test-file`. Received: test_file=None"
        )
    classifier = load_classifier(model_dir)
    texts, labels, _ = _load_labeled(test_file, "test", skip_bad_lines)
    report = classifier.evaluate(texts, labels)
    png = plot_confusion_matrix(
        report["confusion_matrix"],
        report["class_names"],
        title=f"accuracy {report['accuracy']:.3f}, "
        f"macro-F1 {report['macro_f1']:.3f}",
    )
    output_dir = os.fspath(output_dir or model_dir)
    path = os.path.join(output_dir, CONFUSION_MATRIX_FILE)
    training.atomic_write_bytes(path, png)
    writer = tf.summary.create_file_writer(
        os.path.join(model_dir, "logs", "evaluation")
    )
    with writer.as_default():
        image = tf.image.decode_png(png, channels=4)[None]  # [1, H, W, 4]
        step = int(metadata.get("steps") or 0)
        tf.summary.image("confusion_matrix", image, step=step)
        tf.summary.scalar("test_accuracy", report["accuracy"], step=step)
        tf.summary.scalar("test_macro_f1", report["macro_f1"], step=step)
    writer.close()
    report["png"] = path
    report["test_file"] = test_file
    return report


# ---------------------------------------------------------------------------
# Command line.


def _fit_verbosity():
    return 1 if sys.stdout.isatty() else 2


def _add_common_train_arguments(parser, batch_size):
    parser.add_argument("--output", required=True, help="model directory")
    parser.add_argument(
        "--preset",
        default=DEFAULT_PRESET,
        help="tiny, mini, small or base (default: %(default)s)",
    )
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument(
        "--max-minutes", type=float, default=None, help="wall-clock budget"
    )
    parser.add_argument("--steps-per-epoch", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument(
        "--sequence-length", type=int, default=DEFAULT_SEQUENCE_LENGTH
    )
    parser.add_argument(
        "--vocabulary-size", type=int, default=DEFAULT_VOCABULARY_SIZE
    )
    parser.add_argument(
        "--learning-rate", type=float, default=None, help="peak rate"
    )
    parser.add_argument("--warmup-steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)


def add_train_arguments(task, parser):
    """Adds the arguments of `train bert-pretrain` / `train classifier`."""
    if task == PRETRAIN_TASK:
        parser.add_argument(
            "--train-file",
            nargs="+",
            default=None,
            help="UTF-8 text files, one example per line (default: the "
            "bundled English corpus)",
        )
        parser.add_argument("--valid-file", nargs="+", default=None)
        parser.add_argument("--mask-rate", type=float, default=0.15)
        _add_common_train_arguments(parser, batch_size=64)
    else:
        parser.add_argument(
            "--train-file",
            default=None,
            help="label<TAB>text TSV (default: the bundled genre task)",
        )
        parser.add_argument("--valid-file", default=None)
        parser.add_argument("--test-file", default=None)
        parser.add_argument(
            "--pretrained",
            default=None,
            help="a bert-pretrain directory, or 'bundled' for the "
            "pretrained small encoder shipped with the package",
        )
        parser.add_argument(
            "--architecture",
            choices=ARCHITECTURES,
            default="bert",
            help="the BERT encoder, or a fastText-style bag of hashed "
            "n-grams of the same tokens (trains in a minute or two; with "
            "--pretrained, only its tokenizer is used) "
            "(default: %(default)s)",
        )
        parser.add_argument(
            "--pooling",
            choices=("first", "mean"),
            default="first",
            help="[CLS] pooler (BERT) or the mean over real tokens "
            "(default: %(default)s)",
        )
        parser.add_argument(
            "--encoder-dropout",
            type=float,
            default=None,
            help="dropout inside the encoder (default: the preset's or the "
            "pretrained encoder's)",
        )
        parser.add_argument(
            "--token-mask-rate",
            type=float,
            default=0.0,
            help="share of training pieces replaced by [MASK] in every "
            "batch, a regularizer (default: %(default)s)",
        )
        parser.add_argument(
            "--ema-momentum",
            type=float,
            default=None,
            help="validate and save a moving average of the weights with "
            "this momentum, e.g. 0.999 (default: off)",
        )
        parser.add_argument(
            "--layer-decay",
            type=float,
            default=None,
            help="layer-wise learning-rate decay when fine-tuning, e.g. "
            "0.8: block i of L trains at decay**(L-i) of the rate, the "
            "embeddings at decay**(L+1) (default: off)",
        )
        parser.add_argument(
            "--skip-bad-lines",
            action="store_true",
            help="skip malformed TSV lines instead of stopping",
        )
        _add_common_train_arguments(parser, batch_size=32)


def run_train(task, args):
    """Runs `train bert-pretrain` or `train classifier`; prints a summary."""
    from keras_transformer.data import read_text_files

    common = dict(
        preset=args.preset,
        vocabulary_size=args.vocabulary_size,
        sequence_length=args.sequence_length,
        batch_size=args.batch_size,
        steps_per_epoch=args.steps_per_epoch,
        max_minutes=args.max_minutes,
        seed=args.seed,
        verbose=_fit_verbosity(),
    )
    if args.epochs is not None:
        common["epochs"] = args.epochs
    elif args.max_minutes is not None:
        common["epochs"] = 1000  # The budget decides.
    if args.learning_rate is not None:
        common["learning_rate"] = args.learning_rate
    if args.warmup_steps is not None:
        common["warmup_steps"] = args.warmup_steps
    if task == PRETRAIN_TASK:
        texts = read_text_files(args.train_file) if args.train_file else None
        valid = read_text_files(args.valid_file) if args.valid_file else None
        summary = pretrain_bert(
            args.output,
            texts=texts,
            valid_texts=valid,
            mask_rate=args.mask_rate,
            **common,
        )
    else:
        summary = train_classifier(
            args.output,
            train_file=args.train_file,
            valid_file=args.valid_file,
            test_file=args.test_file,
            pretrained=args.pretrained,
            architecture=args.architecture,
            pooling=args.pooling,
            encoder_dropout=args.encoder_dropout,
            token_mask_rate=args.token_mask_rate,
            ema_momentum=args.ema_momentum,
            layer_decay=args.layer_decay,
            skip_bad_lines=args.skip_bad_lines,
            **common,
        )
    print(json.dumps(summary, indent=2))
    return 0


def add_evaluate_arguments(task, parser):
    """Adds the arguments of `evaluate classifier`."""
    parser.add_argument("--model", required=True, help="model directory")
    parser.add_argument(
        "--test-file",
        default=None,
        help="label<TAB>text TSV (default: the bundled genre test split)",
    )
    parser.add_argument(
        "--output-dir",
        default=None,
        help="where to write confusion_matrix.png (default: the model dir)",
    )
    parser.add_argument("--skip-bad-lines", action="store_true")
    parser.add_argument(
        "--json", action="store_true", help="print the report as JSON"
    )


def run_evaluate(task, args):
    """Runs `evaluate classifier`; prints the metrics and the matrix."""
    report = evaluate_classifier(
        args.model,
        test_file=args.test_file,
        output_dir=args.output_dir,
        skip_bad_lines=args.skip_bad_lines,
    )
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    names = report["class_names"]
    print(f"examples  {report['examples']}")
    print(f"accuracy  {report['accuracy']:.4f}")
    print(f"macro-F1  {report['macro_f1']:.4f}")
    width = max(len(n) for n in names)
    print("confusion matrix (rows: true, columns: predicted)")
    print(" " * width + "".join(f" {i:>6d}" for i in range(len(names))))
    for name, row in zip(names, report["confusion_matrix"]):
        print(f"{name:>{width}}" + "".join(f" {c:>6d}" for c in row))
    print(f"wrote {report['png']}")
    return 0


def _add_classify_arguments(parser):
    parser.add_argument("--model", required=True, help="classifier dir")
    parser.add_argument(
        "texts", nargs="*", help="texts to classify (default: stdin lines)"
    )


AVERAGE_MODES = ("weights", "probabilities")


def average_classifiers(model_dirs, output, overwrite=False, mode="weights"):
    """Combines classifiers into one model directory.

    Two ways (`mode`):
    - `"weights"`: the mean of their weights, a "model soup" (Wortsman et
      al., 2022). Needs classifiers fine-tuned from the same pretrained
      encoder with the same architecture; the result is one model of the
      same size. Check it on validation data: soups of models whose heads
      started from different random weights can be worse than each member
      (on the genre task they were; see the README).
    - `"probabilities"`: an ensemble (`applications.bert.bert_ensemble`)
      whose output is the mean of the members' class probabilities; the
      members may differ in size or training but must share the tokenizer,
      the class list and the sequence length. Classifying costs the sum of
      the members. On the genre task two fine-tunes averaged this way gain
      about half a point of test accuracy over one.

    Either way the result is an ordinary classifier directory: `classify`,
    `evaluate classifier` and `export` work on it unchanged.

    Args:
        model_dirs: two or more classifier directories.
        output: the new classifier directory (written atomically).
        overwrite: replace an existing `output`.
        mode: `"weights"` or `"probabilities"`.

    Returns:
        The output directory.

    Example:
    >>> average_classifiers(["runs/seed0", "runs/seed1"], "runs/pair",
    ...                     mode="probabilities")  # doctest: +SKIP
    """
    import keras
    import numpy as np

    import keras_transformer.layers  # noqa: F401  (registers the layers)
    from keras_transformer.applications.bert import bert_ensemble

    if mode not in AVERAGE_MODES:
        raise ValueError(
            f"`mode` must be one of {AVERAGE_MODES}. Received: mode={mode!r}"
        )
    model_dirs = [os.fspath(d) for d in model_dirs]
    if len(model_dirs) < 2:
        raise ValueError(
            "Averaging needs at least two classifier directories. "
            f"Received: {model_dirs}"
        )
    metadata = [training.read_metadata(d, CLASSIFIER_TASK) for d in model_dirs]
    tokenizers = []
    for d in model_dirs:
        with open(os.path.join(d, training.TOKENIZER_FILE), "rb") as f:
            tokenizers.append(f.read())

    def architecture(meta):
        if meta.get("ensemble_of"):
            return meta["ensemble_of"]  # never equal to a single model's
        backbone = {
            k: v for k, v in (meta["backbone"] or {}).items() if k != "dropout"
        }
        return (backbone, meta.get("ngram"), meta["class_names"],
                meta.get("pooling", "first"),
                meta["sequence_length"])  # fmt: skip

    def interface(meta):
        return meta["class_names"], meta["sequence_length"]

    same, what, why = {
        "weights": (
            architecture,
            "architecture, class list, pooling or sequence length",
            "only classifiers fine-tuned from the same encoder can be "
            "averaged (mode 'probabilities' takes different architectures).",
        ),
        "probabilities": (
            interface,
            "class list or sequence length",
            "ensemble members must classify the same classes from the same "
            "inputs.",
        ),
    }[mode]
    for d, meta, tokenizer in zip(model_dirs[1:], metadata[1:], tokenizers[1:]):
        if same(meta) != same(metadata[0]):
            raise ValueError(
                f"{d} has another {what} than {model_dirs[0]}; {why}"
            )
        if tokenizer != tokenizers[0]:
            raise ValueError(
                f"{d} has another tokenizer than {model_dirs[0]}; only "
                "classifiers fine-tuned from the same encoder can be averaged."
            )
    models = [
        keras.saving.load_model(
            os.path.join(d, training.MODEL_FILE), compile=False
        )
        for d in model_dirs
    ]
    merged = dict(metadata[0])
    merged.pop("task")
    for key in ("test_accuracy", "test_macro_f1", "best_val_accuracy"):
        merged.pop(key, None)
    merged["averaged_from"] = [os.path.abspath(d) for d in model_dirs]
    if mode == "weights":
        average = [
            np.mean(values, axis=0)
            for values in zip(*(m.get_weights() for m in models))
        ]
        model = models[0]
        model.set_weights(average)
    else:
        model = bert_ensemble(models)
        member_keys = ("architecture", "preset", "backbone", "ngram", "pooling")
        merged["ensemble_of"] = [
            {key: meta.get(key) for key in member_keys} for meta in metadata
        ]
        # The members' architectures are listed there, not at the top.
        merged.update(dict.fromkeys(member_keys), architecture="ensemble")
    with training.atomic_directory(output, overwrite=overwrite) as tmp:
        with open(os.path.join(tmp, training.TOKENIZER_FILE), "wb") as f:
            f.write(tokenizers[0])
        training.atomic_save_model(
            model, os.path.join(tmp, training.MODEL_FILE)
        )
        training.write_metadata(tmp, CLASSIFIER_TASK, **merged)
    return output


def _add_average_arguments(parser):
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        help="a classifier directory (give two or more)",
    )
    parser.add_argument("--output", required=True, help="new model directory")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument(
        "--mode",
        choices=AVERAGE_MODES,
        default="weights",
        help="average the weights (one model, same encoder and "
        "architecture needed) or the class probabilities (an ensemble) "
        "(default: %(default)s)",
    )


def _run_average(args):
    print(
        average_classifiers(args.model, args.output, args.overwrite, args.mode)
    )
    return 0


def _run_classify(args):
    classifier = load_classifier(args.model)
    texts = args.texts
    if not texts:
        texts = [line for line in stdin_lines() if line.strip()]
    for label, probability in classifier.classify(texts):
        print(f"{label}\t{probability:.4f}")
    return 0


COMMANDS = {
    "classify": (_add_classify_arguments, _run_classify),
    "average-classifiers": (_add_average_arguments, _run_average),
}


def run_export(task, args):
    """Runs `export` for a classifier directory; prints the export path."""
    from keras_transformer.export.classifier import export_classifier

    path = export_classifier(args.model, args.output, overwrite=args.overwrite)
    print(path)
    return 0
