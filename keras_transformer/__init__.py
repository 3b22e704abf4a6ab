"""keras_transformer: Transformer layers and applications for Keras 3.

Submodules are imported when first used, so `import keras_transformer`
(and the command line's `--help`) does not start TensorFlow.

Example:
>>> import keras_transformer
>>> keras_transformer.__version__
'0.1.0'
"""

import importlib

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


__all__ = ["__version__", "load", *_SUBMODULES]
