"""Shared SavedModel writing: TF Serving layout, atomic, no silent overwrite.

Every exporter takes a `source`: a model directory path (opened through
`keras_transformer.model_dir.open_model_dir`) or an object with `.model`,
`.tokenizer` and `.metadata` attributes (an inference object such as a
`keras_transformer.inference.Translator`; this package never imports
`inference`). `open_source` turns either into one `Source`, its model
cast to bfloat16 or float16 when an export asks for `dtype` (`cast_model`).
"""

import dataclasses
import os

from keras_transformer import model_dir as model_dir_lib


class ExportError(ValueError):
    """The export destination or model cannot be exported as asked."""


@dataclasses.dataclass
class Source:
    """What an exporter needs: model, tokenizer, task and settings.

    Attributes:
        model: the `keras.Model`.
        tokenizer: its `SubwordTokenizer`.
        metadata: dict, the model directory's metadata (possibly partial
            for an object made without a directory).
        task: str, `metadata["task"]`.
        inference: dict, `metadata["inference"]` updated with the object's
            own settings (`max_length`, `class_names`, `sequence_length`).
    """

    model: object
    tokenizer: object
    metadata: dict
    task: str
    inference: dict


# `dtype` choices of the exporters. None and "float32" keep the model's.
EXPORT_DTYPES = ("float32", "bfloat16", "float16")
# Layers that stay float32 in a cast model: they turn the logits into
# float32, so scores and probabilities come out in float32.
FLOAT32_LAYERS = ("logits", "mlm_logits")
_CAST_POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")


def check_dtype(dtype):
    """Returns `dtype` (None for float32) or raises `ExportError`."""
    if dtype is not None and dtype not in EXPORT_DTYPES:
        raise ExportError(
            f"`dtype` must be one of {EXPORT_DTYPES} (or None). "
            f"Received: dtype={dtype!r}"
        )
    return None if dtype == "float32" else dtype


def _recast(config, dtype):
    """The serialized model `config` with every float32 (or mixed) dtype
    policy made `dtype`, but those of `FLOAT32_LAYERS`."""
    if isinstance(config, list):
        return [_recast(v, dtype) for v in config]
    if not isinstance(config, dict):
        return config
    inner = config.get("config")
    if isinstance(inner, dict):
        if inner.get("name") in FLOAT32_LAYERS and "dtype" in inner:
            return config
        if (
            config.get("class_name") == "DTypePolicy"
            and inner.get("name") in _CAST_POLICIES
        ):
            return dict(config, config=dict(inner, name=dtype))
    return {k: _recast(v, dtype) for k, v in config.items()}


def cast_model(model, dtype):
    """A copy of `model` whose variables and computation are `dtype`.

    The architecture is rebuilt with every layer's dtype policy `dtype`
    (the output layers of `FLOAT32_LAYERS` stay float32), and each weight
    is the original's, rounded. Layer normalization and softmax compute
    in float32 inside Keras' layers whatever their policy.

    Args:
        model: a float32 (or mixed-precision) `keras.Model`.
        dtype: "bfloat16" or "float16".

    Raises:
        ExportError: an int8-quantized model, or variables the copy lacks.
    """
    import keras

    config = keras.saving.serialize_keras_object(model)
    new = keras.saving.deserialize_keras_object(_recast(config, dtype))
    old = {v.path: v for v in model.variables}
    for variable in new.variables:
        if "seed_generator" in variable.path:
            continue  # dropout's seed state: a process-wide counter path
        if variable.path not in old:
            raise ExportError(
                f"The {dtype} copy of the model has a variable the model "
                f"lacks: {variable.path}"
            )
        variable.assign(keras.ops.cast(old[variable.path], variable.dtype))
    return new


# Settings an inference object may hold itself (and override the
# metadata's with, e.g. `Translator(..., max_length=32)`).
_OBJECT_SETTINGS = ("max_length", "class_names", "sequence_length")


def source_task(source):
    """The task of a model directory path or an inference object.

    Args:
        source: str / path-like, or an object with `.metadata` (and
            optionally `.task`).

    Returns:
        str, the task name.
    """
    if isinstance(source, (str, os.PathLike)):
        return model_dir_lib.read_metadata(os.fspath(source))["task"]
    metadata = _object_metadata(source)
    task = metadata.get("task") or getattr(source, "task", None)
    if not task:
        raise ExportError(
            "`source` must be a model directory or an object whose "
            "`.metadata` has a 'task'. Received: source of type "
            f"{type(source).__name__} without a task"
        )
    return task


def _object_metadata(source):
    for name in ("model", "tokenizer"):
        if not hasattr(source, name):
            raise ExportError(
                "`source` must be a model directory path or an object with "
                f"`.model`, `.tokenizer` and `.metadata`. Received: source "
                f"of type {type(source).__name__} without `.{name}`"
            )
    return dict(getattr(source, "metadata", None) or {})


