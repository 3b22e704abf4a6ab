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
gradients are then zero); `LoraResume` keeps the exact variables beside
the backup. With `lora_save="adapters"` the directory holds only the
trained variables (`ADAPTERS_FILE`) and the architecture
(`ARCHITECTURE_FILE`); `load_adapted_model` rebuilds it from the parent
directory named in the metadata, which must stay where it was.
"""

import io
import json
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


def _weights(variables):
    """The variables but dropout's seed states, whose paths carry a
    process-wide counter (they differ between two builds of a model)."""
    return [v for v in variables if "seed_generator" not in v.path]


def _values(variables):
    return {v.path: np.asarray(v.numpy()) for v in _weights(variables)}


def _assign(variables, values, what):
    variables = _weights(variables)
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


def _write_npz(path, arrays):
    from keras_transformer import model_dir as model_dir_lib

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    model_dir_lib.atomic_write_bytes(path, buffer.getvalue())


def _read_npz(path):
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def save_adapters(model, path):
    """Writes the trainable variables (adapters, a new head) to `path`."""
    _write_npz(path, _values(model.trainable_variables))


def load_adapted_model(model_dir, metadata):
    """The merged model of an adapters-only directory (uncompiled).

    Rebuilds the architecture, loads the parent directory's weights by
    variable path, adds the adapters and merges them into the kernels.
    """
    import keras

    from keras_transformer import model_dir as model_dir_lib

    lora = metadata["inference"]["lora"]
    parent = lora["parent"]
    if not os.path.isdir(parent):
        raise model_dir_lib.ModelDirectoryError(
            f"{model_dir} holds LoRA adapters of {parent}, which is gone; "
            "restore it or retrain with lora_save='merged'."
        )
    with open(
        os.path.join(model_dir, ARCHITECTURE_FILE), encoding="utf-8"
    ) as f:
        config = json.load(f)
    model = keras.saving.deserialize_keras_object(config)
    base = _values(model_dir_lib.load_model(parent).variables)
    adapters = _read_npz(os.path.join(model_dir, ADAPTERS_FILE))
    own = [v for v in model.variables if v.path in adapters]
    _assign(
        [v for v in model.variables if v.path not in adapters],
        base,
        f"The parent {parent}",
    )
    _assign(own, adapters, "The adapters")  # a new head, if any
    enable_lora(
        model, lora["rank"], lora["alpha"], train_layers=lora["train_layers"]
    )
    _assign(model.trainable_variables, adapters, "The adapters")
    return merged(model)


def merged(model):
    """A copy of `model` without adapters, each merged into its kernel."""
    import tempfile

    import keras

    config = _strip_lora(keras.saving.serialize_keras_object(model))
    plain = keras.saving.deserialize_keras_object(config)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "merged.weights.h5")
        model.save_weights(path)  # Keras merges each adapter here
        plain.load_weights(path)
    return plain


def _strip_lora(config):
    if isinstance(config, dict):
        return {
            k: _strip_lora(v)
            for k, v in config.items()
            if k not in ("lora_rank", "lora_alpha")
        }
    if isinstance(config, list):
        return [_strip_lora(v) for v in config]
    return config


def write_adapters_directory(output_dir, model, adapters_path):
    """Turns a finished LoRA run's directory into an adapters-only one.

    The best epoch's adapters are at `adapters_path`; the architecture is
    written, then the merged `model.keras` removed (the metadata already
    names the adapters, so the directory loads at every point).
    """
    import keras

    from keras_transformer import model_dir as model_dir_lib

    config = _strip_lora(keras.saving.serialize_keras_object(model))
    model_dir_lib.write_json_atomic(
        os.path.join(output_dir, ARCHITECTURE_FILE), config
    )
    final = os.path.join(output_dir, ADAPTERS_FILE)
    if os.path.abspath(adapters_path) != os.path.abspath(final):
        os.replace(adapters_path, final)
    path = os.path.join(output_dir, model_dir_lib.MODEL_FILE)
    if os.path.exists(path):
        os.remove(path)


def lora_callbacks(output_dir, save_every_steps=None):
    """`(LoraResume, on_best)` for a LoRA run of `output_dir`: the exact
    state for resuming, and the best epoch's adapters."""
    from keras_transformer import model_dir as model_dir_lib

    resume = LoraResume(
        os.path.join(output_dir, model_dir_lib.BACKUP_DIR), save_every_steps
    )

    def on_best(model):
        save_adapters(model, os.path.join(output_dir, ADAPTERS_FILE))

    return resume, on_best


def _lora_resume_class():
    import keras

    class LoraResume(keras.callbacks.Callback):
        """Keeps the exact model and optimizer variables of a LoRA run
        beside its Keras backup, and puts them back when a run resumes
        (see the module docstring for why the Keras backup cannot)."""

        def __init__(self, backup_dir, save_every_steps=None):
            super().__init__()
            self.path = os.path.join(backup_dir, STATE_FILE)
            self.save_every_steps = save_every_steps
            self._restored = False
            self._batches = 0

        def on_train_batch_end(self, batch, logs=None):
            # At the steps `AtomicBackupAndRestore` backs up at too.
            self._batches += 1
            if self.save_every_steps and (
                self._batches % self.save_every_steps == 0
            ):
                self._save()

        def _variables(self):
            return list(self.model.variables) + list(
                self.model.optimizer.variables
            )

        def on_epoch_begin(self, epoch, logs=None):
            # After `BackupAndRestore.on_train_begin` has loaded its
            # (merged) weights and optimizer state.
            if self._restored or not os.path.exists(self.path):
                self._restored = True
                return
            values = _read_npz(self.path)
            for variable in _weights(self.model.variables):
                variable.assign(values[f"model/{variable.path}"])
            for variable in _weights(self.model.optimizer.variables):
                key = f"optimizer/{variable.path}"
                if key in values:
                    variable.assign(values[key])
            self._restored = True

        def on_epoch_end(self, epoch, logs=None):
            self._save()

        def _save(self):
            arrays = {
                f"model/{k}": v
                for k, v in _values(self.model.variables).items()
            }
            arrays.update(
                {
                    f"optimizer/{k}": v
                    for k, v in _values(self.model.optimizer.variables).items()
                }
            )
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            _write_npz(self.path, arrays)

    return LoraResume


def LoraResume(backup_dir, save_every_steps=None):  # noqa: N802
    """The resume callback (its class is built on first use, so importing
    this module does not import Keras)."""
    return _lora_resume_class()(backup_dir, save_every_steps)
