"""Training pieces: distribution and mixed precision, callbacks, plots.

- `keras_transformer.training.distribute`: `distribution_strategy`,
  `scale_scope`, `set_mixed_precision`, `fit`.
- `keras_transformer.training.callbacks`: `TimeBudget`,
  `AtomicBackupAndRestore`, `AtomicBestCheckpoint`, `ThroughputMeter`,
  `TextSamples`, `AttentionMapLogger`, `standard_callbacks`.
- `keras_transformer.training.plots`: attention maps, confusion matrices and
  learning curves as PNG (the only matplotlib user).

The model directory (file names, metadata, atomic writes, float16 weight
files) is `keras_transformer.model_dir`.
"""

from keras_transformer.training.callbacks import (
    AtomicBackupAndRestore,
    AtomicBestCheckpoint,
    AttentionMapLogger,
    ProgressBar,
    TextSamples,
    ThroughputMeter,
    TimeBudget,
    standard_callbacks,
)
from keras_transformer.training.distribute import (
    PRECISIONS,
    STRATEGIES,
    distribution_strategy,
    fit,
    scale_scope,
    set_mixed_precision,
)
from keras_transformer.training.plots import (
    attention_maps,
    plot_confusion_matrix,
    plot_learning_curves,
    render_attention_png,
)

__all__ = [
    "PRECISIONS",
    "STRATEGIES",
    "AtomicBackupAndRestore",
    "AtomicBestCheckpoint",
    "AttentionMapLogger",
    "ProgressBar",
    "TextSamples",
    "ThroughputMeter",
    "TimeBudget",
    "attention_maps",
    "distribution_strategy",
    "fit",
    "plot_confusion_matrix",
    "plot_learning_curves",
    "render_attention_png",
    "scale_scope",
    "set_mixed_precision",
    "standard_callbacks",
]
