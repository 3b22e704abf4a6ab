"""The tokenizer step of the task runners: resume it or train it."""

import logging
import os
import re

from keras_transformer import model_dir as model_dir_lib

logger = logging.getLogger("keras_transformer.tasks._common")


def tokenizer_or_resume(
    output_dir, texts, vocabulary_size, seed=0, *, default_size=None,
    **sentencepiece_options,
):  # fmt: skip
    """The directory's tokenizer when resuming, else a new one saved there.

    Args:
        output_dir: str, the model directory.
        texts: list of str to train a new SentencePiece model on.
        vocabulary_size: int or None, pieces of a new model. None: the
            task's `default_size`, lowered to what the texts can give (a
            small corpus cannot fill 8,000 pieces; the user did not ask
            for that many, so it is no error).
        seed: int, default 0.
        default_size: int, the pieces `vocabulary_size=None` asks for.
        **sentencepiece_options: more `train_sentencepiece` arguments.

    Returns:
        A `SubwordTokenizer`.
    """
    from keras_transformer.tokenizers import (
        SubwordTokenizer,
        train_sentencepiece,
    )

    path = os.path.join(output_dir, model_dir_lib.TOKENIZER_FILE)
    if os.path.exists(path):
        logger.info("Resuming with the tokenizer in %s", path)
        return SubwordTokenizer.load(path)
    capped = vocabulary_size is None
    if capped:
        vocabulary_size = default_size
    logger.info("Training a %d-piece SentencePiece model", vocabulary_size)
    try:
        proto = train_sentencepiece(
            texts, vocabulary_size, seed=seed, **sentencepiece_options
        )
    except ValueError as error:
        most = re.search(r"at most (\d+) pieces", str(error))
        if not (capped and most):
            raise
        logger.info("The text gives at most %s pieces; using them", most[1])
        proto = train_sentencepiece(
            texts, int(most[1]), seed=seed, **sentencepiece_options
        )
    tokenizer = SubwordTokenizer(proto)
    tokenizer.save(path)
    return tokenizer


def tokenizer_summary(tokenizer):
    """The `tokenizer` entry of the metadata."""
    return {
        "file": model_dir_lib.TOKENIZER_FILE,
        "type": "sentencepiece",
        "vocabulary_size": int(tokenizer.vocabulary_size),
    }
