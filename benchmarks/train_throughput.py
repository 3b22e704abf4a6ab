"""Training throughput of an encoder-decoder: keras_transformer vs KerasHub.

Both models: vocabulary 8000, hidden_dim 256, 4 heads, feed-forward 1024, 4+4
layers, sequences of 64, batch 32, trained with `model.fit` on the same
`tf.data` pipeline, XLA-compiled, with the same masked loss and Adam. The
runs alternate after a warm-up; medians of several repeats are reported as
target tokens per second, with model FLOPs utilisation against a matmul peak
measured in the same process.

    python -m benchmarks.train_throughput [--steps 10] [--repeats 3]
"""

import argparse
import os
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks import common  # noqa: E402
from keras_transformer import layers as kt_layers  # noqa: E402
from keras_transformer.losses import (  # noqa: E402
    MaskedSparseCategoricalCrossentropy,
)


def build_ours(cfg):
    enc_ids = keras.Input((cfg["length"],), dtype="int32", name="enc")
    dec_ids = keras.Input((cfg["length"],), dtype="int32", name="dec")
    x = kt_layers.TokenAndPositionEmbedding(
        cfg["vocab"], cfg["length"], cfg["dim"]
    )(enc_ids)
    for _ in range(cfg["layers"]):
        x = kt_layers.TransformerEncoder(cfg["ff"], cfg["heads"])(x)
    y = kt_layers.TokenAndPositionEmbedding(
        cfg["vocab"], cfg["length"], cfg["dim"]
    )(dec_ids)
    for _ in range(cfg["layers"]):
        y = kt_layers.TransformerDecoder(cfg["ff"], cfg["heads"])(y, x)
    logits = keras.layers.Dense(cfg["vocab"], dtype="float32")(y)
    return keras.Model({"enc": enc_ids, "dec": dec_ids}, logits)


def build_keras_hub(cfg):
    import keras_hub

    enc_ids = keras.Input((cfg["length"],), dtype="int32", name="enc")
    dec_ids = keras.Input((cfg["length"],), dtype="int32", name="dec")
    x = keras_hub.layers.TokenAndPositionEmbedding(
        cfg["vocab"], cfg["length"], cfg["dim"], mask_zero=True
    )(enc_ids)
    for _ in range(cfg["layers"]):
        x = keras_hub.layers.TransformerEncoder(cfg["ff"], cfg["heads"])(x)
    y = keras_hub.layers.TokenAndPositionEmbedding(
        cfg["vocab"], cfg["length"], cfg["dim"], mask_zero=True
    )(dec_ids)
    for _ in range(cfg["layers"]):
        y = keras_hub.layers.TransformerDecoder(cfg["ff"], cfg["heads"])(y, x)
    logits = keras.layers.Dense(cfg["vocab"], dtype="float32")(y)
    return keras.Model({"enc": enc_ids, "dec": dec_ids}, logits)


def make_dataset(cfg, num_batches=16, seed=0):
    """Random token ids with realistic padding (lengths 50-100% of max)."""
    rng = np.random.default_rng(seed)
    n = cfg["batch"] * num_batches

    def ids():
        x = rng.integers(1, cfg["vocab"], size=(n, cfg["length"]))
        lengths = rng.integers(cfg["length"] // 2, cfg["length"] + 1, n)
        x[np.arange(cfg["length"])[None] >= lengths[:, None]] = 0
        return x.astype("int32")

    enc, dec = ids(), ids()
    labels = np.concatenate([dec[:, 1:], np.zeros((n, 1), "int32")], 1)
    real_tokens = float((labels != 0).sum()) / num_batches
    ds = (
        tf.data.Dataset.from_tensor_slices(({"enc": enc, "dec": dec}, labels))
        .batch(cfg["batch"], drop_remainder=True)
        .cache()
        .repeat()
        .prefetch(tf.data.AUTOTUNE)
    )
    return ds, real_tokens


def training_flops_per_step(cfg):
    """Matmul FLOPs of one training step (forward x 3), padding included."""
    b, t, d, f, v = (cfg[k] for k in ("batch", "length", "dim", "ff", "vocab"))
    n = cfg["layers"]
    tokens = b * t
    encoder = n * (2 * tokens * (4 * d * d + 2 * d * f) + 4 * b * t * t * d)
    decoder = n * (
        2 * tokens * (4 * d * d + 2 * d * d + 2 * d * f)  # self, q+out, ffn
        + 2 * tokens * 2 * d * d  # cross-attention keys/values
        + 8 * b * t * t * d  # self and cross attention scores/context
    )
    output = 2 * tokens * d * v
    return 3 * (encoder + decoder + output)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--tiny", action="store_true", help="small sizes (smoke test)"
    )
    args = parser.parse_args(argv)
    cfg = dict(
        vocab=8000, dim=256, heads=4, ff=1024, layers=4, length=64, batch=32
    )
    if args.tiny:
        cfg = dict(
            vocab=200, dim=32, heads=2, ff=64, layers=1, length=16, batch=8
        )
    keras.utils.set_random_seed(0)
    ds, real_tokens = make_dataset(cfg)
    models = {}
    for name, build in (
        ("keras_transformer", build_ours),
        ("keras_hub", build_keras_hub),
    ):
        model = build(cfg)
        model.compile(
            optimizer=keras.optimizers.Adam(1e-4),
            loss=MaskedSparseCategoricalCrossentropy(),
            jit_compile=True,
        )
        model.fit(ds, steps_per_epoch=2, epochs=1, verbose=0)  # warm-up
        models[name] = model

    def runner(model):
        return lambda: model.fit(
            ds, steps_per_epoch=args.steps, epochs=1, verbose=0
        )

    peak = common.measure_matmul_peak()
    times = common.alternate(
        {name: runner(m) for name, m in models.items()}, args.repeats
    )
    flops = training_flops_per_step(cfg)
    rows = []
    for name, seconds in times.items():
        step = statistics.median(seconds) / args.steps
        rows.append(
            {
                "implementation": name,
                "params": models[name].count_params(),
                "step_ms": 1000 * step,
                "target_tokens_per_s": real_tokens / step,
                "model_gflops_per_s": flops / step / 1e9,
                "mfu": flops / step / 1e9 / peak,
            }
        )
    ratio = rows[0]["target_tokens_per_s"] / rows[1]["target_tokens_per_s"]
    common.print_table(
        f"Training throughput (matmul peak {peak:.0f} GFLOP/s; "
        f"ours/KerasHub = {ratio:.2f}x)",
        rows,
        list(rows[0]),
    )
    path = common.write_results(
        "train_throughput" + ("_tiny" if args.tiny else ""),
        {
            "config": cfg,
            "steps": args.steps,
            "repeats": args.repeats,
            "matmul_peak_gflops": peak,
            "rows": rows,
            "ratio_ours_over_keras_hub": ratio,
            "raw_seconds": times,
        },
    )
    print(f"wrote {path}")
    return ratio


if __name__ == "__main__":
    main()
