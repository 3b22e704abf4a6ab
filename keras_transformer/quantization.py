"""int8 weight quantization of model directories.

`quantize_model_dir(DIR, DIR2)` (`keras-transformer quantize --model DIR
--output DIR2`) writes a copy of a translation, GPT or classifier
directory whose `Dense`, `EinsumDense` and `Embedding` kernels are int8
with one float32 scale per output channel (Keras `model.quantize("int8")`):
about a quarter of the weight bytes. The tied output projection of the
translation and GPT models reads the same int8 table
(`TokenAndPositionEmbedding` divides by each row's scale). Layer norms,
biases and position tables stay float32.

The copy is an ordinary model directory: `keras_transformer.load`,
`translate`, `generate`, `classify`, `evaluate` and `export` take it as
they take the original. Its metadata says `inference.quantization:
"int8"` and names the original as `parent`; `model_dir.load_model` reads
that and quantizes the rebuilt architecture before loading the int8
weights (a plain `keras.saving.load_model` cannot: our composite layers
create their inner layers in float32).
"""

import os
import shutil

from keras_transformer import model_dir as model_dir_lib
from keras_transformer._quantize import (
    QUANTIZATION_MODES,  # noqa: F401
    _check_mode,
    load_quantized_model,  # noqa: F401
    quantize_model,
)


def quantize_model_dir(model_dir, output, mode="int8", overwrite=False):
    """Writes an int8 copy of a model directory.

    Args:
        model_dir: str, a translation, GPT or classifier directory.
        output: str, the new directory (written atomically; the original
            is not touched).
        mode: str, default "int8". One of `QUANTIZATION_MODES`.
        overwrite: bool, default False. Replace an existing `output`.

    Returns:
        The output directory, str.

    Example:
    >>> from keras_transformer.quantization import quantize_model_dir
    >>> quantize_model_dir("runs/en-es", "runs/en-es-int8")  # doctest: +SKIP
    'runs/en-es-int8'
    """
    _check_mode(mode)
    model_dir = os.path.abspath(os.fspath(model_dir))
    output = os.fspath(output)
    metadata = model_dir_lib.read_metadata(
        model_dir, ("translation", "gpt", "classifier")
    )
    if metadata["inference"].get("quantization"):
        raise ValueError(
            f"{model_dir} is already quantized "
            f"({metadata['inference']['quantization']}); quantize the "
            "original directory instead."
        )
    if os.path.abspath(output) == model_dir:
        raise ValueError(
            "`output` must differ from the model directory; the original "
            f"is kept. Received: output={output!r}"
        )
    model_dir_lib.check_files(model_dir)
    model = model_dir_lib.load_model(model_dir, metadata)
    if not quantize_model(model, mode):
        raise ValueError(f"{model_dir} has no layer that {mode} applies to.")
    metadata = dict(metadata)
    metadata["inference"] = dict(metadata["inference"], quantization=mode)
    metadata["parent"] = model_dir
    metadata["metrics"] = {}  # the original's figures; evaluate this copy
    with model_dir_lib.atomic_directory(output, overwrite=overwrite) as tmp:
        shutil.copyfile(
            os.path.join(model_dir, model_dir_lib.TOKENIZER_FILE),
            os.path.join(tmp, model_dir_lib.TOKENIZER_FILE),
        )
        model_dir_lib.atomic_save_model(
            model, os.path.join(tmp, model_dir_lib.MODEL_FILE)
        )
        model_dir_lib.write_metadata(tmp, metadata, final_dir=output)
    return output
