"""`train_classifier(architecture="auto")`: n-gram model, encoder, choice.

The fast n-gram model trains first (`NGRAM_SHARE` of `max_minutes`), then
the BERT encoder in the time left, if at least `MIN_ENCODER_MINUTES` are
(without `max_minutes`, both train for the given epochs). Each is an
ordinary classifier directory in `output/candidates/` (resumed when the
run is repeated) and they share one tokenizer. On the validation split
the candidate with the higher macro-F1 wins; their probability average
(`tasks.ensemble.average_classifiers(mode="probabilities")`) replaces it
when it is higher still. A tie goes to the cheaper model (n-gram, then
encoder, then the average), and a costlier candidate must gain at
least `MIN_GAIN`. The winner's files become `output`'s; its
metadata records the choice (`inference["auto"]`), every candidate's
validation macro-F1 (`metrics["auto_valid_macro_f1_*"]`) and the run's
own settings. Private to `keras_transformer.tasks`.

Why this order: on small or imbalanced data the n-gram model is strong
and cheap (a language-identification file: 0.992 accuracy where a
5-minute encoder from scratch got 0.909), while on topical tasks with
enough data the encoder or the average wins; the validation split
decides, so "auto" is never worse there than the better single model.
"""

import logging
import os
import shutil
import time

from keras_transformer import model_dir as model_dir_lib

logger = logging.getLogger("keras_transformer.tasks.classifier")

TASK = "classifier"
CANDIDATES_DIR = "candidates"
CANDIDATES = ("ngram", "bert", "average")
# Share of `max_minutes` the n-gram model may use.
NGRAM_SHARE = 0.25
# The encoder trains only when at least this much of the budget is left.
MIN_ENCODER_MINUTES = 1.0
# Kept back from the encoder's budget for choosing and writing.
RESERVE_SHARE = 0.05
# A costlier candidate (encoder, then the average of both) must beat the
# cheaper one by this much validation macro-F1 to be chosen: smaller gaps
# are mostly validation noise (package descriptions: the average won by
# 0.002 on validation and lost 0.012 on test).
MIN_GAIN = 0.005
# Settings only the encoder takes; the n-gram model uses its defaults.
_ENCODER_ONLY = ("learning_rate", "warmup_steps", "layer_decay",
                 "encoder_dropout")  # fmt: skip
_COPIED = (model_dir_lib.MODEL_FILE, model_dir_lib.TOKENIZER_FILE)


def _encoder_minutes(max_minutes, elapsed_minutes):
    """The encoder's budget: None (no budget), 0 (too little left) or
    minutes.

    Example:
    >>> from keras_transformer.tasks._classifier_auto import (
    ...     _encoder_minutes)
    >>> _encoder_minutes(10.0, 2.0), _encoder_minutes(None, 2.0)
    (7.5, None)
    >>> _encoder_minutes(1.0, 0.25)
    0
    """
    if max_minutes is None:
        return None
    left = max_minutes * (1 - RESERVE_SHARE) - elapsed_minutes
    return round(left, 4) if left >= MIN_ENCODER_MINUTES else 0


