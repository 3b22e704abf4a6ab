"""SavedModel export for TF Serving: raw strings in, strings/scores out.

`export_model(source, output)` writes the SavedModel of a model directory
(or of an inference object: anything with `.model`, `.tokenizer` and
`.metadata`), choosing the exporter by `metadata["task"]`:

- "translation": `export_translation` (`serving_default`, `translate_ids`,
  `generate`, `beam_search`).
- "gpt": `export_gpt` (`serving_default`, `generate`).
- "classifier": `export_classifier` (`serving_default`), ensembles too.

`output` is TF Serving's `.../NAME/VERSION` with VERSION a positive
integer; an existing version is refused unless `overwrite=True`, and the
SavedModel is written to a temporary directory and renamed into place.
`dtype="bfloat16"` or `"float16"` exports a copy of the model whose weights
and computation are in that type (about half the size); probabilities come
out in float32 (`common.cast_model`).
The signatures are documented in `serving/README.md`.

Example:
>>> from keras_transformer.export import export_model
>>> export_model("runs/genre", "saved_models/genre/1")  # doctest: +SKIP
"""

from keras_transformer.export.classifier import export_classifier
from keras_transformer.export.common import (
    EXPORT_DTYPES,
    ExportError,
    cast_model,
    check_dtype,
    check_export_destination,
    export_saved_model,
    source_task,
    validate_version_dir,
)
from keras_transformer.export.gpt import export_gpt
from keras_transformer.export.translation import export_translation

EXPORTERS = {
    "translation": export_translation,
    "gpt": export_gpt,
    "classifier": export_classifier,
}


def export_model(source, output, overwrite=False, dtype=None, **options):
    """Exports a model directory or an inference object as a SavedModel.

    Args:
        source: str, a model directory, or an object with `.model`,
            `.tokenizer` and `.metadata` (a `keras_transformer.inference`
            object).
        output: str, the versioned destination `.../NAME/VERSION`.
        overwrite: bool, default False. Replace an existing version.
        dtype: None (default: the model's), or one of `EXPORT_DTYPES`
            ("float32", "bfloat16", "float16").
        **options: passed to the task's exporter
            (`default_max_new_tokens` of `export_gpt`).

    Returns:
        The absolute export path.

    Raises:
        ExportError: a bad destination, or a task without an exporter
            ("bert-pretrain").
        keras_transformer.model_dir.ModelDirectoryError: a missing or
            unfinished model directory.

    Example:
    >>> from keras_transformer.export import export_model
    >>> export_model("runs/gpt", "saved_models/gpt/1",
    ...              default_max_new_tokens=32)  # doctest: +SKIP
    """
    # Refuse a bad destination before reading anything.
    check_export_destination(output, overwrite)
    check_dtype(dtype)
    task = source_task(source)
    if task not in EXPORTERS:
        raise ExportError(
            f"A {task!r} model has no SavedModel export; export a model of "
            f"one of the tasks {sorted(EXPORTERS)}. Received: a {task!r} "
            "source"
        )
    return EXPORTERS[task](
        source, output, overwrite=overwrite, dtype=dtype, **options
    )


__all__ = [
    "EXPORTERS",
    "EXPORT_DTYPES",
    "cast_model",
    "ExportError",
    "check_export_destination",
    "export_classifier",
    "export_gpt",
    "export_model",
    "export_saved_model",
    "export_translation",
    "source_task",
    "validate_version_dir",
]
