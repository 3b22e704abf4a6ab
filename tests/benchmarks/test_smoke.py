"""Smoke runs of the benchmarks with tiny sizes (no timing assertions)."""

import json

import pytest


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    from benchmarks import common

    monkeypatch.setattr(common, "RESULTS_DIR", str(tmp_path))
    return tmp_path


def test_generation_benchmark_runs(results_dir):
    from benchmarks import generation

    rows = generation.main(["--tiny", "--repeats", "1", "--batch-sizes", "2"])
    assert {r["implementation"] for r in rows} == {
        "keras_transformer",
        "keras_hub",
        "keras_hub_xla",
    }
    ours = next(r for r in rows if r["implementation"] == "keras_transformer")
    # The ratio that counts is against the faster KerasHub variant.
    assert ours["ratio_vs_keras_hub_best"] == pytest.approx(
        min(ours["ratio_vs_keras_hub"], ours["ratio_vs_keras_hub_xla"])
    )
    payload = json.loads((results_dir / "generation_tiny.json").read_text())
    assert payload["git_commit"] is None or len(payload["git_commit"]) >= 40
    assert len(payload["machine"]["load_average_before"]) == 3
    assert payload["config"]["new"] == 8
    assert all(r["new_tokens_per_s"] > 0 for r in payload["rows"])


@pytest.mark.slow  # long: run with -m slow
def test_train_throughput_benchmark_runs(results_dir):
    from benchmarks import train_throughput

    ratio = train_throughput.main(["--tiny", "--steps", "1", "--repeats", "1"])
    assert ratio > 0
    payload = json.loads(
        (results_dir / "train_throughput_tiny.json").read_text()
    )
    # Both models have identical sizes, so the comparison is like for like.
    params = {r["params"] for r in payload["rows"]}
    assert len(params) == 1
