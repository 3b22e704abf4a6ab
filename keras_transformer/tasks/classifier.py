"""Text classification: train a classifier directory, evaluate it.

`train_classifier` fine-tunes the BERT encoder (from scratch, from a
`bert-pretrain` directory, or from the encoder shipped with the package,
`pretrained="bundled"`), trains a bag of hashed n-grams of the same
tokens (`architecture="ngram"`), or by default (`architecture="auto"`)
both, keeping the better on validation or their probability average
(`keras_transformer.tasks._classifier_auto`), on `label<TAB>text` data.
Imbalanced classes are balanced in the loss (`class_balance`, see
`keras_transformer.tasks._class_balance`). Without a
training file it uses the bundled 6-genre verse task. It writes a
classifier directory (task "classifier", see `keras_transformer.model_dir`)
that `keras_transformer.load` opens as a `TextClassifier`; running it again
on the same directory resumes from the last finished epoch.

`evaluate_classifier` reports accuracy, macro-F1, per-class precision,
recall, F1 and support, and the confusion matrix (also drawn as a PNG and
logged to TensorBoard). Both warn about a class the model never predicts.

Learning rate: see `keras_transformer.tasks.pretrain`. Fine-tuning from a
pretrained encoder uses a lower peak rate and a shorter warmup.
"""

import functools
import logging
import os
import shutil
import sys

from keras_transformer import model_dir as model_dir_lib
from keras_transformer.applications.bert import POOLING_MODES
from keras_transformer.tasks import (
    _bert,
    _class_balance,
    _classifier_auto,
    _common,
    _init_from,
    _task_data,
    pretrain,
)
from keras_transformer.tasks._bert import ARCHITECTURES
from keras_transformer.tasks._class_balance import CLASS_BALANCE_MODES

logger = logging.getLogger(__name__)

TASK = "classifier"
__all__ = [
    "ARCHITECTURES",
    "CLASS_BALANCE_MODES",
    "POOLING_MODES",
    "evaluate_classifier",
    "train_classifier",
]
CONFUSION_MATRIX_FILE = "confusion_matrix.png"
BUNDLED = _task_data.BUNDLED_GENRE


