import glob
import os

import keras
import numpy as np
import pytest

from keras_transformer import layers, model_dir, training


def _scalar_tags(log_dir):
    from tensorflow.core.util import event_pb2
    from tensorflow.python.lib.io import tf_record

    tags = set()
    for path in glob.glob(str(log_dir / "events.*")):
        for record in tf_record.tf_record_iterator(path):
            event = event_pb2.Event.FromString(record)
            tags.update(v.tag for v in event.summary.value)
    return tags


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
    del history
    # Keras' TensorBoard callback logs the learning rate (no callback of
    # ours does): the scalar is in the epoch summaries.
    assert _scalar_tags(tmp_path / "logs" / "train") >= {
        "epoch_learning_rate",
        "epoch_loss",
    }
    reloaded = keras.saving.load_model(str(tmp_path / model_dir.MODEL_FILE))
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


def test_throughput_meter_counts_steps_and_skips_compilation():
    meter = training.ThroughputMeter(tokens_per_batch=100, skip=1)
    for batch in range(3):
        meter.on_train_batch_begin(batch)
        meter.on_train_batch_end(batch)
    assert meter.steps == 3 and meter.seconds > 0
    # Two timed batches of 100 tokens over the time of those two.
    assert meter._rate_batches == 2
    assert meter.tokens_per_second == pytest.approx(200 / meter._rate_seconds)
    logs = {}
    meter.on_epoch_end(0, logs)
    assert logs["tokens_per_second"] == meter.tokens_per_second


def test_text_samples_write_a_table(tmp_path):
    samples = training.TextSamples(
        str(tmp_path / "samples"), lambda model: [("in | put", "out")]
    )
    samples.set_model(_model())
    samples.on_epoch_end(0)
    assert glob.glob(str(tmp_path / "samples" / "events.*"))


def test_plots_are_png():
    png = training.plot_learning_curves(
        {"loss": [2.0, 1.0], "val_loss": [2.5, 1.5], "learning_rate": [1, 2]}
    )
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    png = training.plot_confusion_matrix([[3, 1], [0, 2]], ["a", "b"])
    assert png[:4] == b"\x89PNG"


def test_progress_bar_ends_where_the_budget_stopped(capsys):
    model = _model()
    model.compile("sgd", "mse")
    x = np.ones((64, 6), "int32")
    model.fit(
        x,
        np.zeros((64, 6, 30)),
        batch_size=8,  # 8 steps planned
        epochs=1,
        verbose=1,
        callbacks=[
            training.TimeBudget(max_minutes=1e-6),
            training.ProgressBar(),
        ],
    )
    out = capsys.readouterr().out
    assert "1/1" in out and "8/8" not in out
