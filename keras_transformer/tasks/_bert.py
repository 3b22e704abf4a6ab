"""BERT pieces the classifier, pretraining and ensemble runners share.

Argument checks, the backbone configuration of a preset, the classifier's
model, optimizer and default learning rates, `fit` (`_common.run_fit` with
the epoch length and a throughput estimate of a BERT run) and
`write_directory` (a complete model directory, written atomically).
Private to `keras_transformer.tasks`.
"""

import logging
import os

from keras_transformer import model_dir as model_dir_lib
from keras_transformer.tasks import _common

logger = logging.getLogger(__name__)

# "auto": the n-gram model, then the encoder; the better on validation
# (or their probability average), see `tasks._classifier_auto`.
ARCHITECTURES = ("auto", "bert", "ngram")
# (peak learning rate, warmup steps) by architecture and starting point.
SCRATCH_RATES = (1e-3, 200)
FINETUNE_RATES = (5e-4, 100)
NGRAM_RATES = (1e-2, 100)
# `architecture="ngram"`: a bag of hashed n-grams (`ngram_classifier`).
NGRAM_OPTIONS = dict(orders=[1, 2], buckets=2**18, embedding_dim=64)


def check_number(name, value, allow_none=False):
    """Raises `ValueError` unless `value` is a positive number.

    Args:
        name: str, the argument's name, used in the message.
        value: the value to check.
        allow_none: bool, default False. Accept None.

    Example:
    >>> from keras_transformer.tasks._bert import check_number
    >>> check_number("epochs", 0)
    Traceback (most recent call last):
    ...
    ValueError: `epochs` must be positive. Received: epochs=0
    """
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"`{name}` must be a number. Received: {name}={value}")
    if value <= 0:
        raise ValueError(f"`{name}` must be positive. Received: {name}={value}")


def check_encoder_arguments(
    *,
    preset,
    vocabulary_size,
    sequence_length,
    batch_size,
    epochs,
    steps_per_epoch,
    max_minutes,
    **unused,
):
    """Checks the arguments every BERT runner takes, before any data is read.

    Args:
        preset: str (a `BERT_PRESETS` name) or dict of `bert_backbone`
            kwargs.
        vocabulary_size: int, pieces of a new tokenizer.
        sequence_length: int, at least 3 ([CLS], a token, [SEP]).
        batch_size: int, examples per step.
        epochs: int, the most epochs.
        steps_per_epoch: int or None.
        max_minutes: float or None, the wall-clock budget.
        **unused: the runner's other settings, ignored.

    Raises:
        ValueError: naming the first bad argument.
    """
    from keras_transformer.applications.presets import get_preset

    if isinstance(preset, str):
        get_preset("bert", preset)  # Names the known presets.
    check_number("vocabulary_size", vocabulary_size)
    check_number("batch_size", batch_size)
    check_number("epochs", epochs)
    check_number("steps_per_epoch", steps_per_epoch, allow_none=True)
    check_number("max_minutes", max_minutes, allow_none=True)
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


def backbone_config(preset, vocabulary_size, sequence_length):
    """The `bert_backbone` kwargs of a preset, checked against the length.

    Args:
        preset: str (a `BERT_PRESETS` name) or dict of `bert_backbone`
            kwargs (without `vocabulary_size`).
        vocabulary_size: int, the tokenizer's size.
        sequence_length: int, the longest sequence of the run.

    Returns:
        A dict of `bert_backbone` keyword arguments.

    Example:
    >>> from keras_transformer.tasks._bert import backbone_config
    >>> backbone_config("tiny", 200, 32)["vocabulary_size"]
    200
    """
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


