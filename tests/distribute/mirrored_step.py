"""Runs one training step with or without MirroredStrategy; prints JSON.

Usage: python mirrored_step.py {single,mirrored}. Run in its own process:
logical CPU devices must be configured before TensorFlow starts.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_transformer import layers  # noqa: E402
from keras_transformer.losses import (  # noqa: E402
    MaskedSparseCategoricalCrossentropy,
)
from keras_transformer.metrics import MaskedAccuracy  # noqa: E402


def build():
    ids = keras.Input((8,), dtype="int32")
    x = layers.TokenAndPositionEmbedding(30, 8, 16)(ids)
    x = layers.TransformerDecoder(32, 2)(x)
    logits = keras.layers.Dense(30)(x)
    model = keras.Model(ids, logits)
    model.compile(
        keras.optimizers.SGD(0.5),
        MaskedSparseCategoricalCrossentropy(),
        metrics=[MaskedAccuracy()],
    )
    return model


def main(mode):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 30, size=(8, 8)).astype("int32")
    # Uneven padding: the two replicas see different token counts.
    ids[:4, 3:] = 0
    labels = np.roll(ids, -1, axis=1)
    labels[ids == 0] = 0
    if mode == "mirrored":
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    else:
        strategy = tf.distribute.get_strategy()
    with strategy.scope():
        model = build()
    weights = build().get_weights()  # same seed -> same initial weights
    model.set_weights(weights)
    ds = tf.data.Dataset.from_tensor_slices((ids, labels)).batch(8)
    history = model.fit(ds, epochs=2, verbose=0, shuffle=False)
    print(
        json.dumps(
            {
                "replicas": strategy.num_replicas_in_sync,
                "loss": history.history["loss"],
                "kernel_sum": float(
                    sum(np.abs(w).sum() for w in model.get_weights())
                ),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