def open_source(source, task, dtype=None):
    """Opens a model directory or reads an inference object.

    Args:
        source: a model directory path, or an object with `.model`,
            `.tokenizer` and `.metadata`.
        task: str, the task the exporter handles.
        dtype: None (default) or one of `EXPORT_DTYPES`: the model is then
            `cast_model`'s copy.

    Returns:
        A `Source`.

    Raises:
        keras_transformer.model_dir.ModelDirectoryError: a directory that
            is missing, unfinished or of another task.
        ExportError: an object of another task, or a bad `dtype`.
    """
    dtype = check_dtype(dtype)
    source = _open(source, task)
    if dtype is None:
        return source
    if source.inference.get("quantization"):
        raise ExportError(
            f"`dtype={dtype!r}` casts float32 weights; this model is "
            f"{source.inference['quantization']}-quantized. Export it "
            "without `dtype`, or cast its float32 directory."
        )
    source.model = cast_model(source.model, dtype)
    source.inference["dtype"] = dtype
    return source


def _open(source, task):
    if isinstance(source, (str, os.PathLike)):
        metadata, model, tokenizer = model_dir_lib.open_model_dir(
            os.fspath(source), task
        )
        inference = dict(metadata.get("inference") or {})
        return Source(model, tokenizer, metadata, task, inference)
    metadata = _object_metadata(source)
    found = source_task(source)
    if found != task:
        raise ExportError(
            f"This exporter takes a {task!r} model. Received: a {found!r} "
            f"{type(source).__name__}"
        )
    inference = dict(metadata.get("inference") or {})
    for name in _OBJECT_SETTINGS:
        value = getattr(source, name, None)
        if value is not None:
            inference[name] = value
    return Source(source.model, source.tokenizer, metadata, task, inference)


def validate_version_dir(output):
    """Checks `output` is `.../NAME/VERSION` with an integer VERSION.

    TF Serving loads the highest integer-named subdirectory of a model base
    path, so the last path component must be a positive integer.

    Args:
        output: str or path-like, the export destination.

    Returns:
        The absolute path.

    Example:
    >>> from keras_transformer.export import validate_version_dir
    >>> validate_version_dir("/tmp/saved_models/genre/1")
    '/tmp/saved_models/genre/1'
    """
    output = os.path.abspath(os.fspath(output))
    version = os.path.basename(output)
    if not version.isdigit() or int(version) <= 0:
        raise ExportError(
            "The export path must end in a positive integer version "
            "directory, as TF Serving expects (e.g. saved_models/NAME/1). "
            f"Received: output={output}"
        )
    return output


def check_export_destination(output, overwrite=False):
    """Validates `.../NAME/VERSION` and refuses an existing version.

    Exporters call it before their slow loading and tracing, and
    `export_saved_model` again before writing.

    Args:
        output: str or path-like, the export destination.
        overwrite: bool, default False. Accept an existing version.

    Returns:
        The absolute export path.
    """
    output = validate_version_dir(output)
    if os.path.exists(output) and not overwrite:
        raise ExportError(
            f"{output} already exists; TF Serving versions are immutable. "
            "Export to a new version number or pass overwrite=True "
            "(`--overwrite`)."
        )
    return output


def export_saved_model(module, output, signatures, overwrite=False):
    """Saves a `tf.Module` as a SavedModel at `output`, atomically.

    Args:
        module: the `tf.Module` holding the signatures' functions (and
            any lookup resources); the variables the signatures capture
            are tracked here.
        output: str, `.../NAME/VERSION`.
        signatures: dict of signature name -> concrete function (or a
            `tf.function` with an `input_signature`).
        overwrite: bool, default False. Replace an existing version.

    Returns:
        The absolute export path.
    """
    import tensorflow as tf

    output = check_export_destination(output, overwrite)
    # Track the raw `tf.Variable`s the signatures capture, as Keras' own
    # `ExportArchive` does. Tracking only the Keras variable wrappers gives
    # a SavedModel that TF2's `tf.saved_model.load` restores but the C++ /
    # TF1 session loader of TF Serving and `saved_model_cli run` does not
    # ("Could not find variable ..."): their restore op never writes the
    # resources the graph reads.
    captured, seen = [], set()
    for function in signatures.values():
        if not hasattr(function, "variables"):  # a `tf.function`
            function = function.get_concrete_function()
        for variable in function.variables:
            if id(variable) not in seen:
                seen.add(id(variable))
                captured.append(variable)
    module._serving_variables = captured
    with model_dir_lib.atomic_directory(output, overwrite=overwrite) as tmp:
        tf.saved_model.save(module, tmp, signatures=signatures)
    return output
