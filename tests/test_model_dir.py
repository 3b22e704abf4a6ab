import json
import os
import pathlib

import keras
import numpy as np
import pytest

from keras_transformer import half_weights, model_dir


def _metadata(task="gpt", **changes):
    fields = dict(
        config={"hidden_dim": 16},
        settings={"batch_size": 4},
        tokenizer={"vocabulary_size": 50},
        data={"train": "bundled:train"},
        inference={},
        train_seconds=12.34,
        steps=7,
        metrics={"val_loss": 1.5},
    )
    fields.update(changes)
    return model_dir.make_metadata(task, **fields)


def test_atomic_directory_keeps_a_copy_another_writer_finished_first(
    tmp_path,
):
    target = tmp_path / "shared"
    with pytest.raises(FileExistsError, match="left as it is"):
        with model_dir.atomic_directory(str(target)) as tmp:
            (pathlib.Path(tmp) / "mine.txt").write_text("mine")
            target.mkdir()  # another process completes its copy meanwhile
            (target / "theirs.txt").write_text("theirs")
    assert sorted(p.name for p in target.iterdir()) == ["theirs.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["shared"]  # no leftovers


def test_atomic_directory_keeps_old_contents_on_failure(tmp_path):
    target = tmp_path / "model"
    with model_dir.atomic_directory(str(target)) as tmp:
        open(os.path.join(tmp, "a.txt"), "w").write("first")
    with pytest.raises(RuntimeError):
        with model_dir.atomic_directory(str(target), overwrite=True) as tmp:
            open(os.path.join(tmp, "a.txt"), "w").write("second")
            raise RuntimeError("killed halfway")
    assert (target / "a.txt").read_text() == "first"
    assert sorted(os.listdir(tmp_path)) == ["model"]
    with pytest.raises(FileExistsError, match="already exists"):
        with model_dir.atomic_directory(str(target)):
            pass


def test_metadata_errors_name_the_problem(tmp_path):
    with pytest.raises(model_dir.ModelDirectoryError, match="not found"):
        model_dir.read_metadata(str(tmp_path / "nope"))
    with pytest.raises(model_dir.ModelDirectoryError, match="metadata.json"):
        model_dir.read_metadata(str(tmp_path))
    model_dir.write_metadata(str(tmp_path), _metadata())
    assert model_dir.read_metadata(str(tmp_path), "gpt")["steps"] == 7
    with pytest.raises(model_dir.ModelDirectoryError, match="'gpt' model"):
        model_dir.read_metadata(str(tmp_path), ("translation",))


def _small_model(seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4,))
    x = keras.layers.Dense(300, name="wide")(inputs)
    outputs = keras.layers.Dense(2, name="out")(x)
    return keras.Model(inputs, outputs)


def test_float16_weights_round_trip_in_parts(tmp_path):
    source, target = _small_model(1), _small_model(2)
    files = half_weights.save_float16_weights(
        source, str(tmp_path / "w16"), max_file_bytes=1000
    )
    # 4x300 + 300 + 300x2 + 2 halves: the wide kernel alone exceeds 1000
    # bytes, so every array starts a new part except the small ones.
    assert len(files) > 1 and all(f.endswith(".npz") for f in files)
    assert not np.allclose(source.get_weights()[0], target.get_weights()[0])
    half_weights.load_float16_weights(target, list(reversed(files)))
    for a, b in zip(source.get_weights(), target.get_weights()):
        assert b.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=2**-11, atol=1e-7)
    single = half_weights.save_float16_weights(source, str(tmp_path / "one"))
    assert single == [str(tmp_path / "one.npz")]


def test_float16_weights_refuse_another_architecture(tmp_path):
    files = half_weights.save_float16_weights(
        _small_model(1), str(tmp_path / "w")
    )
    inputs = keras.Input((4,))
    other = keras.Model(inputs, keras.layers.Dense(3, name="wide")(inputs))
    with pytest.raises(ValueError, match="'wide/kernel' has shape"):
        half_weights.load_float16_weights(other, files)
    renamed = keras.Model(inputs, keras.layers.Dense(3, name="x")(inputs))
    with pytest.raises(ValueError, match="not in"):
        half_weights.load_float16_weights(renamed, files)


@pytest.mark.parametrize("task", sorted(model_dir.TASKS))
def test_metadata_has_one_schema_and_a_card(tmp_path, task):
    metadata = _metadata(task)
    assert tuple(metadata) == model_dir.METADATA_KEYS
    assert metadata["application"] == model_dir.TASKS[task]
    assert metadata["train_seconds"] == 12.3
    model_dir.write_metadata(str(tmp_path), metadata)
    assert model_dir.read_metadata(str(tmp_path), task) == json.loads(
        json.dumps(metadata)
    )
    card = (tmp_path / model_dir.CARD_FILE).read_text()
    assert card.startswith(f"# {task} model")
    assert "keras_transformer.load(" in card and "export" in card
    assert "val_loss" in card and "7 steps" in card


def test_write_metadata_refuses_another_schema(tmp_path):
    metadata = _metadata()
    with pytest.raises(ValueError, match=r"extra=\['preset'\]"):
        model_dir.write_metadata(str(tmp_path), dict(metadata, preset="x"))
    metadata.pop("steps")
    with pytest.raises(ValueError, match=r"missing=\['steps'\]"):
        model_dir.write_metadata(str(tmp_path), metadata)
    assert not os.listdir(tmp_path)
    with pytest.raises(ValueError, match="task='nope'"):
        _metadata("nope")


def test_read_metadata_names_an_old_schema(tmp_path):
    (tmp_path / model_dir.METADATA_FILE).write_text('{"task": "gpt"}')
    with pytest.raises(model_dir.ModelDirectoryError, match="older"):
        model_dir.read_metadata(str(tmp_path))
    (tmp_path / model_dir.METADATA_FILE).write_text("{not json")
    with pytest.raises(model_dir.ModelDirectoryError, match="not valid JSON"):
        model_dir.read_metadata(str(tmp_path))


def test_resume_names_each_changed_setting(tmp_path):
    settings = {"batch_size": 32, "preset": "small", "seed": 0}
    assert model_dir.check_resume(str(tmp_path), settings) is None
    assert model_dir.check_resume(str(tmp_path), dict(settings)) == settings
    changed = dict(settings, batch_size=64, seed=1)
    with pytest.raises(model_dir.ResumeMismatchError) as error:
        model_dir.check_resume(str(tmp_path), changed)
    message = str(error.value)
    assert "--batch-size was 32, now 64" in message
    assert "--seed was 0, now 1" in message and "preset" not in message
    assert "--force" in message
    # Still the old settings recorded; force accepts and records the new.
    assert model_dir.check_resume(str(tmp_path), changed, force=True) == (
        settings
    )
    assert model_dir.check_resume(str(tmp_path), changed) == changed


def test_open_model_dir_names_a_missing_file(tmp_path):
    model_dir.write_metadata(str(tmp_path), _metadata())
    with pytest.raises(model_dir.ModelDirectoryError, match="model.keras"):
        model_dir.open_model_dir(str(tmp_path), "gpt")


def test_git_commit_is_a_sha_or_none():
    commit = model_dir.git_commit()
    assert commit is None or (len(commit) == 40 and int(commit, 16) >= 0)
