"""End to end: train a tiny translator, translate, evaluate, export, serve."""

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys

import pytest

from keras_transformer.cli import main
from keras_transformer.data import load_bundled_translation
from keras_transformer.tasks.translation import load_translator

SENTENCES = ["And God said, let there be light.", "The king went to the city."]


def _write_pairs(path, sources, targets, bad_line=None):
    with open(path, "w", encoding="utf-8") as f:
        for i, (source, target) in enumerate(zip(sources, targets)):
            if i == bad_line:
                f.write("a line without any tab\n")
            f.write(f"{source}\t{target}\n")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("translation")
    sources, targets = load_bundled_translation("train")
    _write_pairs(root / "train.tsv", sources[:200], targets[:200], bad_line=50)
    _write_pairs(root / "valid.tsv", sources[200:220], targets[200:220])
    _write_pairs(root / "test.tsv", sources[220:240], targets[220:240])
    model_dir = str(root / "model")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(
            [
                "train",
                "translation",
                "--train-file",
                str(root / "train.tsv"),
                "--valid-file",
                str(root / "valid.tsv"),
                "--test-file",
                str(root / "test.tsv"),
                "--output",
                model_dir,
                "--preset",
                "tiny",
                "--epochs",
                "2",
                "--warmup-steps",
                "40",
                "--skip-bad-lines",
                "--export",
                str(root / "saved_models" / "trained" / "1"),
            ]
        )
    assert code == 0
    return root, model_dir, out.getvalue()


def test_train_writes_a_complete_model_directory(trained):
    root, model_dir, stdout = trained
    for name in ("model.keras", "tokenizer.model", "metadata.json", "logs"):
        assert os.path.exists(os.path.join(model_dir, name))
    with open(os.path.join(model_dir, "metadata.json")) as f:
        metadata = json.load(f)
    assert metadata["task"] == "translation"
    assert metadata["skipped_lines"] == 1
    assert metadata["train_pairs"] == 200
    assert metadata["steps"] > 0
    assert "Skipped 1 malformed line(s)." in stdout
    exported = root / "saved_models" / "trained" / "1"
    assert (exported / "saved_model.pb").exists()
    assert f"Exported {exported}" in stdout
    samples = os.path.join(model_dir, "logs", "samples")
    assert os.listdir(samples)  # the sample-translation text summaries


