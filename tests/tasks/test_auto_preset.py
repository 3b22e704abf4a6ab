"""`preset="auto"` for translation: the rule, and a run that uses it."""

import pytest
from keras_transformer.applications.presets import get_preset

from keras_transformer.data import load_bundled_translation
from keras_transformer.tasks import _auto_preset
from keras_transformer.tasks._auto_preset import choose_preset, expected_steps
from keras_transformer.tasks.translation import (
    TRAIN_DEFAULTS,
    train_translation,
)


def test_expected_steps_is_the_tighter_of_budget_and_epochs():
    speed = _auto_preset.CPU_TARGET_TOKENS_PER_SECOND["mini"]
    # 10 minutes at 20 tokens per pair, batch 32: speed * 600 / 640 steps.
    by_budget = int(10 * 60 * speed / (20 * 32))
    assert expected_steps("mini", 10**7, 20.0, 32, 10, None) == by_budget
    # 2 epochs of 3,200 pairs are 200 steps, fewer than the budget allows.
    assert expected_steps("mini", 3200, 20.0, 32, 10, 2) == 200
    assert expected_steps("mini", 3200, 20.0, 32, None, None) is None


def test_small_corpus_or_short_budget_gets_the_small_model():
    # The case: ~15k everyday pairs, 8 minutes on a CPU.
    args = dict(batch_size=32, epochs=None)
    assert choose_preset(15000, 12.0, max_minutes=8, **args)[0] == "mini"
    # A big corpus with a short budget: too few steps for "small".
    assert choose_preset(500000, 25.0, max_minutes=5, **args)[0] == "mini"
    # A long budget on a tiny corpus: too few pairs for "small".
    assert choose_preset(2000, 25.0, max_minutes=600, **args)[0] == "mini"


def test_big_corpus_and_budget_get_the_bigger_model():
    name, details = choose_preset(
        500000, 25.0, batch_size=32, max_minutes=600, epochs=None
    )
    assert name == "small"
    assert details["chosen"] == "small"
    assert set(details["expected_steps"]) == set(_auto_preset.CANDIDATES)
    steps = details["expected_steps"]
    assert steps["mini"] > steps["small"]


def test_on_an_accelerator_only_the_corpus_and_epochs_count():
    args = dict(batch_size=32, max_minutes=5, epochs=None)
    assert choose_preset(500000, 25.0, **args)[0] == "mini"
    assert choose_preset(500000, 25.0, accelerator=True, **args)[0] == "small"
    # Epochs still limit an accelerator run: 1 epoch of 50k pairs is
    # 1,562 steps, below the minimum of "small".
    assert choose_preset(
        50000, 25.0, batch_size=32, max_minutes=None, epochs=1,
        accelerator=True,
    )[0] == "mini"  # fmt: skip


def test_every_candidate_is_a_preset_with_training_defaults():
    for name in _auto_preset.CANDIDATES:
        assert get_preset("translation", name)["vocabulary_size"] == 8000
        assert name in TRAIN_DEFAULTS
        assert name in _auto_preset.MINIMUMS


def test_auto_is_the_default_and_records_its_choice(tmp_path):
    sources, targets = load_bundled_translation("train")
    path = tmp_path / "train.tsv"
    path.write_text(
        "".join(f"{s}\t{t}\n" for s, t in zip(sources[:120], targets[:120])),
        encoding="utf-8",
    )
    metadata = train_translation(
        str(tmp_path / "model"),
        train_file=str(path),
        epochs=1,
        steps_per_epoch=2,
        vocabulary_size=200,
        verbose=0,
    )
    settings = metadata["settings"]
    assert settings["preset"] == "mini"
    assert settings["auto_preset"]["chosen"] == "mini"
    assert settings["warmup_steps"] == TRAIN_DEFAULTS["mini"]["warmup_steps"]
    assert metadata["config"]["hidden_dim"] == 128
    assert metadata["config"]["num_encoder_layers"] == 2
    # run.json keeps what was asked for: a rerun resumes instead of
    # refusing different settings.
    again = train_translation(
        str(tmp_path / "model"),
        train_file=str(path),
        epochs=1,
        steps_per_epoch=2,
        vocabulary_size=200,
        verbose=0,
    )
    assert again["settings"]["preset"] == "mini"


def test_unknown_preset_still_fails_before_reading_data(tmp_path):
    with pytest.raises(ValueError, match="Unknown translation preset"):
        train_translation(
            str(tmp_path / "m"), train_file="/no/such/file", preset="huge"
        )
