"""SavedModel export for TF Serving: raw strings in, strings/scores out."""

from keras_transformer.export.common import (
    ExportError,
    export_saved_model,
    validate_version_dir,
)

__all__ = ["ExportError", "export_saved_model", "validate_version_dir"]
