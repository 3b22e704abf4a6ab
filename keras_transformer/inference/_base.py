"""What every inference object shares: loading, export, batching, checks.

`InferenceModel` holds a Keras model, its tokenizer and the metadata of the
model directory it came from; `Translator`, `TextGenerator` and
`TextClassifier` subclass it. Long inputs are processed in batches, with a
`keras.utils.Progbar` when `verbose` and there is more than one batch.
"""

import os
import warnings

import keras
import tensorflow as tf

from keras_transformer import model_dir as model_dir_lib


def default_jit_compile():
    """XLA where it pays: on a GPU or TPU, not on CPU.

    Measured on the 2-core CPU machines (small translation preset, batch
    32): XLA and plain graph mode take the same time per step, but XLA
    compiles every new input shape for 10-20 s.

    Returns:
        bool, True when a GPU or TPU is visible to TensorFlow.

    Example:
    >>> from keras_transformer.inference import default_jit_compile
    >>> isinstance(default_jit_compile(), bool)
    True
    """
    return bool(
        tf.config.list_logical_devices("GPU")
        or tf.config.list_logical_devices("TPU")
    )


def check_verbose(verbose):
    """Checks a `verbose` argument: 0 (silent), 1 (a bar) or 2 (one line).

    Args:
        verbose: int or bool.

    Returns:
        The int value.
    """
    if verbose not in (0, 1, 2):  # True == 1 and False == 0 pass.
        raise ValueError(
            f"`verbose` must be 0, 1 or 2. Received: verbose={verbose!r}"
        )
    return int(verbose)


def check_batch_size(batch_size, allow_none=False):
    """Checks a `batch_size` argument (a positive int, or None if allowed)."""
    if batch_size is None and allow_none:
        return None
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int)
        or batch_size < 1
    ):
        raise ValueError(
            "`batch_size` must be a positive integer"
            + (" or None" if allow_none else "")
            + f". Received: batch_size={batch_size!r}"
        )
    return batch_size


def text_list(texts, name="texts"):
    """`(list_of_str, was_single)` of a str or an iterable of str.

    Args:
        texts: str, or an iterable of str.
        name: str, default "texts". The argument name used in errors.

    Returns:
        A tuple `(list of str, bool)`: the texts, and whether a single str
        was given (the caller then returns a single answer).

    Example:
    >>> from keras_transformer.inference._base import text_list
    >>> text_list("Hello.")
    (['Hello.'], True)
    >>> text_list(("a", "b"))
    (['a', 'b'], False)
    """
    if isinstance(texts, str):
        return [texts], True
    if isinstance(texts, bytes) or not hasattr(texts, "__iter__"):
        raise ValueError(
            f"`{name}` must be a str or a list of str. Received: "
            f"{name} of type {type(texts).__name__}"
        )
    texts = list(texts)
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(
                f"`{name}` must hold str items. Received: {name}[{index}] "
                f"of type {type(text).__name__}"
            )
    return texts, False


def resolve_num_beams(num_beams, beam_size):
    """`num_beams`, or the deprecated `beam_size` alias with a warning."""
    if beam_size is not None:
        warnings.warn(
            "`beam_size` is deprecated; use `num_beams` instead.",
            DeprecationWarning,
            stacklevel=3,
        )
        num_beams = beam_size
    if isinstance(num_beams, bool) or not isinstance(num_beams, int):
        raise ValueError(
            "`num_beams` must be an integer >= 1. "
            f"Received: num_beams={num_beams!r}"
        )
    if num_beams < 1:
        raise ValueError(
            "`num_beams` must be an integer >= 1. "
            f"Received: num_beams={num_beams}"
        )
    return num_beams


class InferenceModel:
    """A trained model, its tokenizer and its model directory's metadata.

    Subclasses set `task` (the metadata task they read) and implement
    `__call__`. They are made from a model directory with `from_dir` (or
    `keras_transformer.load`), or from a model and a tokenizer directly.

    Args:
        model: the `keras.Model`.
        tokenizer: its `keras_transformer.tokenizers.SubwordTokenizer`.
        metadata: dict or None (default). The model directory's metadata.

    Attributes:
        model_dir: str or None, the directory it was loaded from.
    """

    task = None
    unit_name = "text"

    def __init__(self, model, tokenizer, metadata=None):
        self.model = model
        self.tokenizer = tokenizer
        self.metadata = None if metadata is None else dict(metadata)
        self.model_dir = None

    @property
    def inference_metadata(self):
        """The `metadata["inference"]` dict, empty without metadata."""
        return dict((self.metadata or {}).get("inference") or {})

    @classmethod
    def from_dir(cls, path, **kwargs):
        """Loads a model directory of this class's task.

        Args:
            path: str or path-like, a directory written by
                `keras-transformer train`.
            **kwargs: passed to the constructor (`batch_size`, ...).

        Returns:
            An instance of the class.

        Raises:
            keras_transformer.model_dir.ModelDirectoryError: the directory
                is missing, unfinished or holds another task's model.

        Example:
        >>> from keras_transformer.inference import Translator
        >>> Translator.from_dir("runs/en-es")  # doctest: +SKIP
        """
        path = os.fspath(path)
        metadata, model, tokenizer = model_dir_lib.open_model_dir(
            path, cls.task
        )
        instance = cls._from_parts(model, tokenizer, metadata, **kwargs)
        instance.model_dir = os.path.abspath(path)
        return instance

    @classmethod
    def _from_parts(cls, model, tokenizer, metadata, **kwargs):
        return cls(model, tokenizer, metadata=metadata, **kwargs)

    def export(self, output, overwrite=False, **options):
        """Writes a TF Serving SavedModel (see `keras_transformer.export`).

        Args:
            output: str, the versioned destination `.../NAME/VERSION`.
            overwrite: bool, default False. Replace an existing version.
            **options: passed to the exporter (`default_max_new_tokens`
                for a `TextGenerator`).

        Returns:
            The absolute export path.

        Example:
        >>> import keras_transformer
        >>> translator = keras_transformer.load("runs/en-es")  # doctest: +SKIP
        >>> translator.export("saved_models/en-es/1")  # doctest: +SKIP
        """
        from keras_transformer import export

        return export.export_model(self, output, overwrite=overwrite, **options)

    def _batches(self, count, batch_size, verbose=0):
        """Yields `(begin, end)` index ranges and advances a progress bar.

        The bar (`keras.utils.Progbar`) appears when `verbose` and there is
        more than one batch; it advances after each batch is processed.
        """
        verbose = check_verbose(verbose)
        bar = None
        if verbose and count > batch_size:
            bar = keras.utils.Progbar(
                count, verbose=verbose, unit_name=self.unit_name
            )
        for begin in range(0, count, batch_size):
            end = min(begin + batch_size, count)
            yield begin, end
            if bar is not None:
                bar.update(end)

    def __repr__(self):
        where = f" from {self.model_dir!r}" if self.model_dir else ""
        return f"<{type(self).__name__} {self.model.name!r}{where}>"
