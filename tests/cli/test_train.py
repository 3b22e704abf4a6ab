"""`train` and `evaluate` end to end on tiny runs: the summary, `--json`,
`--skip-bad-lines` (GPT included), `--export`."""

import json
import os

import pytest

from keras_transformer.model_dir import METADATA_KEYS

TINY = ("--preset", "tiny", "--epochs", "1", "--steps-per-epoch", "2",
        "--batch-size", "8", "--vocabulary-size", "150")  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Small data files cut from the bundled corpora, one bad line each."""
    from keras_transformer.data import (
        load_bundled_genre,
        load_bundled_lm_text,
        load_bundled_translation,
    )

    root = tmp_path_factory.mktemp("cli_data")
    sources, targets = load_bundled_translation("train")
    pairs = [f"{a}\t{b}" for a, b in zip(sources[:240], targets[:240])]
    (root / "train.tsv").write_text(
        "\n".join(pairs[:100] + ["a line without any tab"] + pairs[100:200])
        + "\n",
        encoding="utf-8",
    )
    (root / "valid.tsv").write_text("\n".join(pairs[200:220]) + "\n")
    (root / "test.tsv").write_text("\n".join(pairs[220:240]) + "\n")
    lines = load_bundled_lm_text("train")[:240]
    (root / "lm.txt").write_bytes(
        "\n".join(lines[:200]).encode("utf-8")
        + b"\nGod \xff\xfe created\n"
        + "\n".join(lines[200:]).encode("utf-8")
        + b"\n"
    )
    (root / "lm_test.txt").write_text("\n".join(lines[200:]) + "\n")
    texts, labels, _ = load_bundled_genre("train")
    step = len(texts) // 160
    rows = [f"{y}\t{x}" for x, y in zip(texts[::step], labels[::step])]
    (root / "genre.tsv").write_text("\n".join(rows) + "\nno tab here\n")
    (root / "genre_test.tsv").write_text("\n".join(rows[:30]) + "\n")
    return root


def _train_json(cli, *argv):
    run = cli("train", *argv, *TINY, "--json")
    assert run.code == 0, run
    metadata = json.loads(run.out)
    return metadata


def test_train_translation_json_skip_bad_lines_and_export(cli, data, tmp_path):
    output, export = tmp_path / "m", tmp_path / "saved" / "en-es" / "1"
    metadata = _train_json(
        cli, "translation", "--train-file", data / "train.tsv",
        "--valid-file", data / "valid.tsv", "--test-file", data / "test.tsv",
        "--output", output, "--skip-bad-lines", "--export", export,
    )  # fmt: skip
    assert set(metadata) == {*METADATA_KEYS, "export"}
    assert metadata["task"] == "translation"
    assert metadata["data"]["skipped_lines"] == 1
    assert metadata["steps"] == 2
    assert metadata["export"] == str(export)
    assert (export / "saved_model.pb").exists()
    # The same command again: nothing left to train; the summary says so.
    run = cli("train", "translation", "--train-file", data / "train.tsv",
              "--valid-file", data / "valid.tsv", "--test-file",
              data / "test.tsv", "--output", output, "--skip-bad-lines",
              *TINY)  # fmt: skip
    assert run.code == 0, run
    lines = run.out.splitlines()
    assert lines[0].startswith("Trained translation for 2 steps"), run.out
    assert "Skipped 1 malformed line(s)." in lines
    assert lines[-1] == f"Model directory: {output}"
    # Without --skip-bad-lines the bad line stops a new run, in one line.
    run = cli("train", "translation", "--train-file", data / "train.tsv",
              "--output", tmp_path / "other", *TINY)  # fmt: skip
    assert run.code == 2, run
    assert f"{data / 'train.tsv'}, line 101" in run.last_error_line
    assert "--skip-bad-lines" in run.last_error_line
    assert "skip_bad_lines" not in run.last_error_line

    run = cli("evaluate", "translation", "--model", output, "--json")
    assert run.code == 0, run
    report = json.loads(run.out)
    assert report["sentences"] == 20
    assert report["test_file"].endswith("test.tsv")
    assert 0.0 <= report["bleu"] <= 100.0 and 0.0 <= report["chrf"] <= 100.0
    run = cli("evaluate", "translation", "--model", output, "--test-file",
              data / "valid.tsv")  # fmt: skip
    assert run.code == 0, run
    assert run.out.startswith("BLEU ") and "greedy search" in run.out


def test_train_gpt_skips_bad_lines_too(cli, data, tmp_path):
    output = tmp_path / "gpt"
    run = cli("train", "gpt", "--train-file", data / "lm.txt", "--output",
              tmp_path / "stopped", "--sequence-length", "16",
              *TINY)  # fmt: skip
    assert run.code == 2, run
    assert f"{data / 'lm.txt'}, line 201" in run.last_error_line
    metadata = _train_json(
        cli, "gpt", "--train-file", data / "lm.txt", "--output", output,
        "--sequence-length", "16", "--skip-bad-lines",
    )  # fmt: skip
    assert set(metadata) == set(METADATA_KEYS)
    assert metadata["task"] == "gpt"
    assert metadata["data"]["skipped_lines"] == 1
    run = cli("evaluate", "gpt", "--model", output, "--test-file",
              data / "lm_test.txt", "--json")  # fmt: skip
    assert run.code == 0, run
    report = json.loads(run.out)
    assert report["tokens"] > 100 and report["perplexity"] > 1.0
    run = cli("evaluate", "gpt", "--model", output, "--test-file",
              data / "lm_test.txt")  # fmt: skip
    assert run.code == 0 and run.out.startswith("perplexity "), run


def test_train_and_evaluate_classifier(cli, data, tmp_path):
    output = tmp_path / "genre"
    metadata = _train_json(
        cli, "classifier", "--train-file", data / "genre.tsv", "--output",
        output, "--sequence-length", "24", "--skip-bad-lines",
    )  # fmt: skip
    assert set(metadata) == set(METADATA_KEYS)
    assert metadata["task"] == "classifier"
    assert metadata["data"]["skipped_lines"] == 1
    plots = tmp_path / "plots"
    run = cli("evaluate", "classifier", "--model", output, "--test-file",
              data / "genre_test.tsv", "--output-dir", plots,
              "--json")  # fmt: skip
    assert run.code == 0, run
    report = json.loads(run.out)
    assert report["examples"] == 30
    assert sum(map(sum, report["confusion_matrix"])) == 30
    assert (plots / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    run = cli("evaluate", "classifier", "--model", output, "--test-file",
              data / "genre_test.tsv", "--output-dir", plots)  # fmt: skip
    assert run.code == 0, run
    assert run.out.startswith("examples  30\naccuracy  ")
    assert "confusion matrix (rows: true, columns: predicted)" in run.out


def test_train_bert_pretrain(cli, data, tmp_path):
    output = tmp_path / "encoder"
    metadata = _train_json(
        cli, "bert-pretrain", "--train-file", data / "lm_test.txt",
        "--output", output, "--sequence-length", "16",
    )  # fmt: skip
    assert set(metadata) == set(METADATA_KEYS)
    assert metadata["task"] == "bert-pretrain"
    assert os.path.exists(output / "model.keras")


def test_train_runs_inside_the_scale_scope(cli, tmp_path, monkeypatch):
    import keras
    import tensorflow as tf

    from keras_transformer.tasks import classifier

    seen = {}

    def fake_train(output, **kwargs):
        seen.update(
            kwargs,
            output=output,
            policy=keras.config.dtype_policy().name,
            strategy=type(tf.distribute.get_strategy()).__name__,
        )
        return {"task": "classifier", "steps": 3, "train_seconds": 6.0,
                "metrics": {"val_accuracy": 0.5}, "data": {}}  # fmt: skip

    monkeypatch.setattr(classifier, "train_classifier", fake_train)
    run = cli("train", "classifier", "--output", tmp_path / "m",
              "--mixed-precision", "bfloat16", "--strategy", "default",
              "--epochs", "2")  # fmt: skip
    assert run.code == 0, run
    assert seen["policy"] == "mixed_bfloat16"
    assert seen["verbose"] == "auto" and seen["epochs"] == 2
    assert seen["output"] == str(tmp_path / "m")
    assert keras.config.dtype_policy().name == "float32"  # restored
    assert run.out.splitlines() == [
        "Trained classifier for 3 steps in 0.1 minutes.",
        "  val_accuracy 0.5",
        f"Model directory: {tmp_path / 'm'}",
    ]
