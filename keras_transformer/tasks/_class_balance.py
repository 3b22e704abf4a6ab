"""Class balancing of the classifier's training loss (`class_balance=`).

Modes (`CLASS_BALANCE_MODES`):
- "none": plain cross-entropy.
- "weighted": a class-balanced loss; each class's examples weigh
  `N / (C * n_c)` (inverse frequency, mean weight per training example 1).
- "logit_adjust": logit adjustment (Menon et al., 2021): `log prior`
  added to the logits in the training loss, not at inference.
- "auto" (the default): "logit_adjust" when the largest class has at
  least `AUTO_IMBALANCE_RATIO` times the examples of the smallest, else
  "none".

Why logit adjustment for "auto": it is consistent for the balanced error
(the quantity macro-F1 tracks) and leaves the gradient scale alone,
while inverse-frequency weights make a rare class's few examples weigh
tens of times more (large, noisy steps at the n-gram model's high rate,
and with separable data weights barely move the decision boundary of an
over-parametrised model). On balanced data it changes nothing. Private to
`keras_transformer.tasks`.
"""

import math

CLASS_BALANCE_MODES = ("auto", "none", "weighted", "logit_adjust")
# "auto" balances when max count / min count reaches this.
AUTO_IMBALANCE_RATIO = 3.0
# tau of the logit adjustment (1 in the paper's main results).
LOGIT_ADJUST_TAU = 1.0


def check_class_balance(class_balance):
    """Raises `ValueError` unless `class_balance` is a known mode."""
    if class_balance not in CLASS_BALANCE_MODES:
        raise ValueError(
            f"`class_balance` must be one of {CLASS_BALANCE_MODES}. "
            f"Received: class_balance={class_balance!r}"
        )


def class_counts(labels, num_classes):
    """Training examples per class id, a list of `num_classes` ints."""
    counts = [0] * num_classes
    for label in labels:
        counts[int(label)] += 1
    return counts


def resolve(class_balance, counts):
    """The mode a run uses: "auto" decided by the imbalance ratio.

    Args:
        class_balance: str, one of `CLASS_BALANCE_MODES`.
        counts: list of int, training examples per class.

    Returns:
        str, "none", "weighted" or "logit_adjust".

    Example:
    >>> from keras_transformer.tasks._class_balance import resolve
    >>> resolve("auto", [100, 96, 5]), resolve("auto", [10, 9])
    ('logit_adjust', 'none')
    """
    check_class_balance(class_balance)
    if class_balance != "auto":
        return class_balance
    present = [c for c in counts if c > 0] or [1]
    ratio = max(present) / min(present)
    return "logit_adjust" if ratio >= AUTO_IMBALANCE_RATIO else "none"


def loss_options(mode, counts):
    """`BalancedSparseCategoricalCrossentropy` kwargs of a resolved mode.

    A class absent from the training data gets weight 1 and the prior of
    half an example (no infinite logarithm).

    Args:
        mode: str, "none", "weighted" or "logit_adjust".
        counts: list of int, training examples per class.

    Returns:
        dict with `class_weights` and `logit_adjustment` (None or lists).

    Example:
    >>> from keras_transformer.tasks._class_balance import loss_options
    >>> loss_options("weighted", [3, 1])["class_weights"]
    [0.6666666666666666, 2.0]
    """
    total, num_classes = sum(counts), len(counts)
    options = {"class_weights": None, "logit_adjustment": None}
    if mode == "weighted":
        options["class_weights"] = [
            total / (num_classes * c) if c else 1.0 for c in counts
        ]
    elif mode == "logit_adjust":
        smoothed = [c if c else 0.5 for c in counts]
        norm = sum(smoothed)
        options["logit_adjustment"] = [
            LOGIT_ADJUST_TAU * math.log(c / norm) for c in smoothed
        ]
    return options


def make_loss(mode, counts):
    """The classifier's training loss for a resolved mode."""
    from keras_transformer.losses import BalancedSparseCategoricalCrossentropy

    return BalancedSparseCategoricalCrossentropy(**loss_options(mode, counts))


def report_metrics(report, prefix):
    """The metadata figures of a `classification_report` on a split.

    Args:
        report: dict from `TextClassifier.evaluate`.
        prefix: str, the split ("valid", "test").

    Returns:
        dict: `{prefix}_accuracy`, `_macro_f1`, `_per_class` (precision,
        recall, F1 and support of each class) and `_never_predicted`.
    """
    return {
        f"{prefix}_accuracy": round(report["accuracy"], 6),
        f"{prefix}_macro_f1": round(report["macro_f1"], 6),
        f"{prefix}_per_class": {
            name: {k: round(v, 6) for k, v in figures.items()}
            for name, figures in report["per_class"].items()
        },
        f"{prefix}_never_predicted": list(report["never_predicted"]),
    }


def warn_never_predicted(report, split, logger, model_dir):
    """Logs a warning naming the classes a model never predicts on `split`.

    Returns:
        The list of those class names (empty when there are none).
    """
    missing = list(report["never_predicted"])
    if missing:
        logger.warning(
            "The model in %s never predicts %s on the %s split (%d "
            "examples): %s. Try class_balance 'weighted' or "
            "'logit_adjust', more training, or the n-gram architecture.",
            model_dir,
            "class" if len(missing) == 1 else "classes",
            split,
            report["examples"],
            ", ".join(missing),
        )
    return missing


def split_figures(
    output, tokenizer, class_names, sequence_length, splits, logger
):
    """The validation (and test) figures of the model kept in `output`.

    Warns (with `logger`) about classes it never predicts on validation.

    Args:
        output: str, the model directory.
        tokenizer: its `SubwordTokenizer`.
        class_names: list of str.
        sequence_length: int.
        splits: dict of `_task_data.labeled_splits`: "valid" holds class
            ids, "test" (or None) label names.
        logger: a `logging.Logger`.

    Returns:
        dict of `report_metrics` for "valid" (and "test").
    """
    from keras_transformer import model_dir as model_dir_lib
    from keras_transformer.inference.classifier import TextClassifier

    classifier = TextClassifier(
        model_dir_lib.load_model(output),
        tokenizer,
        class_names,
        sequence_length,
    )
    valid_texts, valid_y = splits["valid"]
    report = classifier.evaluate(valid_texts, [class_names[i] for i in valid_y])
    warn_never_predicted(report, "validation", logger, output)
    figures = report_metrics(report, "valid")
    if splits["test"] is not None:
        report = classifier.evaluate(*splits["test"])
        figures.update(report_metrics(report, "test"))
    return figures
