"""Tests of the GPT task: data packing, training end to end, export, errors."""

import json
import os
import runpy
import shutil
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest

import keras_transformer
from keras_transformer import model_dir as model_dir_lib
from keras_transformer.data import lm as lm_data
from keras_transformer.data.loaders import DataFormatError, load_bundled_lm_text
from keras_transformer.export import ExportError, export_gpt
from keras_transformer.inference import TextGenerator, make_sampler
from keras_transformer.tasks.gpt import evaluate_gpt, train_gpt

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
# End to end through the Python API
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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metadata = train_gpt(
            str(output),
            train_files=[str(text_files / "train.txt")],
            valid_files=[str(text_files / "valid.txt")],
            preset="tiny",
            epochs=1,
            vocabulary_size=200,
            sequence_length=32,
            warmup_steps=20,
            verbose=0,
        )
    assert metadata == json.loads((output / "metadata.json").read_text())
    # The training data repeats: Keras never runs out of it.
    assert not any("ran out of data" in str(w.message) for w in caught)
    return output


def test_train_writes_a_complete_model_directory(trained_dir):
    metadata = json.loads((trained_dir / "metadata.json").read_text())
    assert tuple(metadata) == model_dir_lib.METADATA_KEYS
    assert metadata["task"] == "gpt"
    assert metadata["inference"]["max_sequence_length"] == 32
    assert metadata["settings"]["sequence_length"] == 32
    assert metadata["config"]["max_sequence_length"] == 32
    assert metadata["config"]["vocabulary_size"] == 200
    assert metadata["tokenizer"]["vocabulary_size"] == 200
    assert metadata["metrics"]["best_val_perplexity"] < 200
    assert metadata["metrics"]["epochs_run"] == 1
    assert metadata["steps"] > 0 and metadata["train_seconds"] > 0
    data = metadata["data"]
    assert data["train"][0].endswith("train.txt")
    assert data["valid"][0].endswith("valid.txt")
    assert data["train_lines"] == 340 and data["skipped_lines"] == 0
    # One pass over the full batches of windows per epoch.
    assert metadata["steps"] == data["train_examples"] // 16
    for name in ("model.keras", "tokenizer.model", "logs", "backup"):
        assert (trained_dir / name).exists()
    samples = trained_dir / "logs" / "samples"
    assert samples.is_dir() and os.listdir(samples)
    card = (trained_dir / "README.md").read_text(encoding="utf-8")
    assert "gpt" in card.splitlines()[0]
    assert "keras-transformer generate" in card


def test_generate_stream_and_batch(trained_dir):
    generator = keras_transformer.load(str(trained_dir))
    assert isinstance(generator, TextGenerator)
    sampler = make_sampler("top_k", top_k=10)
    batch = generator.generate(["And God"], 10, sampler, seed=3)
    streamed = "".join(generator.stream("And God", 10, sampler, seed=3))
    # Streaming runs the same steps and noise as the batched loop.
    full = generator.generate(
        ["And God"], 10, sampler, seed=3, return_full_text=True
    )[0]
    assert full == "And God" + streamed
    assert batch[0].strip() == streamed.strip()
    beams = generator.generate(["one", "two"], 6, make_sampler("beam"))
    assert len(beams) == 2


def test_evaluate(trained_dir, text_files):
    result = evaluate_gpt(str(trained_dir), [str(text_files / "valid.txt")])
    metadata = json.loads((trained_dir / "metadata.json").read_text())
    assert result["tokens"] > 100
    assert result["data"][0].endswith("valid.txt")
    # Same text and windows as validation: the best validation perplexity.
    assert result["perplexity"] == pytest.approx(
        metadata["metrics"]["best_val_perplexity"], rel=1e-3
    )
    assert result["loss"] == pytest.approx(np.log(result["perplexity"]))


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
             top_k=tf.constant(20), top_p=tf.constant(0.95),
             no_repeat_ngram_size=tf.constant(0),
             repetition_penalty=tf.constant(1.0),
             min_new_tokens=tf.constant(0), stop=tf.constant([], tf.string),
             stop_token_ids=tf.constant([], tf.int32))
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

    os.makedirs(path)
    tokenizer = SubwordTokenizer(tokenizer_proto)
    tokenizer.save(os.path.join(path, "tokenizer.model"))
    keras.utils.set_random_seed(3)
    config = dict(
        vocabulary_size=tokenizer.vocabulary_size,
        num_layers=2,
        hidden_dim=16,
        num_heads=2,
        intermediate_dim=32,
        max_sequence_length=128,
    )
    gpt_lm(**config).save(os.path.join(path, "model.keras"))
    metadata = model_dir_lib.make_metadata(
        "gpt",
        config=config,
        settings={},
        tokenizer={"vocabulary_size": tokenizer.vocabulary_size},
        data={},
        inference={"max_sequence_length": 128},
        train_seconds=None,
        steps=0,
        metrics={},
    )
    model_dir_lib.write_metadata(path, metadata)
    return tokenizer


