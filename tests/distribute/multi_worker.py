"""One worker of a 2-worker MultiWorkerMirroredStrategy run; prints JSON.

Usage: TF_CONFIG=... python multi_worker.py. Trains a tiny decoder for a few
steps on a fixed dataset and prints the final loss and a weight checksum.
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_transformer import layers  # noqa: E402
from keras_transformer.losses import (  # noqa: E402
    MaskedSparseCategoricalCrossentropy,
)
from keras_transformer.training import (  # noqa: E402
    distribution_strategy,
    fit,
)


def main():
    strategy = distribution_strategy("auto")
    keras.utils.set_random_seed(0)
    with strategy.scope():
        ids = keras.Input((8,), dtype="int32")
        x = layers.TokenAndPositionEmbedding(30, 8, 16)(ids)
        x = layers.TransformerDecoder(32, 2)(x)
        model = keras.Model(ids, keras.layers.Dense(30)(x))
        model.compile(
            keras.optimizers.Adam(1e-2), MaskedSparseCategoricalCrossentropy()
        )
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 30, size=(32, 8)).astype("int32")
    labels = np.roll(ids, -1, axis=1)
    ds = tf.data.Dataset.from_tensor_slices((ids, labels)).repeat().batch(8)
    history = fit(model, ds, strategy, epochs=3, steps_per_epoch=2, verbose=0)
    checksum = float(sum(np.abs(w).sum() for w in model.get_weights()))
    print(
        json.dumps(
            {
                "multi_worker": isinstance(
                    strategy, tf.distribute.MultiWorkerMirroredStrategy
                ),
                "replicas": strategy.num_replicas_in_sync,
                "loss": history.history["loss"],
                "checksum": checksum,
            }
        )
    )


if __name__ == "__main__":
    main()
