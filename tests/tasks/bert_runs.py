"""Tiny BERT runs shared by the classifier, pretraining and ensemble tests.

Each run trains once per test session (a module-level cache), so the three
test files share one pretrained encoder and the classifiers fine-tuned from
it instead of training them again.
"""

import dataclasses

from keras_transformer.data import load_bundled_genre

TINY = dict(preset="tiny", vocabulary_size=200, sequence_length=32,
            batch_size=16, steps_per_epoch=3, epochs=1, verbose=0)  # fmt: skip
_CACHE = {}


def sample_verses(split, count):
    """`count` bundled verses spread over every book (so every genre)."""
    texts, labels, _ = load_bundled_genre(split)
    step = len(texts) // count
    return texts[::step][:count], labels[::step][:count]


def write_tsv(path, texts, labels, header=True):
    lines = ["label\ttext"] if header else []
    lines += [f"{label}\t{text}" for label, text in zip(labels, texts)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def tokenizer():
    """A 200-piece tokenizer with the `[MASK]` piece, of 300 verses."""
    if "tokenizer" not in _CACHE:
        from keras_transformer.data.bert import USER_SYMBOLS
        from keras_transformer.tokenizers import (
            SubwordTokenizer,
            train_sentencepiece,
        )

        texts, _ = sample_verses("train", 300)
        proto = train_sentencepiece(
            texts, 200, user_defined_symbols=USER_SYMBOLS
        )
        _CACHE["tokenizer"] = SubwordTokenizer(proto)
    return _CACHE["tokenizer"]


@dataclasses.dataclass
class FineTuned:
    """A tiny pretrained encoder and a classifier fine-tuned from it."""

    root: object  # pathlib.Path of the session directory
    corpus: str  # the pretraining text file
    pretrained: object  # the bert-pretrain directory (Path)
    model_dir: object  # the classifier directory (Path)
    files: dict  # {"train", "valid", "test": TSV path}
    test: tuple  # (texts, labels) of the test TSV


def fine_tuned(tmp_path_factory):
    """The shared `FineTuned` runs (trained on first use)."""
    if "fine_tuned" not in _CACHE:
        _CACHE["fine_tuned"] = _fine_tune(tmp_path_factory.mktemp("bert"))
    return _CACHE["fine_tuned"]


def _fine_tune(root):
    from keras_transformer.tasks.classifier import train_classifier
    from keras_transformer.tasks.pretrain import pretrain_bert

    texts, labels = sample_verses("train", 300)
    valid = sample_verses("valid", 60)
    test = sample_verses("test", 60)
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(texts) + "\n", encoding="utf-8")
    files = {
        "train": write_tsv(root / "train.tsv", texts, labels),
        "valid": write_tsv(root / "valid.tsv", *valid, header=False),
        "test": write_tsv(root / "test.tsv", *test),
    }
    pretrained = root / "pretrained"
    pretrain_bert(pretrained, train_files=str(corpus), **TINY)
    model_dir = root / "classifier"
    options = dict(
        TINY,
        train_file=files["train"],
        valid_file=files["valid"],
        test_file=files["test"],
        pretrained=str(pretrained),
        architecture="bert",
        pooling="mean",
        token_mask_rate=0.1,
        ema_momentum=0.9,
        encoder_dropout=0.2,
        layer_decay=0.8,
    )
    train_classifier(model_dir, **options)
    # Running again with more epochs resumes from the backup.
    train_classifier(model_dir, **dict(options, epochs=2))
    return FineTuned(root, str(corpus), pretrained, model_dir, files, test)


def second_fine_tune(tmp_path_factory):
    """Another classifier from the same encoder (seed 1, 3 steps)."""
    if "second" not in _CACHE:
        from keras_transformer.tasks.classifier import train_classifier

        runs = fine_tuned(tmp_path_factory)
        other = runs.root / "seed1"
        train_classifier(
            other,
            train_file=runs.files["train"],
            valid_file=runs.files["valid"],
            pretrained=str(runs.pretrained),
            architecture="bert",
            pooling="mean",
            seed=1,
            **TINY,
        )
        _CACHE["second"] = other
    return _CACHE["second"]
