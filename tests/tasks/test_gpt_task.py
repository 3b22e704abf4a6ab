"""Tests of the GPT task: data packing, CLI end to end, export, errors."""

import io
import json
import os
import runpy
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_transformer import cli
from keras_transformer.data import lm as lm_data
from keras_transformer.data.loaders import load_bundled_lm_text

EXAMPLE = os.path.join(
    os.path.dirname(__file__), "..", "..", "examples", "generate.py"
)


# ----------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------
def test_pack_windows_values():
    rows = [[2, 10, 11, 3], [2, 12, 3], [2, 13, 14, 15, 3]]
    windows = lm_data.pack_windows(rows, 4)
    # Stream: 2 10 11 3 2 12 3 2 13 14 15 3 (12 tokens, 11 labels).
    assert windows.tolist() == [
        [2, 10, 11, 3, 2],
        [2, 12, 3, 2, 13],
        [13, 14, 15, 3, 0],
    ]
    assert lm_data.pack_windows(rows, 4, pad_last=False).shape == (2, 5)
    inputs, labels = lm_data.windows_to_examples(windows)
    assert inputs["token_ids"][2].tolist() == [13, 14, 15, 3]
    assert labels[2].tolist() == [14, 15, 3, 0]
    assert inputs["padding_mask"].all()
    # Every stream token after the first is a label exactly once.
    real = labels[labels != 0].tolist()
    assert real == [t for row in rows for t in row][1:]


def test_lm_dataset_batches_and_shuffles():
    windows = lm_data.pack_windows([[2] + list(range(4, 40)) + [3]], 5)
    dataset = lm_data.lm_dataset(windows, batch_size=3)
    inputs, labels = next(iter(dataset))
    assert inputs["token_ids"].shape == (3, 5)
    assert inputs["padding_mask"].dtype.name == "bool"
    np.testing.assert_array_equal(
        inputs["token_ids"].numpy()[:, 1:], labels.numpy()[:, :-1]
    )
    shuffled = lm_data.lm_dataset(windows, 2, shuffle=True, seed=1)
    seen = sorted(
        tuple(row) for x, _ in shuffled for row in x["token_ids"].numpy()
    )
    assert seen == sorted(tuple(row) for row in windows[:, :-1])
    with pytest.raises(ValueError, match="Received: sequence_length=0"):
        lm_data.pack_windows([[1, 2]], 0)


# ----------------------------------------------------------------------
# End to end through the command line
# ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def text_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpt_text")
    lines = load_bundled_lm_text("train")[:400]
    (root / "train.txt").write_text("\n".join(lines[:340]) + "\n")
    (root / "valid.txt").write_text("\n".join(lines[340:]) + "\n")
    return root


@pytest.fixture(scope="module")
def trained_dir(text_files, tmp_path_factory):
    output = tmp_path_factory.mktemp("gpt_run") / "model"
    code = cli.main(
        [
            "train",
            "gpt",
            "--train-file",
            str(text_files / "train.txt"),
            "--valid-file",
            str(text_files / "valid.txt"),
            "--output",
            str(output),
            "--preset",
            "tiny",
            "--epochs",
            "1",
            "--vocabulary-size",
            "200",
            "--sequence-length",
            "32",
            "--warmup-steps",
            "20",
        ]
    )
    assert code == 0
    return output


def test_train_writes_a_complete_model_directory(trained_dir):
    metadata = json.loads((trained_dir / "metadata.json").read_text())
    assert metadata["task"] == "gpt"
    assert metadata["sequence_length"] == 32
    assert metadata["model_config"]["max_sequence_length"] == 32
    assert metadata["model_config"]["vocabulary_size"] == 200
    assert metadata["best_val_perplexity"] < 200
    for name in ("model.keras", "tokenizer.model", "logs", "backup"):
        assert (trained_dir / name).exists()
    samples = trained_dir / "logs" / "samples"
    assert samples.is_dir() and os.listdir(samples)


