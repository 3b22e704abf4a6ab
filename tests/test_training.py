import glob
import os
import pathlib

import keras
import numpy as np
import pytest

from keras_transformer import layers, training


def _model():
    ids = keras.Input((6,), dtype="int32", name="token_ids")
    x = layers.TokenAndPositionEmbedding(30, 6, 16)(ids)
    x = layers.TransformerEncoder(32, 2, name="enc0")(x)
    x = layers.TransformerDecoder(32, 2, normalize_first=True, name="dec0")(x)
    return keras.Model(ids, keras.layers.Dense(30)(x))


def test_attention_maps_respect_masks():
    maps = training.attention_maps(_model(), np.array([[3, 4, 5, 6, 0, 0]]))
    assert set(maps) == {"enc0", "dec0"}
    for scores in maps.values():
        assert scores.shape == (1, 2, 6, 6)
        np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-5)
        np.testing.assert_allclose(scores[..., 4:], 0.0, atol=1e-7)
    np.testing.assert_allclose(np.triu(maps["dec0"][0, 0], 1), 0.0, atol=1e-7)
    with pytest.raises(ValueError, match="block_names"):
        training.attention_maps(_model(), np.ones((1, 6)), ["missing"])


def test_fit_callbacks_write_logs_checkpoint_and_images(tmp_path):
    model = _model()
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x = np.random.RandomState(0).randint(1, 30, (16, 6)).astype("int32")
    callbacks = training.standard_callbacks(
        str(tmp_path),
        extra=[
            training.AttentionMapLogger(
                str(tmp_path / "logs" / "attention"), x[:1], list("abcdef")
            )
        ],
    )
    history = model.fit(
        x, x, validation_data=(x, x), epochs=2, verbose=0, callbacks=callbacks
    )
    assert "learning_rate" in history.history
    reloaded = keras.saving.load_model(str(tmp_path / training.MODEL_FILE))
    assert reloaded.count_params() == model.count_params()
    assert glob.glob(str(tmp_path / "logs" / "attention" / "events.*"))
    assert glob.glob(str(tmp_path / "logs" / "train" / "events.*"))
    assert not glob.glob(str(tmp_path / ".tmp-*"))


def test_time_budget_stops_training():
    model = _model()
    model.compile("sgd", "mse")
    budget = training.TimeBudget(max_minutes=1e-6)
    x = np.ones((64, 6), "int32")
    history = model.fit(
        x,
        np.zeros((64, 6, 30)),
        batch_size=8,
        epochs=5,
        verbose=0,
        callbacks=[budget],
    )
    assert budget.stopped_early
    assert len(history.history["loss"]) == 1
    with pytest.raises(ValueError, match="max_minutes=0"):
        training.TimeBudget(0)


