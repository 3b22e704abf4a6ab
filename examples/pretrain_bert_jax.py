"""Masked-LM pretraining of the BERT encoder on a JAX machine without TF.

`keras-transformer train bert-pretrain` runs on TensorFlow (its tokenizer
and masking run in tf.data). The model itself is backend-agnostic Keras, so
a GPU or TPU machine that has JAX but no TensorFlow can do the expensive
part, the pretraining, once; the TensorFlow side then fine-tunes, serves and
exports as usual. Three steps:

    # 1. TensorFlow side: train the tokenizer, write token ids (numpy).
    python examples/pretrain_bert_jax.py prepare --data /tmp/mlm_data

    # 2. JAX side (no TensorFlow needed): pretrain, write the weights.
    KERAS_BACKEND=jax python examples/pretrain_bert_jax.py train \\
        --data /tmp/mlm_data --output /tmp/mlm_run --preset small \\
        --minutes 7

    # 3. TensorFlow side: make a `bert-pretrain` model directory.
    python examples/pretrain_bert_jax.py package --data /tmp/mlm_data \\
        --run /tmp/mlm_run --output runs/bert-pretrained

    keras-transformer train classifier --pretrained runs/bert-pretrained \\
        --output runs/genre

By default the text is the bundled genre task's train split (the test
verses are never seen); `--train-file` takes one text per line instead.
Masking follows `keras_transformer.data.masked_lm.mask_tokens` (15% of the
pieces, at most `default_max_predictions(T)` per row, 80% [MASK], 10% a
random piece, 10% unchanged), done here in numpy with fresh masks every
pass; batches group verses of similar length.
"""

import argparse
import glob
import json
import os
import sys
import time

import numpy as np

try:
    import keras_transformer  # noqa: F401
except ImportError:  # run from a checkout without installing: use it
    sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))

IDS_FILE = "ids.npz"
INFO_FILE = "info.json"
WEIGHTS_FILE = "model.weights.h5"
HALF_WEIGHTS_PREFIX = "weights16"
HISTORY_FILE = "history.json"
WIDTHS = (16, 24, 32, 48, 64, 96, 128)


# ---------------------------------------------------------------------------
# Step 1 (TensorFlow): tokenizer and ids.


def prepare(
    data, vocabulary_size=10000, sequence_length=128, seed=0, train_file=None
):
    """Trains the tokenizer and writes `[CLS] ids [SEP]` rows as numpy."""
    import tensorflow as tf

    from keras_transformer import model_dir
    from keras_transformer.data import load_bundled_genre, read_text_files
    from keras_transformer.data.bert import (
        USER_SYMBOLS,
        _mask_token_id,
        _wrap,
        first_text_piece_id,
    )
    from keras_transformer.tasks._common import tokenizer_or_resume

    os.makedirs(data, exist_ok=True)
    if train_file is None:
        texts = load_bundled_genre("train")[0]
        valid = load_bundled_genre("valid")[0]
        source = "bundled genre task, train split (valid split for validation)"
    else:
        texts = [t for t in read_text_files([train_file]) if t.strip()]
        valid = texts[::20]
        texts = [t for i, t in enumerate(texts) if i % 20]
        source = f"{train_file} (every 20th line held out)"
    tokenizer = tokenizer_or_resume(
        data, texts, vocabulary_size, seed, user_defined_symbols=USER_SYMBOLS
    )
    arrays = {}
    for split, lines in (("train", texts), ("valid", valid)):
        ids = _wrap(
            tokenizer.tokenize(tf.constant(lines)), tokenizer, sequence_length
        )
        arrays[f"{split}_values"] = ids.flat_values.numpy().astype(np.int32)
        arrays[f"{split}_lengths"] = ids.row_lengths().numpy().astype(np.int32)
    np.savez_compressed(os.path.join(data, IDS_FILE), **arrays)
    info = {
        "vocabulary_size": tokenizer.vocabulary_size,
        "sequence_length": sequence_length,
        "mask_token_id": _mask_token_id(tokenizer),
        "unselectable_ids": [0, tokenizer.start_id, tokenizer.end_id],
        "random_token_min_id": first_text_piece_id(tokenizer),
        "train_texts": len(texts),
        "valid_texts": len(valid),
        "source": source,
        "seed": seed,
    }
    model_dir.write_json_atomic(os.path.join(data, INFO_FILE), info)
    return info


