"""String-in, string-out Python API of the trained models.

`load(path)` reads a model directory's metadata and returns the object for
its task:

- `Translator` (task "translation"): `translator("Some text.")`.
- `TextGenerator` (task "gpt"): `generator("A prompt", max_new_tokens=20)`,
  `generator.stream(...)`.
- `TextClassifier` (task "classifier", probability ensembles included):
  `classifier("Some text.")` -> `(label, probability)`.

Each takes a str (and answers with one result) or a list of str (and
answers with a list), processes long lists in batches with a progress bar
when `verbose=1`, and writes a TF Serving SavedModel with `export(output)`.

Example:
>>> import keras_transformer
>>> translator = keras_transformer.load("runs/en-es")  # doctest: +SKIP
>>> translator(["In the beginning.", "   "])  # doctest: +SKIP
['En el principio.', '']
"""

import os
import warnings

from keras_transformer import model_dir as model_dir_lib
from keras_transformer.inference._base import (
    InferenceModel,
    default_jit_compile,
)
from keras_transformer.inference.classifier import (
    TextClassifier,
    classification_report,
)
from keras_transformer.inference.generator import (
    SAMPLERS,
    TextGenerator,
    encode_prompts,
    make_sampler,
)
from keras_transformer.inference.translator import (
    DEFAULT_LENGTH_PENALTY,
    Translator,
)

CLASSES = {
    "translation": Translator,
    "gpt": TextGenerator,
    "classifier": TextClassifier,
}


def load(path, **kwargs):
    """Loads a model directory as its inference object.

    Args:
        path: str or path-like, a directory written by `keras-transformer
            train` (or `average-classifiers`).
        **kwargs: passed to the object's constructor (`batch_size`,
            `max_length`, `jit_compile`, ... as the class takes them).

    Returns:
        A `Translator`, `TextGenerator` or `TextClassifier`, chosen by
        `metadata["task"]`.

    Raises:
        keras_transformer.model_dir.ModelDirectoryError: the directory is
            missing or unfinished, or its task has no inference object
            (a "bert-pretrain" encoder: fine-tune it into a classifier).

    Example:
    >>> from keras_transformer.inference import load
    >>> classifier = load("runs/genre", batch_size=32)  # doctest: +SKIP
    """
    path = os.fspath(path)
    task = model_dir_lib.read_metadata(path)["task"]
    if task not in CLASSES:
        raise model_dir_lib.ModelDirectoryError(
            f"{path} holds a {task!r} model, which has no inference object; "
            f"`load` takes a directory of one of the tasks {sorted(CLASSES)}"
            + (
                " (fine-tune the encoder with `train classifier --pretrained`)."
                if task == "bert-pretrain"
                else "."
            )
        )
    return CLASSES[task].from_dir(path, **kwargs)


def _deprecated(old, cls):
    warnings.warn(
        f"`{old}` is deprecated; use `keras_transformer.load(path)` (or "
        f"`{cls.__name__}.from_dir(path)`) instead.",
        DeprecationWarning,
        stacklevel=3,
    )


def load_translator(path, **kwargs):
    """Deprecated: use `keras_transformer.load(path)`.

    Args:
        path: str, a translation model directory.
        **kwargs: `Translator` arguments (`batch_size`, `jit_compile`,
            `max_length`).

    Returns:
        A `Translator`.
    """
    _deprecated("load_translator", Translator)
    return Translator.from_dir(path, **kwargs)


def load_generator(path):
    """Deprecated: use `keras_transformer.load(path)`.

    Args:
        path: str, a GPT model directory.

    Returns:
        A `TextGenerator`.
    """
    _deprecated("load_generator", TextGenerator)
    return TextGenerator.from_dir(path)


def load_classifier(path, batch_size=64):
    """Deprecated: use `keras_transformer.load(path)`.

    Args:
        path: str, a classifier directory.
        batch_size: int, default 64. Texts per model call.

    Returns:
        A `TextClassifier`.
    """
    _deprecated("load_classifier", TextClassifier)
    return TextClassifier.from_dir(path, batch_size=batch_size)


__all__ = [
    "CLASSES",
    "DEFAULT_LENGTH_PENALTY",
    "SAMPLERS",
    "InferenceModel",
    "TextClassifier",
    "TextGenerator",
    "Translator",
    "classification_report",
    "default_jit_compile",
    "encode_prompts",
    "load",
    "load_classifier",
    "load_generator",
    "load_translator",
    "make_sampler",
]
