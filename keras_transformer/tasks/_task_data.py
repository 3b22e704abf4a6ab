"""The runners' data: translation sentence pairs (TSV files or the bundled
corpus, the held-out validation split, the datasets) and the classifier's
labeled splits."""

import logging

from keras_transformer.data.loaders import (
    load_bundled_translation,
    read_pairs_tsv,
)
from keras_transformer.data.translation import make_translation_dataset
from keras_transformer.tasks import _common

logger = logging.getLogger("keras_transformer.tasks.translation")
BUNDLED_GENRE = "bundled:genre:"


def load_pairs(path=None, split="train", skip_bad_lines=False):
    """Loads sentence pairs from a TSV file, or the bundled corpus.

    Args:
        path: str or None (default). A UTF-8 `source<TAB>target` file; None
            for the bundled English-Spanish verses.
        split: str, default "train". The bundled split used when `path` is
            None ("train", "valid" or "test").
        skip_bad_lines: bool, default False. Skip malformed lines (their
            count is logged) instead of raising `DataFormatError`.

    Returns:
        `(sources, targets, num_skipped)`.

    Example:
    >>> from keras_transformer.tasks.translation import load_pairs
    >>> sources, targets, skipped = load_pairs(split="valid")
    >>> len(sources) == len(targets), skipped
    (True, 0)
    """
    if path is None:
        sources, targets = load_bundled_translation(split)
        return sources, targets, 0
    return read_pairs_tsv(path, skip_bad_lines=skip_bad_lines)


def load_data(train_file, valid_file, test_file, skip_bad_lines, max_pairs):
    """Training and validation pairs, and the `data` entry of the metadata."""
    sources, targets, skipped = load_pairs(train_file, "train", skip_bad_lines)
    if max_pairs:
        sources, targets = sources[:max_pairs], targets[:max_pairs]
    if valid_file is not None:
        *valid, more = load_pairs(valid_file, "valid", skip_bad_lines)
        skipped += more
    elif train_file is None:
        valid = load_pairs(None, "valid")[:2]
    else:
        (sources, targets), valid = _common.hold_out((sources, targets))
    if len(sources) < 2 or not valid[0]:
        raise ValueError(
            "Too few sentence pairs to train on. Received: "
            f"{len(sources)} training and {len(valid[0])} validation pairs"
        )
    bundled = train_file is None
    data = {
        "train": _common.abspath(train_file) or "bundled:train",
        "valid": _common.abspath(valid_file)
        or ("bundled:valid" if bundled else "held-out:train"),
        "test": _common.abspath(test_file)
        or ("bundled:test" if bundled else None),
        "train_examples": len(sources),
        "valid_examples": len(valid[0]),
        "skipped_lines": skipped,
    }
    logger.info(
        "%d training pairs, %d validation pairs, %d malformed line(s) skipped.",
        len(sources),
        len(valid[0]),
        skipped,
    )
    return (sources, targets), valid, data


def make_datasets(train, valid, tokenizer, batch_size, max_length, seed):
    """`(training, validation)` datasets; the training one repeats."""
    train_data = make_translation_dataset(
        *train,
        tokenizer,
        batch_size=batch_size,
        max_length=max_length,
        seed=seed,
        repeat=True,
    )
    valid_data = make_translation_dataset(
        *valid,
        tokenizer,
        batch_size=batch_size,
        max_length=max_length,
        shuffle=False,
    )
    return train_data, _common.known_cardinality(valid_data)


def read_labeled(path, split, skip_bad_lines):
    """`(texts, labels, bundled class names or None, skipped lines)`."""
    from keras_transformer.data import load_bundled_genre, read_labeled_tsv

    if path is None:
        texts, labels, names = load_bundled_genre(split)
        return texts, labels, list(names), 0
    texts, labels, skipped = read_labeled_tsv(
        path, skip_bad_lines=skip_bad_lines
    )
    if not texts:
        raise ValueError(f"{path} holds no labeled text. Received: file={path}")
    return texts, labels, None, skipped


def labeled_splits(
    train_file, valid_file, test_file, skip_bad_lines, max_train_examples
):
    """`({split: (texts, ids or labels) or None}, class names, data entry)`.

    Train and valid hold class ids; test holds label names (for
    `TextClassifier.evaluate`).
    """
    from keras_transformer.inference.classifier import label_ids

    texts, labels, class_names, skipped = read_labeled(
        train_file, "train", skip_bad_lines
    )
    if max_train_examples:
        texts, labels = texts[:max_train_examples], labels[:max_train_examples]
    data = {"train": _common.abspath(train_file) or BUNDLED_GENRE + "train"}
    if valid_file is not None or train_file is None:
        valid_texts, valid_labels, _, valid_skipped = read_labeled(
            valid_file, "valid", skip_bad_lines
        )
        skipped += valid_skipped
        data["valid"] = _common.abspath(valid_file) or BUNDLED_GENRE + "valid"
    else:
        (texts, labels), (valid_texts, valid_labels) = _common.hold_out(
            (texts, labels)
        )
        data["valid"] = "held out from train"
    test = None
    if test_file is not None or train_file is None:
        test_texts, test_labels, _, test_skipped = read_labeled(
            test_file, "test", skip_bad_lines
        )
        skipped += test_skipped
        test = (test_texts, test_labels)
    data["test"] = test and (
        _common.abspath(test_file) or BUNDLED_GENRE + "test"
    )
    if class_names is None:
        class_names = sorted(set(labels))
    if len(class_names) < 2:
        raise ValueError(
            "The training data must have at least 2 classes. "
            f"Received: classes={class_names}"
        )
    splits = {
        "train": (texts, label_ids(labels, class_names, data["train"])),
        "valid": (
            valid_texts,
            label_ids(valid_labels, class_names, "the validation data"),
        ),
        "test": test,
    }
    data.update(
        train_examples=len(texts),
        valid_examples=len(valid_texts),
        test_examples=len(test[0]) if test else 0,
        skipped_lines=skipped,
    )
    return splits, class_names, data