def train_classifier(
    output, *, train_file=None, valid_file=None, test_file=None,
    pretrained=None, architecture="auto", preset=pretrain.DEFAULT_PRESET,
    vocabulary_size=None,
    sequence_length=pretrain.DEFAULT_SEQUENCE_LENGTH, batch_size=32,
    epochs=20, steps_per_epoch=None, max_minutes=None, learning_rate=None,
    warmup_steps=None, dropout=0.1, encoder_dropout=None, pooling="first",
    token_mask_rate=0.0, ema_momentum=None, layer_decay=None,
    class_balance="auto", skip_bad_lines=False, max_train_examples=None,
    seed=0, force=False, verbose="auto", init_from=None, lora_rank=None,
    lora_alpha=None, lora_save="merged",
):  # fmt: skip
    """Trains a text classifier on `label<TAB>text` data.

    Without `train_file`, trains on the bundled 6-genre verse task (with its
    valid and test splits). Writes `output/model.keras` (best validation
    macro-F1), `tokenizer.model` and the metadata (`inference`: class
    names, sequence length, architecture; in `metrics` the kept model's
    validation figures `valid_accuracy`, `valid_macro_f1`,
    `valid_per_class` (precision, recall, F1, support) and
    `valid_never_predicted`, and the same `test_*` figures when a test set
    is available). A class the kept model never predicts on validation is
    named in a logged warning.

    Args:
        output: str, the model directory; an unfinished one is resumed.
        train_file: str or None (default: the bundled task). UTF-8 TSV
            `label<TAB>text`, optional header line.
        valid_file: str or None (default): the bundled valid split, or 5%
            of `train_file` when `train_file` is given.
        test_file: str or None (default): the bundled test split when
            training on the bundled task, else no test.
        pretrained: str or None (default). A directory written by
            `pretrain_bert`, or `"bundled"` (`pretrain.BUNDLED_ENCODER`)
            for the `small` encoder shipped with the package; its
            tokenizer, backbone and encoder weights are used (`preset` and
            `vocabulary_size` are then ignored; the n-gram model uses only
            its tokenizer).
        architecture: str, default "auto". One of `ARCHITECTURES`: the
            BERT encoder, the n-gram model, or "auto": the n-gram model
            first (a quarter of `max_minutes`), then the encoder in the
            time left (skipped when under a minute is left), each in
            `output/candidates/`; the one with the better validation
            macro-F1, or their probability average if that is better
            still (a costlier choice must gain 0.005), becomes `output`.
            `learning_rate`, `warmup_steps`, `layer_decay` and
            `encoder_dropout` then apply to the encoder only. The choice
            and every candidate's validation macro-F1 go into the metadata
            (`inference["auto"]`, `metrics`).
        preset: str or dict, default "small". A `BERT_PRESETS` name or a
            dict of `bert_backbone` kwargs.
        vocabulary_size: int or None (default: 8000, lowered to what the
            training texts can give). Pieces of a new tokenizer.
        sequence_length: int, default 128. Longest sequence, [CLS] and
            [SEP] included.
        batch_size: int, default 32. Examples per step.
        epochs: int, default 20. The most epochs.
        steps_per_epoch: int or None (default: one pass over the data).
        max_minutes: float or None (default). Wall-clock budget.
        learning_rate: float or None (default: 1e-3 from scratch, 5e-4
            when fine-tuning, 1e-2 for the n-gram model). The peak rate.
        warmup_steps: int or None (default: 200 from scratch, 100 when
            fine-tuning or for the n-gram model).
        dropout: float, default 0.1. Dropout of the classification head.
        encoder_dropout: float or None (default: the preset's or the
            pretrained encoder's). Dropout inside the encoder.
        pooling: str, default "first". One of `POOLING_MODES`: BERT's
            [CLS] pooler or the masked mean of the final hidden states.
        token_mask_rate: float, default 0.0. Share of the training pieces
            replaced by `[MASK]` in every batch (a regularizer).
        ema_momentum: float or None (default). Validate, save and test an
            exponential moving average of the weights with this momentum
            (e.g. 0.999).
        layer_decay: float or None (default). Layer-wise learning-rate
            decay in (0, 1] when fine-tuning: encoder block i of L trains
            at `layer_decay ** (L - i)` of the rate, the embeddings at
            `layer_decay ** (L + 1)`.
        class_balance: str, default "auto". One of `CLASS_BALANCE_MODES`:
            "none" (plain cross-entropy), "weighted" (inverse class
            frequency weights, mean 1 per example), "logit_adjust" (the
            log class prior added to the logits in the training loss only,
            Menon et al. 2021), or "auto": "logit_adjust" when the largest
            training class has at least 3 times the examples of the
            smallest, else "none". The mode used is `metrics
            ["class_balance"]`.
        skip_bad_lines: bool, default False. Skip malformed TSV lines.
        max_train_examples: int or None (default). Use only the first N
            training examples.
        seed: int, default 0. Seeds the tokenizer sample, the initial
            weights and the shuffle.
        force: bool, default False. Accept settings other than those an
            earlier run of `output` recorded.
        verbose: "auto" (default: bars on a terminal, else a line per
            epoch), 0, 1 or 2.
        init_from: str or None (default). A classifier directory ("bert"
            or "ngram") to fine-tune: its tokenizer, architecture and
            weights are kept (`architecture`, `preset`, `vocabulary_size`,
            `pooling`, `dropout` are then its own); when the training
            labels are not exactly its classes, in its order, the `logits`
            layer starts afresh. The metadata's `parent` names it.
        lora_rank, lora_alpha, lora_save: LoRA fine-tuning of `init_from`
            (see `keras_transformer.tasks._init_from`); a new `logits`
            layer trains whole.

    Returns:
        The metadata written to `output`: a dict with the keys of
        `keras_transformer.model_dir.METADATA_KEYS`.

    Example:
    >>> from keras_transformer.tasks.classifier import train_classifier
    >>> metadata = train_classifier("models/genre", preset="tiny",
    ...                             max_minutes=1)  # doctest: +SKIP
    >>> metadata["metrics"]["test_accuracy"]  # doctest: +SKIP
    """
    # Every argument but `output` defines the run: recorded in the
    # metadata and compared when the run is resumed.
    settings = dict(locals())
    output = os.fspath(settings.pop("output"))
    _bert.check_classifier_arguments(**settings)
    _bert.check_encoder_arguments(
        **dict(
            settings,
            vocabulary_size=vocabulary_size or pretrain.DEFAULT_VOCABULARY_SIZE,
        )
    )
    _class_balance.check_class_balance(class_balance)
    _pretrained_encoder(pretrained)  # A wrong directory fails here.
    _init_from.check_arguments(init_from, lora_rank, lora_alpha, lora_save)
    parent_dir, parent = _init_from.resolve(init_from, TASK)
    if parent is not None:
        settings["architecture"] = _init_from.classifier_architecture(
            parent_dir, parent, architecture, pretrained
        )
        return train_one(output, settings)
    if architecture == "auto":
        return _classifier_auto.train_auto(
            output, settings, sys.modules[__name__]
        )
    return train_one(output, settings)


