"""keras_transformer: Transformer layers and applications for Keras 3."""

__version__ = "0.1.0"

from keras_transformer import layers  # noqa: E402
from keras_transformer import losses  # noqa: E402
from keras_transformer import metrics  # noqa: E402
from keras_transformer import optimizers  # noqa: E402
from keras_transformer import schedules  # noqa: E402

__all__ = ["layers", "losses", "metrics", "optimizers", "schedules"]