# ---------------------------------------------------------------------------
# Step 2 (any backend, numpy data): masking, batching, training.


def _rows(values, lengths):
    ends = np.cumsum(lengths)
    return [values[e - n : e] for e, n in zip(ends, lengths)]


def _width(length, widths=WIDTHS):
    for width in widths:
        if length <= width:
            return width
    return widths[-1]


def mask_batch(ids, rng, info, mask_rate=0.15, max_predictions=None):
    """numpy twin of `keras_transformer.data.masked_lm.mask_tokens`.

    Args:
        ids: int32 [B, T] padded with 0.
        rng: a `np.random.Generator`.
        info: the dict `prepare` wrote (mask id, special ids, vocabulary).
        mask_rate: selection probability of each selectable piece.
        max_predictions: slots P per row; default
            `default_max_predictions(T, mask_rate)`.

    Returns:
        `(masked_ids [B, T], positions [B, P], labels [B, P],
        weights [B, P])`, unused slots at position 0 with label 0 and
        weight 0.
    """
    batch, length = ids.shape
    if max_predictions is None:
        max_predictions = int(-(-1.5 * mask_rate * length // 1)) + 2
    selectable = ~np.isin(ids, info["unselectable_ids"])
    draw = rng.random(ids.shape)
    selected = selectable & (draw < mask_rate)
    # A uniform choice of at most P selected positions, ascending.
    score = np.where(selected, 1.0 - draw, -1.0)
    k = min(length, max_predictions)
    top = np.argsort(-score, axis=1, kind="stable")[:, :k]
    used = np.take_along_axis(score, top, axis=1) > 0
    positions = np.where(used, top, length + max_predictions)
    positions = np.sort(positions, axis=1)
    used = positions < length
    positions = np.where(used, positions, 0)
    pad = max_predictions - k
    positions = np.pad(positions, ((0, 0), (0, pad)))
    used = np.pad(used, ((0, 0), (0, pad)))
    original = np.take_along_axis(ids, positions, axis=1)
    labels = np.where(used, original, 0)
    choice = rng.random(positions.shape)
    random_ids = rng.integers(
        info["random_token_min_id"], info["vocabulary_size"], positions.shape
    )
    replacement = np.where(
        choice < 0.8,
        info["mask_token_id"],
        np.where(choice < 0.9, random_ids, original),
    )
    masked = ids.copy()
    rows = np.broadcast_to(np.arange(batch)[:, None], positions.shape)
    masked[rows[used], positions[used]] = replacement[used]
    return (
        masked.astype(np.int32),
        positions.astype(np.int32),
        labels.astype(np.int32),
        used.astype(np.float32),
    )


def _batches(rows, batch_size, rng, shuffle, widths=WIDTHS):
    """Lists of row indices, grouped by padded width."""
    by_width = {}
    for i, row in enumerate(rows):
        by_width.setdefault(_width(len(row), widths), []).append(i)
    batches = []
    for members in by_width.values():
        members = np.array(members)
        if shuffle:
            rng.shuffle(members)
        for start in range(0, len(members), batch_size):
            batches.append(members[start : start + batch_size])
    if shuffle:
        rng.shuffle(batches)
    return batches


def _masked_lm_data(rows, info, batch_size, seed, shuffle, widths=WIDTHS):
    """A `keras.utils.PyDataset` of masked batches (new masks every pass)."""
    import keras

    class MaskedBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.batches = _batches(rows, batch_size, self.rng, shuffle, widths)
            if not shuffle:  # fixed masks for validation
                self.fixed = [self._make(b) for b in self.batches]

        def __len__(self):
            return len(self.batches)

        def _make(self, members):
            width = _width(max(len(rows[i]) for i in members), widths)
            ids = np.zeros((len(members), width), np.int32)
            for j, i in enumerate(members):
                row = rows[i][:width]
                ids[j, : len(row)] = row
            masked, positions, labels, weights = mask_batch(ids, self.rng, info)
            features = {
                "token_ids": masked,
                "padding_mask": (ids != 0).astype(np.int32),
                "segment_ids": np.zeros_like(ids),
                "mask_positions": positions,
            }
            return features, labels, weights

        def __getitem__(self, index):
            if not shuffle:
                return self.fixed[index]
            return self._make(self.batches[index])

        def on_epoch_end(self):
            if shuffle:
                self.batches = _batches(
                    rows, batch_size, self.rng, True, widths
                )

    return MaskedBatches()


def backbone_arguments(preset, info):
    """`bert_backbone` kwargs from a preset name or a JSON dict string."""
    from keras_transformer.applications.presets import get_preset

    if preset.lstrip().startswith("{"):
        kwargs = json.loads(preset)
    else:
        kwargs = dict(get_preset("bert", preset))
    kwargs["vocabulary_size"] = info["vocabulary_size"]
    kwargs["max_sequence_length"] = max(
        kwargs.get("max_sequence_length", 0), info["sequence_length"]
    )
    return kwargs


def train(
    data,
    output,
    preset="small",
    minutes=5.0,
    batch_size=256,
    learning_rate=1e-3,
    warmup_steps=1000,
    validation_every=10,
    mixed_precision=False,
    widths=WIDTHS,
    half_copy=False,
    seed=0,
    verbose=2,
):
    """Pretrains `bert_masked_lm`; writes the best weights and a history."""
    import keras

    from keras_transformer import half_weights, model_dir, training
    from keras_transformer.tasks.pretrain import masked_lm_model

    with open(os.path.join(data, INFO_FILE)) as f:
        info = json.load(f)
    arrays = np.load(os.path.join(data, IDS_FILE))
    train_rows = _rows(arrays["train_values"], arrays["train_lengths"])
    valid_rows = _rows(arrays["valid_values"], arrays["valid_lengths"])
    os.makedirs(output, exist_ok=True)
    keras.utils.set_random_seed(seed)
    if mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    backbone = backbone_arguments(preset, info)
    model = masked_lm_model(backbone, learning_rate, warmup_steps)
    widths = tuple(sorted(widths))
    if widths[-1] < info["sequence_length"]:
        widths += (info["sequence_length"],)
    train_data = _masked_lm_data(
        train_rows, info, batch_size, seed, True, widths
    )
    valid_data = _masked_lm_data(
        valid_rows, info, batch_size, seed + 1, False, widths
    )
    weights_path = os.path.join(output, WEIGHTS_FILE)
    print(
        f"{keras.backend.backend()} backend, devices: "
        f"{_devices()}; {model.count_params():,} parameters; "
        f"{len(train_rows):,} texts, {len(train_data)} batches a pass",
        flush=True,
    )
    start = time.time()
    history = model.fit(
        train_data,
        epochs=1_000_000,
        validation_data=valid_data,
        validation_freq=validation_every,
        callbacks=[
            training.TimeBudget(minutes),
            keras.callbacks.ModelCheckpoint(
                weights_path,
                monitor="val_loss",
                save_best_only=True,
                save_weights_only=True,
            ),
        ],
        verbose=verbose,
    )
    seconds = time.time() - start
    # The last pass may have ended without validation: validate once more,
    # then keep whichever weights have the lower validation loss.
    final = model.evaluate(valid_data, verbose=0, return_dict=True)
    val_losses = history.history.get("val_loss", [])
    if not val_losses or final["loss"] < min(val_losses):
        model.save_weights(weights_path)
        kept = final
    else:
        model.load_weights(weights_path)
        kept = model.evaluate(valid_data, verbose=0, return_dict=True)
    if half_copy:
        half_weights.save_float16_weights(
            model, os.path.join(output, HALF_WEIGHTS_PREFIX), 15 * 2**20
        )
    steps = int(model.optimizer.iterations)
    record = {
        "backbone": backbone,
        "preset": preset,
        "steps": steps,
        "passes": len(history.history["loss"]),
        "seconds": round(seconds, 1),
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "warmup_steps": warmup_steps,
        "mixed_precision": mixed_precision,
        "backend": keras.backend.backend(),
        "devices": _devices(),
        "history": {
            k: [float(x) for x in v] for k, v in history.history.items()
        },
        "final_val": {k: float(v) for k, v in final.items()},
        "kept_val": {k: float(v) for k, v in kept.items()},
    }
    model_dir.write_json_atomic(os.path.join(output, HISTORY_FILE), record)
    print(
        json.dumps(
            {
                k: record[k]
                for k in ("steps", "passes", "seconds", "final_val", "kept_val")
            }
        )
    )
    return record


def _devices():
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return [str(d) for d in jax.devices()]
    return []


# ---------------------------------------------------------------------------
# Step 3 (TensorFlow): a `bert-pretrain` model directory.


def package(data, run, output):
    """Writes `output` as `keras-transformer train bert-pretrain` would."""
    from keras_transformer.applications.bert import bert_masked_lm

    from keras_transformer import half_weights, model_dir
    from keras_transformer.tasks.pretrain import write_pretrained_directory

    with open(os.path.join(data, INFO_FILE)) as f:
        info = json.load(f)
    with open(os.path.join(run, HISTORY_FILE)) as f:
        record = json.load(f)
    model = bert_masked_lm(record["backbone"])
    if os.path.exists(os.path.join(run, WEIGHTS_FILE)):
        model.load_weights(os.path.join(run, WEIGHTS_FILE))
    else:  # only the float16 copy came back
        parts = os.path.join(run, HALF_WEIGHTS_PREFIX + "-*.npz")
        half_weights.load_float16_weights(model, sorted(glob.glob(parts)))
    preset = record["preset"]
    return write_pretrained_directory(
        output,
        model,
        os.path.join(data, model_dir.TOKENIZER_FILE),
        config=record["backbone"],
        sequence_length=info["sequence_length"],
        settings={
            "preset": None if preset.lstrip().startswith("{") else preset,
            "mask_rate": 0.15,
            "batch_size": record["batch_size"],
            "learning_rate": record["learning_rate"],
            "warmup_steps": record["warmup_steps"],
            "mixed_precision": record["mixed_precision"],
            "pretrained_with": f"{record['backend']} on {record['devices']}",
        },
        data={"train": info["source"], "train_examples": info["train_texts"]},
        metrics={
            "val_loss": record["kept_val"]["loss"],
            "val_masked_accuracy": record["kept_val"].get("masked_accuracy"),
        },
        train_seconds=record["seconds"],
        steps=record["steps"],
    )


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    steps = parser.add_subparsers(dest="step", required=True)
    p = steps.add_parser("prepare", help="tokenizer and ids (TensorFlow)")
    p.add_argument("--data", required=True)
    p.add_argument("--train-file", default=None)
    p.add_argument("--vocabulary-size", type=int, default=10000)
    p.add_argument("--sequence-length", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    t = steps.add_parser("train", help="pretrain (any Keras backend)")
    t.add_argument("--data", required=True)
    t.add_argument("--output", required=True)
    t.add_argument(
        "--preset",
        default="small",
        help="a BERT preset name or a JSON dict of backbone kwargs",
    )
    t.add_argument("--minutes", type=float, default=5.0)
    t.add_argument("--batch-size", type=int, default=256)
    t.add_argument("--learning-rate", type=float, default=1e-3)
    t.add_argument("--warmup-steps", type=int, default=1000)
    t.add_argument("--validation-every", type=int, default=10)
    t.add_argument("--mixed-precision", action="store_true")
    t.add_argument(
        "--widths",
        default=",".join(map(str, WIDTHS)),
        help="padded batch widths, comma-separated",
    )
    t.add_argument(
        "--half-copy",
        action="store_true",
        help="also write the weights as float16 numpy parts",
    )
    t.add_argument("--seed", type=int, default=0)
    k = steps.add_parser("package", help="a bert-pretrain directory (TF)")
    k.add_argument("--data", required=True)
    k.add_argument("--run", required=True)
    k.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    if args.step == "prepare":
        print(
            prepare(
                args.data,
                args.vocabulary_size,
                args.sequence_length,
                args.seed,
                args.train_file,
            )
        )
    elif args.step == "train":
        train(
            args.data,
            args.output,
            args.preset,
            args.minutes,
            args.batch_size,
            args.learning_rate,
            args.warmup_steps,
            args.validation_every,
            args.mixed_precision,
            tuple(int(w) for w in args.widths.split(",")),
            args.half_copy,
            args.seed,
        )
    else:
        print(package(args.data, args.run, args.output))


if __name__ == "__main__":
    main()
