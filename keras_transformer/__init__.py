"""keras_transformer: Transformer layers and applications for Keras 3."""

__version__ = "0.1.0"

from keras_transformer import (
    layers,  # noqa: E402
    losses,  # noqa: E402
    metrics,  # noqa: E402
    optimizers,  # noqa: E402
    schedules,  # noqa: E402
)

__all__ = ["layers", "losses", "metrics", "optimizers", "schedules"]
