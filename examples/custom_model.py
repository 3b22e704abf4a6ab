"""Build your own model from keras_transformer layers.

A small functional model (embedding -> 2 encoder blocks -> pooling -> dense)
learns a toy task from a `tf.data.Dataset`: does the sequence contain the
token 7? It is trained with `model.fit`, saved as `.keras`, and reloaded
without `custom_objects`.

    python examples/custom_model.py --epochs 3 --output /tmp/custom.keras
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_transformer  # noqa: E402
from keras_transformer import layers  # noqa: E402

VOCAB, LENGTH = 20, 16


def make_dataset(num_examples, seed, batch_size=32):
    """Random sequences with trailing padding (id 0); label: contains a 7."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, VOCAB, size=(num_examples, LENGTH))
    lengths = rng.integers(4, LENGTH + 1, size=num_examples)
    ids[np.arange(LENGTH)[None, :] >= lengths[:, None]] = 0
    labels = (ids == 7).any(axis=1).astype("int32")
    return (
        tf.data.Dataset.from_tensor_slices((ids.astype("int32"), labels))
        .shuffle(num_examples, seed=seed)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )


def build_model():
    # Inputs.
    token_ids = keras.Input((LENGTH,), dtype="int32", name="token_ids")
    # Layers: the mask from id 0 flows into the encoder blocks implicitly.
    x = layers.TokenAndPositionEmbedding(
        VOCAB, LENGTH, 32, position="sinusoidal", name="embedding"
    )(token_ids)
    for i in range(2):
        x = layers.TransformerEncoder(
            64, num_heads=4, dropout=0.1, name=f"encoder_{i}"
        )(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    # Outputs.
    probability = keras.layers.Dense(1, activation="sigmoid", name="head")(x)
    return keras.Model(token_ids, probability, name="contains_seven")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--examples", type=int, default=4000)
    parser.add_argument("--output", default="custom_model.keras")
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(0)
    model = build_model()
    model.compile(
        optimizer=keras_transformer.optimizers.transformer_adam(
            hidden_dim=32, warmup_steps=100
        ),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    train = make_dataset(args.examples, seed=1)
    valid = make_dataset(500, seed=2)
    model.fit(train, validation_data=valid, epochs=args.epochs, verbose=2)
    _, accuracy = model.evaluate(valid, verbose=0)
    model.save(args.output)
    reloaded = keras.saving.load_model(args.output)
    batch = next(iter(valid))[0]
    same = np.allclose(
        model.predict(batch, verbose=0),
        reloaded.predict(batch, verbose=0),
        atol=1e-6,
    )
    print(f"validation accuracy {accuracy:.3f}; reloaded model agrees: {same}")
    return accuracy, same


if __name__ == "__main__":
    main()
