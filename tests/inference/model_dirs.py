"""Tiny model directories, built in seconds without training.

The inference and serving tests need model directories of every task; a
task runner would train for minutes. These builders make the same layout
(model, tokenizer, metadata of the one schema, model card) from an
application function with a tiny configuration and random weights:
`build_model_dirs(root)` gives {"translation", "gpt", "classifier"}, and
`ensemble_dir` a probability ensemble of classifier directories.

Random weights are drawn large (`scramble`), so that outputs are long and
depend on the input: a comparison of two paths then checks real token
sequences, not a run of end tokens.
"""

import os
import pathlib

import keras
import numpy as np
from keras_transformer.applications import bert, gpt, translation
from keras_transformer.applications.presets import get_preset

from keras_transformer import model_dir as model_dir_lib
from keras_transformer.data.loaders import (
    load_bundled_genre,
    load_bundled_lm_text,
    load_bundled_translation,
)
from keras_transformer.tokenizers import SubwordTokenizer, train_sentencepiece

VOCABULARY_SIZE = 120
CLASS_NAMES = ("gospels_acts", "law", "wisdom")
SEQUENCE_LENGTH = 24  # classifier
GPT_LENGTH = 32
TRANSLATION_LENGTH = 24


def tokenizer_texts(count=40):
    """A few dozen English and Spanish sentences of the bundled corpora."""
    sources, targets = load_bundled_translation("train")
    genre, _, _ = load_bundled_genre("train")
    lm = load_bundled_lm_text("train")
    return sources[:count] + targets[:count] + genre[:count] + lm[:count]


def train_tokenizer(vocabulary_size=VOCABULARY_SIZE, seed=0):
    """A small `SubwordTokenizer` (SentencePiece) of `tokenizer_texts()`."""
    proto = train_sentencepiece(tokenizer_texts(), vocabulary_size, seed=seed)
    return SubwordTokenizer(proto)


def scramble(model, seed=0, scale=3.0):
    """Redraws a model's weight matrices (not embeddings) larger, in place.

    Normal with standard deviation `scale / sqrt(fan_in)`: with the
    initial (small) values a tiny seq2seq repeats one token whatever its
    input.
    """
    rng = np.random.RandomState(seed)
    for variable in model.weights:
        shape = tuple(variable.shape)
        if len(shape) < 2 or "embedding" in variable.path:
            continue
        value = rng.normal(size=shape) * scale / np.sqrt(shape[0])
        variable.assign(value.astype(variable.dtype))
    return model


def write_model_dir(path, task, model, tokenizer, config, inference):
    """Writes `model.keras`, `tokenizer.model` and the metadata (+ card).

    Returns:
        The directory as a `pathlib.Path`.
    """
    path = pathlib.Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path / model_dir_lib.TOKENIZER_FILE))
    model_dir_lib.atomic_save_model(model, str(path / model_dir_lib.MODEL_FILE))
    metadata = model_dir_lib.make_metadata(
        task,
        config=config,
        settings={"preset": "tiny", "seed": 0},
        tokenizer={"vocabulary_size": tokenizer.vocabulary_size},
        data={"train": "none: random weights (tests)"},
        inference=inference,
        train_seconds=None,
        steps=0,
        metrics={},
    )
    model_dir_lib.write_metadata(str(path), metadata)
    return path


def translation_dir(path, tokenizer, seed=0, max_length=TRANSLATION_LENGTH):
    """A translation directory: a tiny `transformer_seq2seq`."""
    keras.utils.set_random_seed(seed)
    config = get_preset("translation", "tiny")
    config.update(
        vocabulary_size=tokenizer.vocabulary_size,
        max_sequence_length=max_length,
    )
    model = scramble(translation.transformer_seq2seq(**config), seed)
    return write_model_dir(
        path,
        "translation",
        model,
        tokenizer,
        config,
        {"max_length": max_length},
    )


def gpt_dir(path, tokenizer, seed=0, max_sequence_length=GPT_LENGTH):
    """A GPT directory: a tiny `gpt_lm`."""
    keras.utils.set_random_seed(seed)
    config = get_preset("gpt", "tiny")
    config.update(
        vocabulary_size=tokenizer.vocabulary_size,
        max_sequence_length=max_sequence_length,
    )
    model = scramble(gpt.gpt_lm(**config), seed)
    return write_model_dir(
        path,
        "gpt",
        model,
        tokenizer,
        config,
        {"max_sequence_length": max_sequence_length},
    )


def classifier_model(tokenizer, seed=0, num_classes=3):
    """A tiny `bert_classifier` and its config."""
    keras.utils.set_random_seed(seed)
    backbone = get_preset("bert", "tiny")
    backbone.update(
        vocabulary_size=tokenizer.vocabulary_size,
        max_sequence_length=SEQUENCE_LENGTH,
    )
    config = {"backbone_or_kwargs": backbone, "num_classes": num_classes}
    model = scramble(bert.bert_classifier(**config), seed, scale=1.0)
    return model, config


def classifier_dir(path, tokenizer, seed=0, class_names=CLASS_NAMES):
    """A classifier directory: a tiny `bert_classifier`."""
    model, config = classifier_model(tokenizer, seed, len(class_names))
    return write_model_dir(
        path,
        "classifier",
        model,
        tokenizer,
        config,
        {"class_names": list(class_names), "sequence_length": SEQUENCE_LENGTH},
    )


def ensemble_dir(path, member_dirs):
    """A probability ensemble (`bert_ensemble`) of classifier directories."""
    members = [model_dir_lib.open_model_dir(str(d)) for d in member_dirs]
    metadata, _, tokenizer = members[0]
    model = bert.bert_ensemble([model for _, model, _ in members])
    inference = dict(
        metadata["inference"],
        architecture="ensemble",
        members=[os.path.abspath(d) for d in member_dirs],
    )
    return write_model_dir(
        path,
        "classifier",
        model,
        tokenizer,
        {"members": [m["config"] for m, _, _ in members]},
        inference,
    )


def build_model_dirs(root, tokenizer=None):
    """{"translation", "gpt", "classifier": directory} under `root`."""
    root = pathlib.Path(root)
    tokenizer = tokenizer or train_tokenizer()
    return {
        "translation": translation_dir(root / "translation_model", tokenizer),
        "gpt": gpt_dir(root / "gpt_model", tokenizer),
        "classifier": classifier_dir(root / "classifier_model", tokenizer),
    }
