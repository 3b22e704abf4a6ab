"""LoRA fine-tuning with Keras' own adapters (`layer.enable_lora(rank)`).

`enable_lora(model, rank)` adds a rank-`rank` adapter (`lora_kernel_a` and
`lora_kernel_b`) to every Keras `Dense` and `EinsumDense` inside the model
(attention projections, feed-forward layers) and freezes every other
variable: embeddings, layer norms, biases and the base kernels stay
bitwise as they were. Layers named in `train_layers` (a fresh
classification head) are not adapted but trained whole.

Saving. Keras merges an adapter into its kernel when it saves weights
(`Dense.save_own_variables`), so a `.keras` file written during LoRA
training is an ordinary model holding `W + (alpha / rank) * A @ B`: that
is the "merged" directory (`lora_save="merged"`, the default), as fast as
the parent. The same merge is why a Keras backup cannot resume LoRA
training (it reloads the merged kernel and zeroes both factors, whose
gradients are then zero); `keras_transformer.tasks._init_from.LoraResume`
keeps the exact variables beside the backup. With `lora_save="adapters"`
the directory holds only the trained variables (`ADAPTERS_FILE`) and the
architecture (`ARCHITECTURE_FILE`); `model_dir.load_model` rebuilds it
(`rebuild`) on the parent directory named in the metadata, which must
stay where it was. No model-directory code here, so `model_dir` can
import this module.
"""

import io
import os

import numpy as np

ADAPTERS_FILE = "lora_adapters.npz"
ARCHITECTURE_FILE = "architecture.json"
STATE_FILE = "lora_state.npz"
LORA_SAVE_MODES = ("merged", "adapters")

_ADAPTED = ("Dense", "EinsumDense")


def _adaptable(layer):
    import keras

    kinds = tuple(getattr(keras.layers, name) for name in _ADAPTED)
    return type(layer) in kinds and layer.built and not layer.lora_enabled


def enable_lora(model, rank, alpha=None, train_layers=()):
    """Adds LoRA adapters and freezes everything else, in place.

    Args:
        model: a built `keras.Model`.
        rank: int, the adapters' rank.
        alpha: float or None (default: `rank`). The update is scaled by
            `alpha / rank`.
        train_layers: names of layers trained whole instead (a new
            classification head).

    Returns:
        A dict: `adapted_layers`, `trainable_parameters`, `parameters`.

    Example:
    >>> import keras
    >>> from keras_transformer.lora import enable_lora
    >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
    >>> enable_lora(model, rank=2)["trainable_parameters"]
    24
    """
    if isinstance(rank, bool) or int(rank) != rank or rank < 1:
        raise ValueError(
            f"`rank` must be a positive integer. Received: {rank!r}"
        )
    keep = set(train_layers)
    layers = list(model._flatten_layers(include_self=False))
    whole = [layer for layer in layers if layer.name in keep]
    trained = {id(v) for layer in whole for v in layer.weights}
    adapted = 0
    for layer in layers:
        if layer.name in keep or not _adaptable(layer):
            continue
        layer.enable_lora(int(rank), lora_alpha=alpha)
        adapted += 1
    if not adapted:
        raise ValueError(
            "The model has no Dense or EinsumDense layer to adapt."
        )
    for variable in model.variables:
        name = variable.path.rsplit("/", 1)[-1]
        variable.trainable = name.startswith("lora_") or id(variable) in trained
    return {
        "adapted_layers": adapted,
        "trainable_parameters": int(
            sum(np.prod(v.shape) for v in model.trainable_variables)
        ),
        "parameters": int(sum(np.prod(v.shape) for v in model.variables)),
    }


def weights_of(variables):
    """The variables but dropout's seed states, whose paths carry a
    process-wide counter (they differ between two builds of a model)."""
    return [v for v in variables if "seed_generator" not in v.path]


def variable_values(variables):
    return {v.path: np.asarray(v.numpy()) for v in weights_of(variables)}


def _assign(variables, values, what):
    variables = weights_of(variables)
    missing = [v.path for v in variables if v.path not in values]
    if missing:
        raise ValueError(f"{what} has no value for {missing[:5]}")
    for variable in variables:
        value = values[variable.path]
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(
                f"{what}: {variable.path} has shape {tuple(value.shape)}, "
                f"the model's is {tuple(variable.shape)}"
            )
        variable.assign(value)


def read_npz(path):
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def npz_bytes(arrays):
    """`{name: array}` as the bytes of an `.npz` file."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def rebuild(config, parent, adapters, entry):
    """The merged model of an adapters-only directory (uncompiled).

    Args:
        config: the architecture (`ARCHITECTURE_FILE`), without adapters.
        parent: the parent directory's `keras.Model`.
        adapters: `{variable path: array}` of the trained variables.
        entry: the metadata's `inference["lora"]` (rank, alpha,
            train_layers).
    """
    import keras

    model = keras.saving.deserialize_keras_object(config)
    base = variable_values(parent.variables)
    _assign(
        [v for v in model.variables if v.path not in adapters],
        base,
        "The parent model",
    )
    _assign(
        [v for v in model.variables if v.path in adapters],
        adapters,
        "The adapters",
    )  # a new head, if any
    enable_lora(
        model, entry["rank"], entry["alpha"], train_layers=entry["train_layers"]
    )
    _assign(model.trainable_variables, adapters, "The adapters")
    return merged(model)


def merged(model):
    """A copy of `model` without adapters, each merged into its kernel."""
    import tempfile

    import keras

    config = strip_lora(keras.saving.serialize_keras_object(model))
    plain = keras.saving.deserialize_keras_object(config)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "merged.weights.h5")
        model.save_weights(path)  # Keras merges each adapter here
        plain.load_weights(path)
    return plain


def strip_lora(config):
    if isinstance(config, dict):
        return {
            k: strip_lora(v)
            for k, v in config.items()
            if k not in ("lora_rank", "lora_alpha")
        }
    if isinstance(config, list):
        return [strip_lora(v) for v in config]
    return config