def test_atomic_directory_keeps_a_copy_another_writer_finished_first(
    tmp_path,
):
    target = tmp_path / "shared"
    with pytest.raises(FileExistsError, match="left as it is"):
        with training.atomic_directory(str(target)) as tmp:
            (pathlib.Path(tmp) / "mine.txt").write_text("mine")
            target.mkdir()  # another process completes its copy meanwhile
            (target / "theirs.txt").write_text("theirs")
    assert sorted(p.name for p in target.iterdir()) == ["theirs.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["shared"]  # no leftovers


def test_atomic_directory_keeps_old_contents_on_failure(tmp_path):
    target = tmp_path / "model"
    with training.atomic_directory(str(target)) as tmp:
        open(os.path.join(tmp, "a.txt"), "w").write("first")
    with pytest.raises(RuntimeError):
        with training.atomic_directory(str(target), overwrite=True) as tmp:
            open(os.path.join(tmp, "a.txt"), "w").write("second")
            raise RuntimeError("killed halfway")
    assert (target / "a.txt").read_text() == "first"
    assert sorted(os.listdir(tmp_path)) == ["model"]
    with pytest.raises(FileExistsError, match="already exists"):
        with training.atomic_directory(str(target)):
            pass


def test_metadata_errors_name_the_problem(tmp_path):
    with pytest.raises(training.ModelDirectoryError, match="not found"):
        training.read_metadata(str(tmp_path / "nope"))
    with pytest.raises(training.ModelDirectoryError, match="metadata.json"):
        training.read_metadata(str(tmp_path))
    training.write_metadata(str(tmp_path), "gpt", preset="tiny")
    assert training.read_metadata(str(tmp_path), "gpt")["preset"] == "tiny"
    with pytest.raises(training.ModelDirectoryError, match="'gpt' model"):
        training.read_metadata(str(tmp_path), ("translation",))


def test_mixed_precision_setting():
    assert training.set_mixed_precision("bfloat16") == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "mixed_bfloat16"
    with pytest.raises(ValueError, match="mixed_precision='float8'"):
        training.set_mixed_precision("float8")


def test_best_checkpoint_survives_a_resume(tmp_path):
    path = str(tmp_path / "model.keras")
    model = _model()
    first = training.AtomicBestCheckpoint(path)
    first.set_model(model)
    first.on_train_begin()
    first.on_epoch_end(0, {"val_loss": 1.0})
    saved = os.path.getmtime(path)
    resumed = training.AtomicBestCheckpoint(path)  # a new process
    resumed.set_model(model)
    resumed.on_train_begin()
    resumed.on_epoch_end(1, {"val_loss": 2.0})  # worse: keep the old file
    assert os.path.getmtime(path) == saved
    assert resumed.best == 1.0
    resumed.on_epoch_end(2, {"val_loss": 0.5})
    assert resumed.best == 0.5


def test_backup_interrupted_while_saving_keeps_the_last_good_one(tmp_path):
    model = _model()
    model.compile("sgd", "mse")
    backup = training.AtomicBackupAndRestore(str(tmp_path / "backup"))
    backup.set_model(model)
    backup._current_epoch, backup._last_batch_seen = 1, 0
    backup._save_model()
    good = model.get_weights()

    def killed_halfway(path, overwrite=True):
        with open(path, "wb") as f:
            f.write(b"\x89HDF partial")
        raise KeyboardInterrupt("SIGKILL stand-in")

    original = model.save_weights
    model.save_weights = killed_halfway
    model.set_weights([w + 1.0 for w in good])
    backup._current_epoch = 2
    with pytest.raises(KeyboardInterrupt):
        backup._save_model()
    model.save_weights = original

    fresh = _model()
    fresh.compile("sgd", "mse")
    restore = training.AtomicBackupAndRestore(str(tmp_path / "backup"))
    restore.set_model(fresh)
    restore.on_train_begin()
    for a, b in zip(fresh.get_weights(), good):
        np.testing.assert_allclose(a, b)
    assert fresh._initial_epoch == 1


def _small_model(seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4,))
    x = keras.layers.Dense(300, name="wide")(inputs)
    outputs = keras.layers.Dense(2, name="out")(x)
    return keras.Model(inputs, outputs)


def test_float16_weights_round_trip_in_parts(tmp_path):
    source, target = _small_model(1), _small_model(2)
    files = training.save_float16_weights(
        source, str(tmp_path / "w16"), max_file_bytes=1000
    )
    # 4x300 + 300 + 300x2 + 2 halves: the wide kernel alone exceeds 1000
    # bytes, so every array starts a new part except the small ones.
    assert len(files) > 1 and all(f.endswith(".npz") for f in files)
    assert not np.allclose(source.get_weights()[0], target.get_weights()[0])
    training.load_float16_weights(target, list(reversed(files)))
    for a, b in zip(source.get_weights(), target.get_weights()):
        assert b.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=2**-11, atol=1e-7)
    single = training.save_float16_weights(source, str(tmp_path / "one"))
    assert single == [str(tmp_path / "one.npz")]


def test_float16_weights_refuse_another_architecture(tmp_path):
    files = training.save_float16_weights(_small_model(1), str(tmp_path / "w"))
    inputs = keras.Input((4,))
    other = keras.Model(inputs, keras.layers.Dense(3, name="wide")(inputs))
    with pytest.raises(ValueError, match="'wide/kernel' has shape"):
        training.load_float16_weights(other, files)
    renamed = keras.Model(inputs, keras.layers.Dense(3, name="x")(inputs))
    with pytest.raises(ValueError, match="not in"):
        training.load_float16_weights(renamed, files)