def _tokens_per_batch(tokenizer, texts, sequence_length, batch_size):
    """Tokens in a training batch, estimated from up to 256 texts.

    Args:
        tokenizer: a `SubwordTokenizer`.
        texts: list of str, the training texts.
        sequence_length: int, the truncation length ([CLS], [SEP] included).
        batch_size: int, examples per batch.

    Returns:
        float, for `_common.run_fit(tokens_per_batch=...)`.
    """
    import numpy as np

    if not texts:
        return 0.0
    lengths = tokenizer.tokenize(list(texts[:256])).row_lengths().numpy()
    return float(np.minimum(lengths + 2, sequence_length).mean() * batch_size)


def check_classifier_arguments(
    *,
    architecture,
    pooling,
    dropout,
    token_mask_rate,
    encoder_dropout,
    ema_momentum,
    layer_decay,
    **unused,
):
    """The classifier's own checks, before any data is read."""
    from keras_transformer.applications.bert import (
        check_layer_decay,
        check_pooling,
    )
    from keras_transformer.layers._utils import check_rate

    check_pooling(pooling)
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"`architecture` must be one of {ARCHITECTURES}. "
            f"Received: architecture={architecture!r}"
        )
    if architecture == "ngram" and (
        layer_decay is not None or encoder_dropout is not None
    ):  # ("auto" passes them to its encoder only.)
        raise ValueError(
            "`layer_decay` and `encoder_dropout` apply to the encoder; the "
            "n-gram model has none. Received: "
            f"layer_decay={layer_decay}, encoder_dropout={encoder_dropout}"
        )
    check_rate("dropout", dropout)
    check_rate("token_mask_rate", token_mask_rate)
    if encoder_dropout is not None:
        check_rate("encoder_dropout", encoder_dropout)
    if ema_momentum is not None:
        check_rate("ema_momentum", ema_momentum)
    if layer_decay is not None:
        check_layer_decay(layer_decay)


def default_rates(architecture, encoder, learning_rate, warmup_steps):
    """The peak rate and warmup, defaults filled in (module constants)."""
    if architecture == "ngram":
        defaults = NGRAM_RATES
    else:
        defaults = FINETUNE_RATES if encoder is not None else SCRATCH_RATES
    if learning_rate is None:
        learning_rate = defaults[0]
    if warmup_steps is None:
        warmup_steps = defaults[1]
    check_number("learning_rate", learning_rate)
    check_number("warmup_steps", warmup_steps)
    return learning_rate, warmup_steps


def build_classifier(
    vocabulary_size, num_classes, encoder_dir, settings, loss=None
):
    """The compiled classifier of a run and its `config`.

    Args:
        vocabulary_size: int, the tokenizer's size.
        num_classes: int, the number of classes.
        encoder_dir: str or None, a `bert-pretrain` directory whose
            backbone and weights the encoder starts from.
        settings: dict, `train_classifier`'s settings (architecture,
            preset, dropouts, pooling, rates, EMA, layer decay).
        loss: a `keras.losses.Loss` or None (default: sparse
            cross-entropy of logits).

    Returns:
        `(model, config)`: the compiled `keras.Model` and the keyword
        arguments of the application function that built it.
    """
    from keras_transformer.applications.bert import (
        bert_classifier,
        load_backbone_weights,
        ngram_classifier,
    )

    if settings["architecture"] == "ngram":
        config = dict(
            NGRAM_OPTIONS,
            vocabulary_size=vocabulary_size,
            num_classes=num_classes,
            dropout=settings["dropout"],
        )
        model = ngram_classifier(**config)
        _compile_classifier(model, config["embedding_dim"], settings, loss)
        return model, config
    if encoder_dir is not None:
        encoder = model_dir_lib.read_metadata(encoder_dir)
        backbone = dict(encoder["config"])
    else:
        backbone = backbone_config(
            settings["preset"], vocabulary_size, settings["sequence_length"]
        )
    if settings["encoder_dropout"] is not None:
        backbone["dropout"] = settings["encoder_dropout"]
    config = {
        "backbone": backbone,
        "num_classes": num_classes,
        "dropout": settings["dropout"],
        "pooling": settings["pooling"],
    }
    model = bert_classifier(
        backbone,
        num_classes,
        dropout=config["dropout"],
        pooling=config["pooling"],
    )
    if encoder_dir is not None:
        copied = load_backbone_weights(
            model, model_dir_lib.load_model(encoder_dir)
        )
        logger.info("Loaded pretrained weights of %d layers", len(copied))
    _compile_classifier(model, backbone["hidden_dim"], settings, loss)
    return model, config


