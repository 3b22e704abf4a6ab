"""Shared SavedModel writing: TF Serving layout, atomic, no silent overwrite."""

import os

from keras_transformer.training import atomic_directory


class ExportError(ValueError):
    """The export destination or model cannot be exported as asked."""


def validate_version_dir(output):
    """Checks `output` is `.../NAME/VERSION` with an integer VERSION.

    TF Serving loads the highest integer-named subdirectory of a model base
    path, so the last path component must be a positive integer.

    Returns:
        The absolute path.
    """
    output = os.path.abspath(output)
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

    Returns:
        The absolute export path.
    """
    output = validate_version_dir(output)
    if os.path.exists(output) and not overwrite:
        raise ExportError(
            f"{output} already exists; TF Serving versions are immutable. "
            "Export to a new version number or pass --overwrite."
        )
    return output


def export_saved_model(module, output, signatures, overwrite=False):
    """Saves a `tf.Module` as a SavedModel at `output`, atomically.

    Args:
        module: the `tf.Module` holding the signatures' functions (and
            any lookup resources); the variables the signatures capture
            are tracked here.
        output: `.../NAME/VERSION`.
        signatures: dict of signature name -> concrete function (or a
            `tf.function` with an `input_signature`).
        overwrite: replace an existing version.

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
    with atomic_directory(output, overwrite=overwrite) as tmp:
        tf.saved_model.save(module, tmp, signatures=signatures)
    return output
