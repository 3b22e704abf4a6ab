"""The int8 table of docs/smaller_models.md: rendered from
benchmarks/results/quantization.json, and equal to it."""

import json
import os

from benchmarks import common, quantization

_ROW = {
    "model": "translation",
    "task": "translation",
    "precision": "int8",
    "bleu": 12.345,
    "chrf": 40.0,
    "model_keras_mb": 1.5,
    "saved_model_mb": 3.25,
    "p50_ms_b1": 10.04,
    "p99_ms_b1": 12.0,
    "p50_ms_b32": 100.0,
    "p99_ms_b32": 120.06,
    "peak_rss_mb": 700.4,
}


def test_table_rows_show_quality_size_and_latency():
    table = quantization.table_markdown(
        {"rows": [_ROW], "calls": 5, "git_commit": "abcdef123"}
    )
    lines = table.splitlines()
    assert lines[2] == (
        "| translation | int8 | bleu 12.35, chrf 40 | 1.50 | 3.25 | 10.0 | "
        "12.0 | 100.0 | 120.1 | 700 |"
    )
    assert "`abcdef1`" in lines[-1] and "5 timed calls" in lines[-1]


def test_docs_table_equals_the_results_file(tmp_path):
    path = os.path.join(common.RESULTS_DIR, "quantization.json")
    with open(path, encoding="utf-8") as f:
        results = json.load(f)
    assert {row["precision"] for row in results["rows"]} == {
        "float32", "int8", "bfloat16", "float16"
    }  # fmt: skip
    assert {row["task"] for row in results["rows"]} == {
        "translation", "gpt", "classifier"
    }  # fmt: skip
    with open(quantization.DOCS, encoding="utf-8") as f:
        text = f.read()
    inside = text.split(quantization.BEGIN)[1].split(quantization.END)[0]
    assert inside.strip() == quantization.table_markdown(results).strip()
