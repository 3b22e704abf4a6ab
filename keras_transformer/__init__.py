"""keras_transformer: Transformer layers and applications for Keras 3.

`import keras_transformer` imports `layers`, `losses`, `metrics`,
`optimizers` and `schedules`, which registers their classes with Keras, so a
`.keras` file of this library's models (compiled ones included) loads with
`keras.saving.load_model` and no `custom_objects`; other submodules are
imported when first used. The command line (`keras-transformer`,
`python -m keras_transformer`) skips them, so that `--help` answers without
starting TensorFlow; its commands import what they need.

Example:
>>> import keras_transformer
>>> keras_transformer.__version__
'0.1.0'
"""

import importlib
import os
import sys

__version__ = "0.1.0"

_SUBMODULES = (
    "applications",
    "data",
    "export",
    "generation",
    "inference",
    "layers",
    "losses",
    "metrics",
    "model_dir",
    "optimizers",
    "schedules",
    "tasks",
    "tokenizers",
    "training",
)


def load(path, **kwargs):
    """Loads a model directory as its inference object.

    Args:
        path: str, a directory written by `keras-transformer train` (or
            `average-classifiers`).
        **kwargs: passed to the inference object (`batch_size`, ...).

    Returns:
        A `Translator`, `TextGenerator` or `TextClassifier`, chosen by the
        directory's metadata.

    Example:
    >>> translator = keras_transformer.load("runs/en-es")  # doctest: +SKIP
    >>> translator(["In the beginning."])  # doctest: +SKIP
    """
    from keras_transformer.inference import load as load_inference

    return load_inference(path, **kwargs)


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"keras_transformer.{name}")
    raise AttributeError(
        f"module 'keras_transformer' has no attribute {name!r}"
    )


def _is_command_line():
    # The console script's name, or `python -m keras_transformer` (while the
    # package is imported for `-m`, argv[0] is "-m").
    program = os.path.basename(sys.argv[0]) if sys.argv else ""
    return program in ("keras-transformer", "-m")


if not _is_command_line():
    # Importing them registers their serializable classes with Keras.
    from keras_transformer import (  # noqa: E402, F401
        layers,
        losses,
        metrics,
        optimizers,
        schedules,
    )

__all__ = ["__version__", "load", *_SUBMODULES]