def _compile_classifier(model, hidden_dim, settings, loss=None):
    """Compiles with the architecture's optimizer, the loss, accuracy and
    macro-F1."""
    import keras

    from keras_transformer.applications.bert import layer_rate_multipliers
    from keras_transformer.metrics import SparseMacroF1
    from keras_transformer.optimizers import bert_adamw, transformer_adam

    ema = settings["ema_momentum"]
    if settings["architecture"] == "ngram":
        # Adam without weight decay or clipping: both would touch the
        # whole, sparsely used n-gram table at every step.
        optimizer = transformer_adam(
            hidden_dim,
            settings["warmup_steps"],
            peak_learning_rate=settings["learning_rate"],
            use_ema=ema is not None,
            ema_momentum=ema or 0.99,
        )
    else:
        decay = settings["layer_decay"]
        optimizer = bert_adamw(
            hidden_dim,
            settings["learning_rate"],
            settings["warmup_steps"],
            ema,
            None if decay is None else layer_rate_multipliers(model, decay),
        )
    model.compile(
        optimizer=optimizer,
        loss=loss
        or keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            SparseMacroF1(model.output.shape[-1]),
        ],
    )


def fit(model, data, output, settings, tokenizer, **options):
    """`_common.run_fit` with a BERT run's epoch length and throughput.

    Args:
        model: the compiled `keras.Model`.
        data: `(train texts, train dataset, valid dataset)`; the train
            dataset repeats.
        output: str, the model directory.
        settings: dict, the runner's settings (`epochs`, `batch_size`,
            `steps_per_epoch`, `max_minutes`, `sequence_length`,
            `verbose`).
        tokenizer: the `SubwordTokenizer`.
        **options: more `run_fit` arguments (`monitor`, `mode`, `extra`).

    Returns:
        The `_common.FitResult`.
    """
    texts, train_data, valid_data = data
    batch_size = settings["batch_size"]
    return _common.run_fit(
        model,
        train_data,
        valid_data,
        output,
        epochs=settings["epochs"],
        steps_per_epoch=_common.steps_per_epoch_for(
            len(texts), batch_size, settings["steps_per_epoch"]
        ),
        max_minutes=settings["max_minutes"],
        tokens_per_batch=_tokens_per_batch(
            tokenizer, texts, settings["sequence_length"], batch_size
        ),
        verbose=settings["verbose"],
        **options,
    )


def write_directory(directory, model, tokenizer_file, metadata, overwrite):
    """Writes a complete model directory atomically, from its parts.

    Args:
        directory: str, the directory to write.
        model: the `keras.Model` to save as `model.keras`.
        tokenizer_file: str, the SentencePiece model to copy.
        metadata: dict from `model_dir.make_metadata`.
        overwrite: bool. Replace an existing directory (else a
            `FileExistsError`, also when another process completes it
            meanwhile).

    Returns:
        The directory, str.
    """
    import shutil

    directory = os.fspath(directory)
    with model_dir_lib.atomic_directory(directory, overwrite=overwrite) as tmp:
        shutil.copyfile(
            tokenizer_file, os.path.join(tmp, model_dir_lib.TOKENIZER_FILE)
        )
        model_dir_lib.atomic_save_model(
            model, os.path.join(tmp, model_dir_lib.MODEL_FILE)
        )
        # The card names the final path, not the temporary one.
        model_dir_lib.write_metadata(tmp, metadata, final_dir=directory)
    return directory