def train_one(output, settings, tokenizer_file=None):
    """Trains one architecture ("bert" or "ngram"): `train_classifier`'s
    work after the argument checks.

    Args:
        output: str, the model directory.
        settings: dict, `train_classifier`'s checked arguments.
        tokenizer_file: str or None (default). A SentencePiece model to use
            instead of a new one (an "auto" run's candidates share it).

    Returns:
        The metadata written to `output`.
    """
    import keras

    from keras_transformer.data.bert import (
        USER_SYMBOLS,
        classification_dataset,
    )

    # Resolve the defaults.
    settings = dict(settings)
    architecture, seed = settings["architecture"], settings["seed"]
    sequence_length = settings["sequence_length"]
    encoder_dir, encoder = _pretrained_encoder(settings["pretrained"])
    parent_dir, parent = _init_from.resolve(settings.get("init_from"), TASK)
    learning_rate, warmup_steps = _bert.default_rates(
        architecture,
        encoder or parent,
        settings["learning_rate"],
        settings["warmup_steps"],
    )
    settings.update(
        train_file=_common.abspath(settings["train_file"]),
        valid_file=_common.abspath(settings["valid_file"]),
        test_file=_common.abspath(settings["test_file"]),
        pretrained=encoder and _setting_of(settings["pretrained"]),
        learning_rate=learning_rate,
        warmup_steps=warmup_steps,
        init_from=parent_dir,
    )
    _common.start_run(output, TASK, settings, settings["force"])

    # Data.
    splits, class_names, data = _task_data.labeled_splits(
        settings["train_file"],
        settings["valid_file"],
        settings["test_file"],
        settings["skip_bad_lines"],
        settings["max_train_examples"],
    )
    (texts, y), (valid_texts, valid_y) = splits["train"], splits["valid"]
    counts = _class_balance.class_counts(y, len(class_names))
    balance = _class_balance.resolve(settings["class_balance"], counts)
    data["train_class_counts"] = dict(zip(class_names, counts))

    # Tokenizer and model.
    keras.utils.set_random_seed(seed)
    if encoder is not None:
        tokenizer_file = os.path.join(encoder_dir, model_dir_lib.TOKENIZER_FILE)
        sequence_length = min(
            sequence_length, encoder["config"]["max_sequence_length"]
        )
    if parent is not None:
        tokenizer_file = os.path.join(parent_dir, model_dir_lib.TOKENIZER_FILE)
        sequence_length = min(
            sequence_length, parent["inference"]["sequence_length"]
        )
    if tokenizer_file is not None:
        shutil.copyfile(
            tokenizer_file, os.path.join(output, model_dir_lib.TOKENIZER_FILE)
        )
    tokenizer = _common.tokenizer_or_resume(
        output,
        texts,
        settings["vocabulary_size"],
        seed,
        default_size=pretrain.DEFAULT_VOCABULARY_SIZE,
        user_defined_symbols=USER_SYMBOLS,
    )
    lora = None
    if parent is None:
        model, config = _bert.build_classifier(
            tokenizer.vocabulary_size,
            len(class_names),
            encoder_dir,
            settings,
            loss=_class_balance.make_loss(balance, counts),
        )
    else:
        model, config, lora = _init_from.classifier_from_parent(
            parent_dir,
            parent,
            class_names,
            settings,
            _class_balance.make_loss(balance, counts),
        )
    encode = functools.partial(
        classification_dataset,
        tokenizer=tokenizer,
        sequence_length=sequence_length,
        seed=seed,
    )
    train_data = encode(
        texts,
        labels=y,
        batch_size=settings["batch_size"],
        shuffle=True,
        repeat=True,
        token_mask_rate=settings["token_mask_rate"],
    )
    valid_data = encode(valid_texts, labels=valid_y, batch_size=64)
    logger.info(
        "Training a %d-class %s classifier (%d parameters) on %d texts%s; "
        "class balance: %s",
        len(class_names),
        architecture,
        model.count_params(),
        len(texts),
        f", from {encoder_dir or parent_dir}"
        if encoder is not None or parent is not None
        else "",
        balance,
    )

    # Training: with EMA, validate and save the averaged weights (swapped in
    # at the end of each epoch, swapped back before the next).
    ema = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)]
    result = _bert.fit(
        model,
        (texts, train_data, valid_data),
        output,
        dict(settings, sequence_length=sequence_length),
        tokenizer,
        monitor="val_macro_f1",
        mode="max",
        extra=ema if settings["ema_momentum"] is not None else [],
        **_init_from.run_fit_options(lora, output),
    )

    # The kept model's validation and test figures; the metadata.
    metrics = result.metrics("val_macro_f1")
    metrics["class_balance"] = balance
    metrics.update(
        _class_balance.split_figures(
            output, tokenizer, class_names, sequence_length, splits, logger
        )
    )
    inference = {
        "class_names": list(class_names),
        "sequence_length": sequence_length,
        "architecture": architecture,
    }
    if lora is not None:
        inference["lora"] = _init_from.inference_entry(lora, parent_dir)
    metadata = _common.finish(
        output,
        TASK,
        config=config,
        settings=settings,
        inference=inference,
        tokenizer=tokenizer,
        data=data,
        fit_result=result,
        metrics=metrics,
        parent=parent_dir or encoder_dir,
        application=(
            "bert.ngram_classifier" if architecture == "ngram" else None
        ),
    )
    _init_from.finish(output, lora)
    return metadata