def train_auto(output, settings, runner):
    """Trains the candidates and writes the best into `output`.

    Args:
        output: str, the model directory.
        settings: dict, `train_classifier`'s checked arguments
            (`architecture="auto"`).
        runner: the `keras_transformer.tasks.classifier` module (passed in,
            not imported, so the two modules do not import each other):
            its `train_one`, `_setting_of` (and `_task_data.labeled_splits`).

    Returns:
        The metadata written to `output`.
    """
    from keras_transformer.tasks import _common

    classifier = runner
    start = time.monotonic()
    recorded = dict(
        settings,
        train_file=_common.abspath(settings["train_file"]),
        valid_file=_common.abspath(settings["valid_file"]),
        test_file=_common.abspath(settings["test_file"]),
        pretrained=settings["pretrained"]
        and classifier._setting_of(settings["pretrained"]),
    )
    _common.start_run(output, TASK, recorded, settings["force"])
    root = os.path.join(output, CANDIDATES_DIR)
    os.makedirs(root, exist_ok=True)
    dirs = {name: os.path.join(root, name) for name in CANDIDATES}

    # 1. The n-gram model.
    max_minutes = settings["max_minutes"]
    ngram_settings = dict(
        settings,
        architecture="ngram",
        max_minutes=max_minutes and max_minutes * NGRAM_SHARE,
    )
    ngram_settings.update({k: None for k in _ENCODER_ONLY})
    logger.info("Auto architecture: training the n-gram model first")
    trained = {"ngram": classifier.train_one(dirs["ngram"], ngram_settings)}

    # 2. The encoder, in the time left.
    encoder_minutes = _encoder_minutes(
        max_minutes, (time.monotonic() - start) / 60
    )
    if encoder_minutes == 0:
        logger.warning(
            "Auto architecture: under %g minutes of the %g-minute budget "
            "left after the n-gram model; the encoder is not trained.",
            MIN_ENCODER_MINUTES,
            max_minutes,
        )
    else:
        logger.info(
            "Auto architecture: training the encoder%s",
            f" for up to {encoder_minutes:g} minutes"
            if encoder_minutes
            else "",
        )
        trained["bert"] = classifier.train_one(
            dirs["bert"],
            dict(settings, architecture="bert", max_minutes=encoder_minutes),
            tokenizer_file=os.path.join(
                dirs["ngram"], model_dir_lib.TOKENIZER_FILE
            ),
        )

    # 3. The choice on validation.
    scores, chosen, splits = _choose(dirs, trained, settings, classifier)
    logger.info(
        "Auto architecture: validation macro-F1 %s; keeping %s",
        ", ".join(f"{k} {v:.4f}" for k, v in scores.items()),
        chosen,
    )
    return _write_choice(
        output, dirs[chosen], chosen, scores, recorded, start, splits
    )


def _choose(dirs, trained, settings, classifier):
    """`({candidate: validation macro-F1}, the chosen candidate, splits)`.

    An average is written to `dirs["average"]` when chosen.
    """
    import numpy as np

    from keras_transformer.inference.classifier import (
        TextClassifier,
        classification_report,
    )
    from keras_transformer.tasks import _task_data

    splits, class_names, _ = _task_data.labeled_splits(
        settings["train_file"],
        settings["valid_file"],
        settings["test_file"],
        settings["skip_bad_lines"],
        settings["max_train_examples"],
    )
    texts, y = splits["valid"]
    probabilities = {}
    for name in trained:
        model = TextClassifier.from_dir(dirs[name])
        probabilities[name] = model.predict_proba(texts)

    def macro_f1(p):
        return classification_report(y, p.argmax(-1), class_names)["macro_f1"]

    scores = {name: macro_f1(p) for name, p in probabilities.items()}
    if len(probabilities) == 2:
        scores["average"] = macro_f1(np.mean(list(probabilities.values()), 0))
    # From the cheapest up; a costlier one must gain MIN_GAIN.
    chosen = "ngram"
    for name in ("bert", "average"):
        if name in scores and scores[name] >= scores[chosen] + MIN_GAIN:
            chosen = name
    if chosen == "average":
        from keras_transformer.tasks.ensemble import average_classifiers

        average_classifiers(
            [dirs["ngram"], dirs["bert"]],
            dirs["average"],
            overwrite=True,
            mode="probabilities",
        )
    return scores, chosen, splits


def _write_choice(output, source, chosen, scores, settings, start, splits):
    """Copies the chosen candidate into `output`, with the auto metadata."""
    from keras_transformer.tasks import _class_balance

    for name in _COPIED:
        tmp = os.path.join(output, name + ".tmp")
        shutil.copyfile(os.path.join(source, name), tmp)
        os.replace(tmp, os.path.join(output, name))
    metadata = model_dir_lib.read_metadata(source, TASK)
    inference = dict(metadata["inference"])
    inference["auto"] = {
        "chosen": chosen,
        "candidates": os.path.join(output, CANDIDATES_DIR),
        "valid_macro_f1": {k: round(v, 6) for k, v in scores.items()},
    }
    metrics = dict(metadata["metrics"])
    if chosen == "average":  # An ensemble directory has no figures yet.
        metrics.update(
            _class_balance.split_figures(
                source,
                model_dir_lib.load_tokenizer(source),
                inference["class_names"],
                inference["sequence_length"],
                splits,
                logger,
            )
        )
    metrics["auto_chosen"] = chosen
    metrics.update(
        {f"auto_valid_macro_f1_{k}": round(v, 6) for k, v in scores.items()}
    )
    metadata.update(
        settings=settings,
        inference=inference,
        metrics=metrics,
        train_seconds=round(time.monotonic() - start, 3),
    )
    model_dir_lib.write_metadata(output, metadata)  # and the model card
    return model_dir_lib.read_metadata(output, TASK)
