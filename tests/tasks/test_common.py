"""The shared runner steps of keras_transformer.tasks._common."""

import json

import pytest

from keras_transformer import model_dir
from keras_transformer.tasks import _common


def test_start_run_records_then_checks_settings(tmp_path):
    out = tmp_path / "run"
    assert _common.start_run(out, "gpt", {"seed": 0, "epochs": 3}) is False
    recorded = json.loads((out / model_dir.RUN_FILE).read_text())
    # Budget settings (epochs, max_minutes) are not compared on resume.
    assert recorded == {"settings": {"seed": 0}}
    (out / model_dir.BACKUP_DIR).mkdir()  # the run started
    assert _common.start_run(out, "gpt", {"seed": 0, "epochs": 9}) is True
    with pytest.raises(model_dir.ResumeMismatchError, match="--seed was 0"):
        _common.start_run(out, "gpt", {"seed": 1})
    assert _common.start_run(out, "gpt", {"seed": 1}, force=True) is True


def test_a_run_that_never_started_is_forgotten(tmp_path):
    # A first run stopped on a bad data line after recording its settings
    # (and perhaps a tokenizer): the corrected command starts afresh.
    out = tmp_path / "run"
    _common.start_run(out, "translation", {"skip_bad_lines": False})
    (out / model_dir.TOKENIZER_FILE).write_bytes(b"stale")
    assert not _common.start_run(out, "translation", {"skip_bad_lines": True})
    assert not (out / model_dir.TOKENIZER_FILE).exists()


def test_start_run_refuses_another_task_and_a_file(tmp_path):
    metadata = model_dir.make_metadata(
        "gpt", config={}, settings={}, tokenizer={}, data={}, inference={},
        train_seconds=None, steps=0, metrics={},
    )  # fmt: skip
    model_dir.write_metadata(str(tmp_path), metadata)
    with pytest.raises(model_dir.ModelDirectoryError, match="'gpt' model"):
        _common.start_run(tmp_path, "translation", {})
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="must be a directory"):
        _common.start_run(tmp_path / "file", "gpt", {})


def test_hold_out_is_deterministic_and_spread():
    items = list(range(100))
    train, valid = _common.hold_out(items)
    assert valid == [0, 20, 40, 60, 80]  # 5%, every k-th
    assert sorted(train + valid) == items
    columns = (items, [str(i) for i in items])
    (train_a, train_b), (valid_a, valid_b) = _common.hold_out(columns, 3)
    assert valid_b == [str(i) for i in valid_a] and len(valid_a) == 3
    assert _common.hold_out(list(range(30000)))[1][-1] < 30000
    assert len(_common.hold_out(list(range(30000)))[1]) == 1000


def test_steps_per_epoch_is_one_pass_unless_given():
    assert _common.steps_per_epoch_for(100, 32) == 4
    assert _common.steps_per_epoch_for(100, 32, steps_per_epoch=7) == 7
    assert _common.steps_per_epoch_for(1, 32) == 1


def test_default_vocabulary_is_lowered_to_what_the_text_gives(tmp_path):
    syllables = [a + b for a in "bdklmnprst" for b in "aeiou"]
    words = [a + b for a in syllables for b in syllables[:8]]
    texts = [" ".join(words[i : i + 5]) for i in range(0, len(words), 3)]
    # Asked for explicitly, a size the text cannot fill is an error ...
    with pytest.raises(ValueError, match="at most \\d+ pieces"):
        _common.tokenizer_or_resume(str(tmp_path / "a"), texts, 8000)
    # ... the task's default is lowered to the largest size that works.
    (tmp_path / "b").mkdir()
    tokenizer = _common.tokenizer_or_resume(
        str(tmp_path / "b"), texts, None, default_size=8000
    )
    most = tokenizer.vocabulary_size
    assert 100 < most < 8000
    assert (tmp_path / "b" / model_dir.TOKENIZER_FILE).exists()
    # A size the text can fill is used as it is.
    (tmp_path / "c").mkdir()
    small = _common.tokenizer_or_resume(
        str(tmp_path / "c"), texts, None, default_size=most // 2
    )
    assert small.vocabulary_size == most // 2
