"""Quantizing and reloading quantized Keras models (no model-directory
code here, so `keras_transformer.model_dir` can import it)."""

import json
import zipfile

QUANTIZATION_MODES = ("int8",)

_QUANTIZABLE = ("Dense", "EinsumDense", "Embedding")


def _check_mode(mode):
    if mode not in QUANTIZATION_MODES:
        raise ValueError(
            f"`mode` must be one of {QUANTIZATION_MODES}. Received: "
            f"mode={mode!r}"
        )


def _quantizable(layer):
    """Keras' own Dense, EinsumDense and Embedding, not yet quantized."""
    import keras

    kinds = tuple(getattr(keras.layers, name) for name in _QUANTIZABLE)
    return type(layer) in kinds and layer.quantization_mode is None


def quantize_model(model, mode="int8"):
    """Quantizes a built model's Dense, EinsumDense and Embedding layers.

    In place; layers already quantized are left as they are.

    Args:
        model: a built `keras.Model`.
        mode: str, default "int8". One of `QUANTIZATION_MODES`.

    Returns:
        The number of layers quantized, int.

    Example:
    >>> import keras
    >>> from keras_transformer.quantization import quantize_model
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> quantize_model(model), model.layers[0].kernel.dtype
    (1, 'int8')
    """
    _check_mode(mode)
    count = sum(1 for layer in model._flatten_layers() if _quantizable(layer))
    if count:
        model.quantize(mode, filters=_quantizable)
    return count


def load_quantized_model(path, mode):
    """Reads a `.keras` file saved after `quantize_model`.

    Rebuilds the architecture from the file's config, quantizes it the same
    way and loads the int8 weights.
    """
    import keras

    import keras_transformer.layers  # noqa: F401  (registers the layers)

    _check_mode(mode)
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    model = keras.saving.deserialize_keras_object(config)
    quantize_model(model, mode)
    model.load_weights(path)
    return model
