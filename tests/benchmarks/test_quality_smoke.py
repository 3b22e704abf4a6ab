"""Smoke run of the quality-at-equal-budget benchmark (no timing checks)."""

import json
import math

import numpy as np
import pytest


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    from benchmarks import common

    monkeypatch.setattr(common, "RESULTS_DIR", str(tmp_path))
    return tmp_path


@pytest.mark.slow  # long: run with -m slow
def test_quality_benchmark_runs_both_pairs(results_dir):
    from benchmarks import quality

    quality.main(
        ["--tiny", "--task", "both", "--minutes", "0.01"]
        + ["--test-sentences", "4"]
    )
    payload = json.loads((results_dir / "quality_tiny.json").read_text())
    for task, metric in (("translation", "bleu"), ("gpt", "test_perplexity")):
        rows = {row["implementation"]: row for row in payload[task]["rows"]}
        assert set(rows) == {"keras_transformer", "keras_hub"}
        for row in rows.values():
            assert math.isfinite(row[metric]) and row[metric] >= 0
            assert row["steps"] >= 1
    # Both GPT models have identical sizes (like for like).
    gpt_params = {row["params"] for row in payload["gpt"]["rows"]}
    assert len(gpt_params) == 1
    assert payload["translation"]["rows"][0]["test_sentences"] == 4


def test_hub_recomputed_step_matches_the_trained_model():
    """The decoding path gives the functional model's logits, per prefix."""
    import keras

    from benchmarks import quality

    keras.utils.set_random_seed(1)
    config = quality._settings("translation", tiny=True)["config"]
    config["vocabulary_size"] = 40
    hub = quality.HubSeq2Seq(config)
    model = hub.build_model()
    encoder_ids = np.array([[5, 9, 7, 3, 0, 0], [6, 3, 0, 0, 0, 0]], "int32")
    decoder_ids = np.array([[2, 8, 11, 4, 9], [2, 30, 5, 6, 7]], "int32")
    full = np.asarray(
        model(
            {
                "encoder_token_ids": encoder_ids,
                "decoder_token_ids": decoder_ids,
            },
            training=False,
        )
    )
    states, mask = hub.encode(encoder_ids)
    for t in range(1, decoder_ids.shape[1] + 1):
        step = np.asarray(hub.next_logits(decoder_ids[:, :t], states, mask))
        np.testing.assert_allclose(step, full[:, t - 1], atol=1e-4)
