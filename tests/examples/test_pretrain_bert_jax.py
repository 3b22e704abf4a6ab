"""examples/pretrain_bert_jax.py: numpy masking, prepare -> train ->
package round trip, and training under JAX with TensorFlow unimportable."""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "pretrain_bert_jax.py"
TINY = {
    "num_layers": 1,
    "hidden_dim": 16,
    "num_heads": 2,
    "intermediate_dim": 32,
    "max_sequence_length": 64,
    "dropout": 0.1,
}
INFO = {
    "vocabulary_size": 500,
    "mask_token_id": 4,
    "unselectable_ids": [0, 2, 3],
    "random_token_min_id": 5,
}


def _load():
    spec = importlib.util.spec_from_file_location("pretrain_bert_jax", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = _load()


def _padded_rows(rng, batch=256, width=40):
    """[CLS] random pieces [SEP], then padding, rows of varied length."""
    ids = np.zeros((batch, width), np.int32)
    lengths = rng.integers(3, width + 1, batch)
    for i, n in enumerate(lengths):
        ids[i, 0] = 2
        ids[i, 1 : n - 1] = rng.integers(5, 500, n - 2)
        ids[i, n - 1] = 3
    return ids


def test_mask_batch_follows_berts_recipe():
    from keras_transformer.data.masked_lm import default_max_predictions

    rng = np.random.default_rng(0)
    ids = _padded_rows(rng)
    masked, positions, labels, weights = example.mask_batch(
        ids, np.random.default_rng(1), INFO
    )
    batch, width = ids.shape
    assert positions.shape == (batch, default_max_predictions(width))
    used = weights > 0
    rows = np.broadcast_to(np.arange(batch)[:, None], positions.shape)
    chosen = ids[rows[used], positions[used]]
    # Only real text pieces are chosen; labels are the original pieces.
    assert not np.isin(chosen, INFO["unselectable_ids"]).any()
    np.testing.assert_array_equal(labels[used], chosen)
    # Unused slots: position 0, label 0; used slots ascending, distinct.
    assert (positions[~used] == 0).all() and (labels[~used] == 0).all()
    for row_positions, row_used in zip(positions, used):
        p = row_positions[row_used]
        assert (np.diff(p) > 0).all()
    # About 15% of the selectable pieces are chosen.
    share = used.sum() / (ids > 3).sum()
    assert 0.13 < share < 0.17, share
    # 80% [MASK], 10% random, 10% kept; nothing else changes.
    after = masked[rows[used], positions[used]]
    assert 0.75 < np.mean(after == INFO["mask_token_id"]) < 0.85
    kept = np.mean(after == chosen)
    assert 0.07 < kept < 0.15, kept
    untouched = np.ones_like(ids, bool)
    untouched[rows[used], positions[used]] = False
    np.testing.assert_array_equal(masked[untouched], ids[untouched])


def test_mask_batch_caps_predictions_and_is_seeded():
    rng = np.random.default_rng(0)
    ids = _padded_rows(rng, batch=8, width=40)
    a = example.mask_batch(ids, np.random.default_rng(5), INFO, 0.9, 3)
    b = example.mask_batch(ids, np.random.default_rng(5), INFO, 0.9, 3)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert a[1].shape == (8, 3)
    # Rows with at least 3 text pieces fill all three slots at rate 0.9.
    assert (a[3][(ids > 3).sum(axis=1) >= 20] == 1).all()


def test_batches_group_by_width_and_cover_every_row_once():
    rows = [np.arange(n) + 5 for n in (3, 10, 17, 33, 40, 70, 130, 20, 5)]
    batches = example._batches(rows, 2, np.random.default_rng(0), True)
    members = np.sort(np.concatenate(batches))
    np.testing.assert_array_equal(members, np.arange(len(rows)))
    for batch in batches:
        widths = {example._width(len(rows[i])) for i in batch}
        assert len(widths) == 1
    assert example._width(200) == example.WIDTHS[-1]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from keras_transformer.data import load_bundled_genre

    root = tmp_path_factory.mktemp("mlm")
    text = root / "verses.txt"
    text.write_text("\n".join(load_bundled_genre("valid")[0]) + "\n")
    data = root / "data"
    info = example.prepare(
        str(data),
        vocabulary_size=300,
        sequence_length=64,
        train_file=str(text),
    )
    return root, data, info


def test_prepare_writes_wrapped_ids_that_decode_to_the_text(prepared):
    from keras_transformer.tokenizers import SubwordTokenizer

    root, data, info = prepared
    lines = (root / "verses.txt").read_text().splitlines()
    arrays = np.load(data / example.IDS_FILE)
    rows = example._rows(arrays["train_values"], arrays["train_lengths"])
    held_out = lines[::20]
    assert info["train_texts"] == len(rows) == len(lines) - len(held_out)
    assert info["valid_texts"] == len(held_out)
    assert info["vocabulary_size"] == 300
    tokenizer = SubwordTokenizer.load(str(data / "tokenizer.model"))
    assert info["mask_token_id"] == tokenizer.token_to_id("[MASK]")
    assert all(
        r[0] == tokenizer.start_id and r[-1] == tokenizer.end_id for r in rows
    )
    assert max(len(r) for r in rows) <= 64
    first_kept = lines[1]
    decoded = tokenizer.detokenize(rows[0][1:-1][None])
    assert decoded.numpy()[0].decode() == first_kept


@pytest.mark.slow  # long: run with -m slow
def test_train_then_package_gives_a_pretrained_encoder(prepared, tmp_path):
    import keras
    from keras_transformer.applications.bert import bert_masked_lm

    from keras_transformer.tasks.classifier import train_classifier

    _, data, _ = prepared
    run = tmp_path / "run"
    record = example.train(
        str(data),
        str(run),
        preset=json.dumps(TINY),
        minutes=0.02,
        batch_size=32,
        validation_every=1,
        half_copy=True,
        verbose=0,
    )
    assert record["steps"] >= 1
    assert record["backbone"]["vocabulary_size"] == 300
    assert np.isfinite(record["final_val"]["loss"])
    trained = bert_masked_lm(record["backbone"])
    trained.load_weights(str(run / example.WEIGHTS_FILE))
    # Package from the float16 copy alone (what comes back from a device).
    os.remove(run / example.WEIGHTS_FILE)
    out = example.package(str(data), str(run), str(tmp_path / "pre"))
    meta = json.loads((tmp_path / "pre" / "metadata.json").read_text())
    assert meta["task"] == "bert-pretrain"
    assert meta["config"] == record["backbone"]
    packaged = keras.saving.load_model(
        os.path.join(out, "model.keras"), compile=False
    )
    for a, b in zip(trained.get_weights(), packaged.get_weights()):
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=1e-6)
    # The classifier starts from those weights.
    result = train_classifier(
        str(tmp_path / "clf"),
        pretrained=out,
        epochs=1,
        steps_per_epoch=1,
        batch_size=8,
        verbose=0,
    )
    assert result["steps"] == 1


BLOCK_TF = """
import importlib.abc, sys
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("tensorflow", "tensorflow_text"):
            raise ImportError("TensorFlow is blocked in this test: " + name)
sys.meta_path.insert(0, _Block())
sys.argv = sys.argv[1:]
import runpy
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_train_runs_under_jax_without_tensorflow(prepared, tmp_path):
    pytest.importorskip("jax")
    _, data, _ = prepared
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = str(ROOT)
    command = [
        sys.executable,
        "-c",
        BLOCK_TF,
        str(EXAMPLE),
        "train",
        "--data",
        str(data),
        "--output",
        str(tmp_path / "run"),
        "--preset",
        json.dumps(TINY),
        "--minutes",
        "0.01",
        "--batch-size",
        "32",
        "--widths",
        "32,64",
        "--half-copy",
    ]
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((tmp_path / "run" / "history.json").read_text())
    assert record["backend"] == "jax"
    assert record["steps"] >= 1
    assert (tmp_path / "run" / "weights16-0.npz").exists()