def test_generate_stream_batch_and_stdin(trained_dir, capsys, monkeypatch):
    from keras_transformer.tasks.gpt import load_generator, make_sampler

    generator = load_generator(str(trained_dir))
    sampler = make_sampler("top_k", top_k=10)
    batch = generator.generate(["And God"], 10, sampler, seed=3)
    streamed = "".join(generator.stream("And God", 10, sampler, seed=3))
    # Streaming runs the same steps and noise as the batched loop.
    full = generator.generate(
        ["And God"], 10, sampler, seed=3, return_full_text=True
    )[0]
    assert full == "And God" + streamed
    assert batch[0].strip() == streamed.strip()

    args = ["generate", "--model", str(trained_dir)]
    assert cli.main(args + ["--max-new-tokens", "6", "In the beginning"]) == 0
    assert cli.main(args + ["--max-new-tokens", "6", "Jesus"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("In the beginning")
    monkeypatch.setattr(sys, "stdin", io.StringIO("one\ntwo\n"))
    assert cli.main(args + ["--no-stream", "--sampler", "beam"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].startswith("two")


def test_evaluate_json(trained_dir, text_files, capsys):
    code = cli.main(
        [
            "evaluate",
            "gpt",
            "--model",
            str(trained_dir),
            "--test-file",
            str(text_files / "valid.txt"),
            "--json",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    metadata = json.loads((trained_dir / "metadata.json").read_text())
    assert result["tokens"] > 100
    # Same text and windows as validation: the best validation perplexity.
    assert result["perplexity"] == pytest.approx(
        metadata["best_val_perplexity"], rel=1e-3
    )


def test_example_script_runs(trained_dir, capsys):
    runpy.run_path(EXAMPLE, run_name="not_main")["main"](
        ["--model", str(trained_dir), "--max-new-tokens", "5", "Jesus"]
    )
    out = capsys.readouterr().out
    assert "greedy : Jesus" in out and "stream : Jesus" in out


_FRESH_PROCESS = r"""
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the SentencePiece ops)
path, prompts = sys.argv[1], json.loads(sys.argv[2])
model = tf.saved_model.load(path)
serve = model.signatures["serving_default"]
generate = model.signatures["generate"]
def run(**kwargs):
    out = generate(prompt=tf.constant(prompts), **kwargs)["completion"]
    return [s.decode() for s in out.numpy().tolist()]
knobs = dict(max_new_tokens=tf.constant(8), temperature=tf.constant(1.0),
             top_k=tf.constant(20), top_p=tf.constant(0.95))
greedy = dict(knobs, temperature=tf.constant(0.0))
result = {
    "default": [s.decode() for s in
                serve(prompt=tf.constant(prompts))["completion"].numpy()],
    "greedy": run(seed=tf.constant(0, tf.int64), **greedy),
    "seed_a": run(seed=tf.constant(5, tf.int64), **knobs),
    "seed_b": run(seed=tf.constant(5, tf.int64), **knobs),
    "empty_batch": serve(prompt=tf.constant([], tf.string))[
        "completion"].numpy().tolist(),
    "keras_transformer_imported": any(
        m.startswith("keras_transformer") for m in sys.modules),
}
print(json.dumps(result))
"""


def _random_model_dir(path, tokenizer_proto):
    """A model directory with an untrained model (varied greedy output)."""
    from keras_transformer.applications.gpt import gpt_lm

    from keras_transformer.tokenizers import SubwordTokenizer
    from keras_transformer.training import write_metadata

    os.makedirs(path)
    tokenizer = SubwordTokenizer(tokenizer_proto)
    tokenizer.save(os.path.join(path, "tokenizer.model"))
    keras.utils.set_random_seed(3)
    model = gpt_lm(tokenizer.vocabulary_size, 2, 16, 2, 32, 128)
    model.save(os.path.join(path, "model.keras"))
    write_metadata(path, "gpt", sequence_length=32)
    return tokenizer


def test_export_matches_python_generator_in_fresh_process(
    trained_dir, tmp_path, capsys
):
    from keras_transformer.tasks.gpt import load_generator

    proto = (trained_dir / "tokenizer.model").read_bytes()
    model_dir = str(tmp_path / "random")
    _random_model_dir(model_dir, proto)
    output = str(tmp_path / "saved" / "gpt" / "1")
    assert cli.main(["export", "--model", model_dir, "--output", output]) == 0
    assert "Exported" in capsys.readouterr().out
    # A second export to the same version is refused.
    assert cli.main(["export", "--model", model_dir, "--output", output]) == 2

    saved_model_cli = shutil.which("saved_model_cli")
    if saved_model_cli:
        shown = subprocess.run(
            [saved_model_cli, "show", "--dir", output, "--all"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert shown.returncode == 0, shown.stderr[-2000:]
        for name in ("serving_default", "generate", "top_p", "completion"):
            assert name in shown.stdout

    prompts = ["In the beginning", "", "And God said to Moses, and " * 5]
    completed = subprocess.run(
        [sys.executable, "-c", _FRESH_PROCESS, output, json.dumps(prompts)],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert not result["keras_transformer_imported"]
    assert result["empty_batch"] == []

    generator = load_generator(model_dir)
    default_tokens = min(64, generator.max_sequence_length - 1)
    expected = generator.generate(prompts, default_tokens)
    assert result["default"] == expected
    assert any(text.strip() for text in expected)
    assert result["greedy"] == generator.generate(prompts, 8)
    assert result["seed_a"] == result["seed_b"]
    assert result["seed_a"] != result["greedy"]


def test_wrong_task_or_missing_model_dir_is_a_clean_error(tmp_path, capsys):
    from keras_transformer.training import write_metadata

    other = tmp_path / "translation_model"
    other.mkdir()
    write_metadata(str(other), "translation")
    for argv in (
        ["generate", "--model", str(other), "hello"],
        ["evaluate", "gpt", "--model", str(other)],
        ["generate", "--model", str(tmp_path / "missing"), "hello"],
    ):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("keras-transformer: error:")
        assert "Traceback" not in err


def test_training_resumes_from_the_last_epoch(text_files, tmp_path, caplog):
    from keras_transformer.tasks.gpt import train_gpt

    output = str(tmp_path / "resumed")
    common = dict(
        train_files=[str(text_files / "train.txt")],  # 5% held out
        preset="tiny",
        vocabulary_size=150,
        sequence_length=16,
        steps_per_epoch=2,
        max_train_lines=120,
    )
    first = train_gpt(output, epochs=1, **common)
    assert first["epochs_run"] == 1
    tokenizer = (tmp_path / "resumed" / "tokenizer.model").read_bytes()
    with caplog.at_level("INFO"):
        second = train_gpt(output, epochs=2, **common)
    assert "Resuming" in caplog.text
    # Only the second epoch ran; the tokenizer was kept.
    assert second["epochs_run"] == 1
    assert (tmp_path / "resumed" / "tokenizer.model").read_bytes() == tokenizer
    # A finished run has nothing left to do and keeps its metadata.
    assert train_gpt(output, epochs=2, **common) == second
