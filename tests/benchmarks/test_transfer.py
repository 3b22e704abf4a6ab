"""The transfer suite's bookkeeping: variants, the table, the test-read rule."""

import json

import pytest

from benchmarks import transfer


def _cell(corpus, system, budget, value, app="translation", split="valid"):
    metric = transfer.METRICS[app][0]
    return {
        "corpus": corpus, "application": app, "system": system,
        "budget_minutes": None if system == "baseline" else budget,
        "split": split, "seed": 0, "git_commit": "abc",
        "result": {metric: value, "steps": 10, "method": "m"},
    }  # fmt: skip


def test_variant_flags():
    assert transfer.variant_flags("ours") == []
    assert transfer.variant_flags("ours+preset=small+batch-size=64") == [
        "--preset", "small", "--batch-size", "64",
    ]  # fmt: skip
    with pytest.raises(SystemExit, match="ours\\+FLAG=VALUE"):
        transfer.variant_flags("ours+preset")


def test_table_compares_in_the_metrics_direction():
    cells = [
        _cell("a", "ours", 5, 10.0),
        _cell("a", "keras_hub", 5, 12.0),
        _cell("a", "baseline", None, 3.0),
        _cell("a", "ours+preset=small", 5, 11.0),
        _cell("g", "ours", 5, 1.5, app="gpt"),  # bits per byte: lower wins
        _cell("g", "keras_hub", 5, 1.7, app="gpt"),
        _cell("g", "baseline", None, 1.4, app="gpt"),
    ]
    rows = {r["corpus"]: r for r in transfer.table_rows(cells)}
    assert rows["a"]["beats_keras_hub"] is False
    assert rows["a"]["beats_baseline"] is True
    assert rows["a"]["ours+preset=small"]["bleu"] == 11.0
    assert rows["g"]["beats_keras_hub"] is True
    assert rows["g"]["beats_baseline"] is False
    text = transfer.markdown(list(rows.values()))
    assert "| ours+preset=small | bleu | 11.000 | 10 |" in text
    assert text.count("| no |") == 2


def test_a_test_split_is_read_once(tmp_path, monkeypatch):
    monkeypatch.setattr(transfer, "TEST_READS", str(tmp_path / "reads.json"))

    class Args:
        allow_test_reread = False

    transfer._check_test_read("a", Args)
    assert "a" in json.loads((tmp_path / "reads.json").read_text())
    with pytest.raises(SystemExit, match="read once"):
        transfer._check_test_read("a", Args)
    transfer._check_test_read("b", Args)


def test_documents_split_at_blank_lines(tmp_path):
    path = tmp_path / "text.txt"
    path.write_bytes(b"one\nline two\n\n  \nthree\r\n\r\nfour\n")
    assert transfer.split_documents(str(path)) == [
        "one\nline two",
        "three",
        "four",
    ]


def test_corpora_of_whole_files_read_one_document_per_file(
    tmp_path, monkeypatch
):
    corpus = tmp_path / "code"
    (corpus / "train_files" / "pkg").mkdir(parents=True)
    (corpus / "train_files" / "pkg" / "b.py").write_text("x = 1\n\n\ny = 2\n")
    (corpus / "train_files" / "a.py").write_text("def f():\n\treturn 1\n")
    (corpus / "train_files" / "empty.py").write_text("\n")
    for split in ("train", "valid", "test"):
        (corpus / f"{split}.txt").write_text("one\n\ntwo\n")
    (corpus / "PROVENANCE.json").write_text(
        json.dumps({"name": "code", "application": "gpt"})
    )
    monkeypatch.setenv("KERAS_TRANSFORMER_TRANSFER_CACHE", str(tmp_path))
    found = transfer.find_corpora()["code"]
    assert found["train_files"] == str(corpus / "train_files")
    assert "valid_files" not in found
    # Blank lines inside a file stay; files in path order; empty ones skipped.
    assert transfer.read_split(found, "train") == [
        "def f():\n\treturn 1\n",
        "x = 1\n\n\ny = 2\n",
    ]
    assert transfer.read_split(found, "valid") == ["one", "two"]


def test_keras_hub_counts_at_its_better_compile_setting():
    xla = _cell("a", "keras_hub", 5, 2.0)
    xla["result"]["jit_compile"] = True
    graph = _cell("a", "keras_hub_graph", 5, 9.0)
    graph["result"]["jit_compile"] = False
    cells = [_cell("a", "ours", 5, 8.0), xla, graph]
    (row,) = transfer.table_rows(cells)
    assert row["keras_hub"]["bleu"] == 9.0
    assert row["keras_hub"]["jit_compile"] is False
    assert row["beats_keras_hub"] is False
    assert "9.000 (graph)" in transfer.markdown([row])
    # Only the XLA run: it is the one compared.
    (row,) = transfer.table_rows(cells[:2])
    assert row["keras_hub"]["bleu"] == 2.0 and row["beats_keras_hub"] is True


def test_the_docs_table_is_the_results_file():
    with open(transfer.os.path.join(transfer.RESULTS, "transfer.json")) as f:
        results = json.load(f)
    with open(transfer.DOCS_PAGE, encoding="utf-8") as f:
        page = f.read()
    block = transfer.docs_table(results["rows"], results["git_commit"])
    assert block in page, "rerun `python -m benchmarks.transfer --table-only`"
    # The table is what the cells say: rebuilt from them, it is the same.
    assert transfer.table_rows(transfer.load_cells()) == results["rows"]