def test_export_matches_python_generator_in_fresh_process(
    trained_dir, tmp_path
):
    proto = (trained_dir / "tokenizer.model").read_bytes()
    model_dir = str(tmp_path / "random")
    _random_model_dir(model_dir, proto)
    output = str(tmp_path / "saved" / "gpt" / "1")
    assert export_gpt(model_dir, output) == output
    # A second export to the same version is refused.
    with pytest.raises(ExportError, match="already exists"):
        export_gpt(model_dir, output)

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

    generator = keras_transformer.load(model_dir)
    default_tokens = min(64, generator.max_sequence_length - 1)
    expected = generator.generate(prompts, default_tokens)
    assert result["default"] == expected
    assert any(text.strip() for text in expected)
    assert result["greedy"] == generator.generate(prompts, 8)
    assert result["seed_a"] == result["seed_b"]
    assert result["seed_a"] != result["greedy"]


def test_wrong_task_or_missing_model_dir_is_a_clean_error(tmp_path):
    other = tmp_path / "translation_model"
    other.mkdir()
    (other / "metadata.json").write_text('{"task": "translation"}')
    with pytest.raises(
        model_dir_lib.ModelDirectoryError, match="'translation' model"
    ):
        evaluate_gpt(str(other))
    with pytest.raises(model_dir_lib.ModelDirectoryError, match="not found"):
        evaluate_gpt(str(tmp_path / "missing"))
    with pytest.raises(
        model_dir_lib.ModelDirectoryError, match="'translation' model"
    ):
        train_gpt(str(other), preset="tiny")


def test_bad_arguments_fail_before_reading_data(tmp_path):
    output = str(tmp_path / "model")
    with pytest.raises(ValueError, match="Received: preset='huge'"):
        train_gpt(output, preset="huge")
    with pytest.raises(ValueError, match="Received: sequence_length=1"):
        train_gpt(output, sequence_length=1)
    with pytest.raises(ValueError, match="Received: epochs=0"):
        train_gpt(output, epochs=0)
    with pytest.raises(ValueError, match="`valid_files` needs `train_files`"):
        train_gpt(output, valid_files=["valid.txt"])
    assert not os.path.exists(output)


def test_invalid_utf8_names_the_line_or_is_skipped(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"In the beginning\nbad \xff byte\nthe end\n")
    with pytest.raises(DataFormatError, match=r"bad\.txt, line 2") as error:
        train_gpt(str(tmp_path / "model"), train_files=[str(bad)])
    assert "skip_bad_lines=True" in str(error.value)
    from keras_transformer.tasks.gpt import read_texts

    documents, skipped = read_texts(str(bad), skip_bad_lines=True)
    # One document (no blank line), read once; the bad line left out.
    assert documents == ["In the beginning\nthe end"] and skipped == 1


def test_training_resumes_from_the_last_epoch(text_files, tmp_path, caplog):
    output = str(tmp_path / "resumed")
    # A line of invalid UTF-8, skipped.
    train_file = tmp_path / "train.txt"
    train_file.write_bytes(
        b"\xff\xfe not UTF-8\n" + (text_files / "train.txt").read_bytes()
    )
    common = dict(
        train_files=[str(train_file)],  # 5% held out
        preset="tiny",
        vocabulary_size=150,
        sequence_length=16,
        steps_per_epoch=2,
        max_train_examples=120,
        skip_bad_lines=True,
        verbose=0,
    )
    first = train_gpt(output, epochs=1, **common)
    assert first["metrics"]["epochs_run"] == 1 and first["steps"] == 2
    assert first["data"]["skipped_lines"] == 1
    # The first 120 lines are read (the bad one included); the file is one
    # document (no blank lines), its last 5% of lines held out.
    assert first["data"]["train_lines"] == 113
    assert first["data"]["valid_lines"] == 6
    assert first["data"]["train_documents"] == 1
    assert first["data"]["valid"] == "held-out:train"
    tokenizer = (tmp_path / "resumed" / "tokenizer.model").read_bytes()
    with caplog.at_level("INFO"):
        second = train_gpt(output, epochs=2, **common)
    assert "Resuming" in caplog.text
    # Only the second epoch ran; the tokenizer was kept.
    assert second["metrics"]["epochs_run"] == 1 and second["steps"] == 4
    assert (tmp_path / "resumed" / "tokenizer.model").read_bytes() == tokenizer
    # A finished run has nothing left to do and keeps its metadata.
    assert train_gpt(output, epochs=2, **common) == second

    # Other settings than the recorded ones stop the run, naming each.
    with pytest.raises(
        model_dir_lib.ResumeMismatchError, match="--batch-size was 16, now 8"
    ):
        train_gpt(output, epochs=3, batch_size=8, **common)
    # force=True accepts them and records them.
    third = train_gpt(output, epochs=3, batch_size=8, force=True, **common)
    assert third["steps"] == 6 and third["settings"]["batch_size"] == 8
    run = json.loads((tmp_path / "resumed" / "run.json").read_text())
    assert run["settings"]["batch_size"] == 8