def test_translate_cli_matches_python_api(trained, capsys, monkeypatch):
    _, model_dir, _ = trained
    expected = load_translator(model_dir).translate(SENTENCES)
    assert main(["translate", "--model", model_dir, *SENTENCES]) == 0
    assert capsys.readouterr().out.splitlines() == expected
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(SENTENCES)))
    assert main(["translate", "--model", model_dir, "--beam-size", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    beam = load_translator(model_dir).translate(SENTENCES, beam_size=2)
    assert lines == beam


def test_evaluate_json(trained, capsys):
    _, model_dir, _ = trained
    assert (
        main(["evaluate", "translation", "--model", model_dir, "--json"]) == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["sentences"] == 20
    assert result["test_file"].endswith("test.tsv")
    assert 0.0 <= result["bleu"] <= 100.0 and 0.0 <= result["chrf"] <= 100.0
    assert main(["evaluate", "translation", "--model", model_dir]) == 0
    assert capsys.readouterr().out.startswith("BLEU ")


_SERVE_SCRIPT = """
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the SentencePiece ops)
assert not any(m.startswith("keras_transformer") for m in sys.modules)
loaded = tf.saved_model.load(sys.argv[1])
texts = json.loads(sys.argv[2])
out = loaded.signatures["serving_default"](text=tf.constant(texts))
ids = loaded.signatures["translate_ids"](
    encoder_token_ids=tf.constant(json.loads(sys.argv[3]), tf.int32))
print(json.dumps({
    "translation": [t.decode("utf-8") for t in out["translation"].numpy()],
    "token_ids": ids["token_ids"].numpy().tolist(),
}))
"""


def _scrambled_copy(model_dir, destination):
    """A copy of a model directory with large random weights.

    A tiny model trained for seconds outputs little but end tokens; large
    random weights make its outputs long and input-dependent, so that the
    comparisons below check real token sequences.
    """
    import keras
    import numpy as np

    shutil.copytree(model_dir, destination)
    path = os.path.join(destination, "model.keras")
    model = keras.saving.load_model(path, compile=False)
    rng = np.random.RandomState(0)
    for variable in model.variables:
        shape = tuple(variable.shape)
        if len(shape) < 2:
            continue
        scale = 1.0 if "embedding" in variable.path else 3 / np.sqrt(shape[0])
        variable.assign(rng.normal(size=shape).astype("float32") * scale)
    model.save(path)
    return str(destination)


def test_export_serves_the_same_translations(trained, capsys):
    root, trained_dir, _ = trained
    model_dir = _scrambled_copy(trained_dir, root / "scrambled")
    export_dir = str(root / "saved_models" / "tiny" / "1")
    assert main(["export", "--model", model_dir, "--output", export_dir]) == 0
    assert "Exported" in capsys.readouterr().out
    translator = load_translator(model_dir, batch_size=2)
    texts = SENTENCES + ["", "Yahweh"]
    source_ids = translator.encode_texts(SENTENCES)
    from keras_transformer.data.translation import pad_batch

    padded = pad_batch(source_ids)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _SERVE_SCRIPT,
            export_dir,
            json.dumps(texts),
            json.dumps(padded.tolist()),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert all(served["translation"][:2])  # non-empty, real sequences
    assert served["translation"] == translator.translate(texts)
    assert served["token_ids"] == translator.translate_ids(padded).tolist()

    # A TF Serving version is immutable: exporting again is a clean error.
    assert main(["export", "--model", model_dir, "--output", export_dir]) == 2
    assert "already exists" in capsys.readouterr().err

    cli = shutil.which("saved_model_cli") or os.path.join(
        os.path.dirname(sys.executable), "saved_model_cli"
    )
    shown = subprocess.run(
        [cli, "show", "--all", "--dir", export_dir],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    for name in ("serving_default", "translate_ids", "inputs['text']"):
        assert name in shown.stdout
    assert "outputs['translation']" in shown.stdout


def test_malformed_tsv_names_the_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.tsv"
    bad.write_text("hello\thola\nno tab on this line\n", encoding="utf-8")
    code = main(
        [
            "train",
            "translation",
            "--train-file",
            str(bad),
            "--output",
            str(tmp_path / "model"),
            "--preset",
            "tiny",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "bad.tsv, line 2" in err
    assert err.count("\n") == 1  # one clean line, no traceback


def test_missing_or_wrong_model_directory(tmp_path, capsys):
    missing = str(tmp_path / "nowhere")
    assert main(["translate", "--model", missing, "hello"]) == 2
    assert "not found" in capsys.readouterr().err
    other = tmp_path / "classifier"
    other.mkdir()
    (other / "metadata.json").write_text('{"task": "classifier"}')
    assert main(["evaluate", "translation", "--model", str(other)]) == 2
    assert "'classifier' model" in capsys.readouterr().err
    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    assert (
        main(
            [
                "export",
                "--model",
                str(incomplete),
                "--output",
                str(tmp_path / "out" / "1"),
            ]
        )
        == 2
    )
    assert "metadata.json" in capsys.readouterr().err


def test_example_script_runs(tmp_path, capsys):
    import runpy

    example = os.path.join(
        os.path.dirname(__file__), "..", "..", "examples", "translate.py"
    )
    module = runpy.run_path(example)
    outputs = module["main"](
        [
            "--output",
            str(tmp_path / "example"),
            "--preset",
            "tiny",
            "--minutes",
            "0.2",
            "--epochs",
            "1",
            "--steps-per-epoch",
            "5",
            "--max-train-pairs",
            "150",
            "--beam-size",
            "2",
        ]
    )
    assert len(outputs) == 2
    assert "BLEU" in capsys.readouterr().out


def test_time_budget_stops_cleanly_and_training_resumes(trained, tmp_path):
    from keras_transformer.tasks.translation import train_translation

    root, _, _ = trained
    kwargs = dict(
        train_file=str(root / "train.tsv"),
        valid_file=str(root / "valid.tsv"),
        preset="tiny",
        steps_per_epoch=3,
        skip_bad_lines=True,
        verbose=0,
    )
    output = str(tmp_path / "model")
    first = train_translation(output, epochs=1, max_minutes=1e-4, **kwargs)
    assert first["stopped_early"] and first["steps"] == 1
    assert os.path.exists(os.path.join(output, "model.keras"))
    # The same command with more epochs resumes after the finished epoch.
    second = train_translation(output, epochs=2, **kwargs)
    assert not second["stopped_early"]
    assert second["steps"] == 4 and second["epochs_run"] == 1
