"""float16 weight files, keyed by variable path (half the bytes of float32).

Used to ship pretrained weights inside the package and to move weights off a
machine with a file-size limit; written atomically through
`keras_transformer.model_dir.atomic_write_bytes`.
"""

import io

from keras_transformer.model_dir import atomic_write_bytes


def save_float16_weights(model, prefix, max_file_bytes=None):
    """Writes a model's weights in float16, keyed by variable path.

    Half the bytes of float32, for shipping pretrained weights; the rounding
    (relative error at most 2**-11) is far below what fine-tuning changes.

    Args:
        model: a built Keras model.
        prefix: str, path without extension; writes `prefix.npz`, or with
            `max_file_bytes` `prefix-0.npz`, `prefix-1.npz`, ...
        max_file_bytes: None (default) or int: split into files of at most
            about this size.

    Returns:
        The list of files written.
    """
    import keras
    import numpy as np

    parts, part, size = [], {}, 0
    for variable in model.weights:
        value = np.asarray(keras.ops.convert_to_numpy(variable), np.float16)
        if part and max_file_bytes and size + value.nbytes > max_file_bytes:
            parts.append(part)
            part, size = {}, 0
        part[variable.path] = value
        size += value.nbytes
    parts.append(part)
    files = []
    for i, arrays in enumerate(parts):
        path = f"{prefix}-{i}.npz" if max_file_bytes else f"{prefix}.npz"
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(path, buffer.getvalue())
        files.append(path)
    return files


def load_float16_weights(model, files):
    """Loads weights written by `save_float16_weights` into `model`.

    Args:
        model: a model built with the same layers (variable paths).
        files: the files `save_float16_weights` returned, in any order.

    Raises:
        ValueError: a variable of the model is missing from the files or
            has another shape there.
    """
    import numpy as np

    values = {}
    for path in files:
        with np.load(path) as arrays:
            values.update({k: arrays[k] for k in arrays.files})
    missing = [v.path for v in model.weights if v.path not in values]
    if missing:
        raise ValueError(
            f"{len(missing)} weights of model {model.name!r} are not in "
            f"{list(files)} (first: {missing[0]!r}); were they written from "
            "a model with the same architecture?"
        )
    for variable in model.weights:
        value = values[variable.path]
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(
                f"Weight {variable.path!r} has shape {tuple(value.shape)} "
                f"in {list(files)} but {tuple(variable.shape)} in model "
                f"{model.name!r}."
            )
        variable.assign(value.astype(variable.dtype))