def _setting_of(pretrained):
    """`pretrained` as recorded in the settings: "bundled" or a path."""
    pretrained = os.fspath(pretrained)
    if pretrained == pretrain.BUNDLED_ENCODER and not os.path.isdir(pretrained):
        return pretrain.BUNDLED_ENCODER
    return os.path.abspath(pretrained)


def _pretrained_encoder(pretrained):
    """`(absolute directory, metadata)` of the encoder, or `(None, None)`."""
    if pretrained is None:
        return None, None
    directory = _setting_of(pretrained)
    if directory == pretrain.BUNDLED_ENCODER:
        directory = os.path.abspath(pretrain.bundled_encoder_directory())
    return directory, model_dir_lib.read_metadata(directory, pretrain.TASK)


def evaluate_classifier(
    model_dir, test_file=None, output_dir=None, skip_bad_lines=False
):
    """Evaluates a classifier directory and draws its confusion matrix.

    The matrix goes to `output_dir/confusion_matrix.png` and, as an image
    summary with the test figures, to the TensorBoard logs
    `model_dir/logs/evaluation`.

    Args:
        model_dir: str, a classifier directory (ensembles included).
        test_file: str or None (default: the bundled test split, for a
            model trained on the bundled task). Labeled TSV.
        output_dir: str or None (default: `model_dir`). Where to write the
            PNG.
        skip_bad_lines: bool, default False. Skip malformed TSV lines.

    Returns:
        The dict of `keras_transformer.inference.classifier.
        classification_report` (accuracy, macro-F1, `per_class` precision,
        recall, F1 and support, `never_predicted`, the confusion matrix),
        plus `png` (its path) and `test_file`.

    Example:
    >>> from keras_transformer.tasks.classifier import evaluate_classifier
    >>> evaluate_classifier("models/genre")["accuracy"]  # doctest: +SKIP
    """
    import tensorflow as tf

    from keras_transformer.inference.classifier import TextClassifier
    from keras_transformer.training import plot_confusion_matrix

    metadata = model_dir_lib.read_metadata(model_dir, TASK)
    if test_file is None and not str(metadata["data"].get("train")).startswith(
        BUNDLED
    ):
        raise ValueError(
            "This model was not trained on the bundled task; pass its test "
            "data with `test_file` (`--test-file`). Received: test_file=None"
        )
    classifier = TextClassifier.from_dir(model_dir)
    texts, labels, _, _ = _task_data.read_labeled(
        test_file, "test", skip_bad_lines
    )
    report = classifier.evaluate(texts, labels)
    _class_balance.warn_never_predicted(report, "test", logger, model_dir)
    png = plot_confusion_matrix(
        report["confusion_matrix"],
        report["class_names"],
        title=f"accuracy {report['accuracy']:.3f}, "
        f"macro-F1 {report['macro_f1']:.3f}",
    )
    path = os.path.join(
        os.fspath(output_dir or model_dir), CONFUSION_MATRIX_FILE
    )
    model_dir_lib.atomic_write_bytes(path, png)
    writer = tf.summary.create_file_writer(
        os.path.join(model_dir, model_dir_lib.LOGS_DIR, "evaluation")
    )
    with writer.as_default():
        image = tf.image.decode_png(png, channels=4)[None]  # [1, H, W, 4]
        step = int(metadata.get("steps") or 0)
        tf.summary.image("confusion_matrix", image, step=step)
        tf.summary.scalar("test_accuracy", report["accuracy"], step=step)
        tf.summary.scalar("test_macro_f1", report["macro_f1"], step=step)
    writer.close()
    return dict(report, png=path, test_file=test_file)
