"""End to end: train a tiny translator, translate, evaluate, export, serve."""

import json
import logging
import os
import shutil
import subprocess
import sys
import warnings

import pytest

import keras_transformer
from keras_transformer import model_dir as model_dir_lib
from keras_transformer.data import load_bundled_translation
from keras_transformer.data.loaders import DataFormatError
from keras_transformer.export import ExportError, export_translation
from keras_transformer.inference import Translator
from keras_transformer.tasks.translation import (
    evaluate_translation,
    train_translation,
)

SENTENCES = ["And God said, let there be light.", "The king went to the city."]


def _write_pairs(path, sources, targets, bad_line=None):
    with open(path, "w", encoding="utf-8") as f:
        for i, (source, target) in enumerate(zip(sources, targets)):
            if i == bad_line:
                f.write("a line without any tab\n")
            f.write(f"{source}\t{target}\n")


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("translation")
    sources, targets = load_bundled_translation("train")
    _write_pairs(root / "train.tsv", sources[:200], targets[:200], bad_line=50)
    _write_pairs(root / "valid.tsv", sources[200:220], targets[200:220])
    _write_pairs(root / "test.tsv", sources[220:240], targets[220:240])
    model_dir = str(root / "model")
    records = _Records()
    logger = logging.getLogger("keras_transformer")
    level = logger.level
    logger.addHandler(records)
    logger.setLevel(logging.INFO)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            metadata = train_translation(
                model_dir,
                train_file=str(root / "train.tsv"),
                valid_file=str(root / "valid.tsv"),
                test_file=str(root / "test.tsv"),
                preset="tiny",
                epochs=2,
                warmup_steps=40,
                skip_bad_lines=True,
                verbose=0,
            )
    finally:
        logger.removeHandler(records)
        logger.setLevel(level)
    messages = records.messages + [str(w.message) for w in caught]
    exported = export_translation(
        model_dir, str(root / "saved_models" / "trained" / "1")
    )
    return root, model_dir, metadata, messages, exported


def test_train_writes_a_complete_model_directory(trained):
    root, model_dir, returned, messages, exported = trained
    for name in ("model.keras", "tokenizer.model", "metadata.json", "logs"):
        assert os.path.exists(os.path.join(model_dir, name))
    with open(os.path.join(model_dir, "metadata.json")) as f:
        metadata = json.load(f)
    assert metadata == returned
    assert tuple(metadata) == model_dir_lib.METADATA_KEYS
    assert metadata["task"] == "translation"
    assert metadata["data"]["skipped_lines"] == 1
    assert metadata["data"]["train_examples"] == 200
    assert metadata["data"]["test"].endswith("test.tsv")
    assert metadata["steps"] > 0
    assert metadata["settings"]["warmup_steps"] == 40
    assert metadata["settings"]["batch_size"] == 16  # the tiny preset's
    assert metadata["inference"]["max_length"] == 64
    assert metadata["metrics"]["epochs_run"] == 2
    assert 0.0 <= metadata["metrics"]["best_val_accuracy"] <= 1.0
    assert any("Skipped 1 malformed line(s)" in m for m in messages)
    # The training data repeats: Keras never runs out of it.
    assert not any("ran out of data" in m for m in messages)
    exported_dir = root / "saved_models" / "trained" / "1"
    assert exported == str(exported_dir)
    assert (exported_dir / "saved_model.pb").exists()
    samples = os.path.join(model_dir, "logs", "samples")
    assert os.listdir(samples)  # the sample-translation text summaries
    with open(os.path.join(model_dir, "README.md"), encoding="utf-8") as f:
        card = f.read()
    assert "translation" in card.splitlines()[0]
    assert "keras-transformer translate" in card


def test_load_returns_a_translator(trained):
    _, model_dir, _, _, _ = trained
    translator = keras_transformer.load(model_dir)
    assert isinstance(translator, Translator)
    outputs = translator(SENTENCES)
    assert len(outputs) == 2 and all(isinstance(o, str) for o in outputs)
    assert translator(SENTENCES[0]) == outputs[0]
    assert len(translator.translate(SENTENCES, num_beams=2)) == 2


def test_evaluate(trained, capsys):
    _, model_dir, _, _, _ = trained
    result = evaluate_translation(model_dir)
    assert result["sentences"] == 20
    assert result["test_file"].endswith("test.tsv")
    assert 0.0 <= result["bleu"] <= 100.0 and 0.0 <= result["chrf"] <= 100.0
    assert result["num_beams"] == 1 and result["length_penalty"] is None
    assert capsys.readouterr().out == ""  # verbose=0: no progress bar
    # A progress bar over the decoded batches (3 batches of 4 sentences).
    translator = Translator.from_dir(model_dir, batch_size=4)
    beam = evaluate_translation(
        model_dir, num_beams=2, translator=translator, max_pairs=12, verbose=1
    )
    assert beam["sentences"] == 12 and beam["length_penalty"] == 0.6
    assert "12/12" in capsys.readouterr().out


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


def test_export_serves_the_same_translations(trained):
    root, trained_dir, _, _, _ = trained
    model_dir = _scrambled_copy(trained_dir, root / "scrambled")
    export_dir = str(root / "saved_models" / "tiny" / "1")
    assert export_translation(model_dir, export_dir) == export_dir
    translator = keras_transformer.load(model_dir, batch_size=2)
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
    with pytest.raises(ExportError, match="already exists"):
        export_translation(model_dir, export_dir)

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


def test_malformed_tsv_names_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("hello\thola\nno tab on this line\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"bad\.tsv, line 2") as error:
        train_translation(
            str(tmp_path / "model"), train_file=str(bad), preset="tiny"
        )
    assert "\n" not in str(error.value)  # one clean line


def test_bad_arguments_fail_before_reading_data(tmp_path):
    output = str(tmp_path / "model")
    with pytest.raises(ValueError, match="Received: preset='huge'"):
        train_translation(output, preset="huge")
    with pytest.raises(ValueError, match="Received: batch_size=0"):
        train_translation(output, preset="tiny", batch_size=0)
    with pytest.raises(ValueError, match="Received: max_minutes=-1"):
        train_translation(output, preset="tiny", max_minutes=-1)
    with pytest.raises(FileNotFoundError, match="missing.tsv"):
        train_translation(output, test_file=str(tmp_path / "missing.tsv"))
    assert not os.path.exists(output)


def test_missing_or_wrong_model_directory(tmp_path):
    missing = str(tmp_path / "nowhere")
    with pytest.raises(model_dir_lib.ModelDirectoryError, match="not found"):
        evaluate_translation(missing)
    other = tmp_path / "classifier"
    other.mkdir()
    (other / "metadata.json").write_text('{"task": "classifier"}')
    with pytest.raises(
        model_dir_lib.ModelDirectoryError, match="'classifier' model"
    ):
        evaluate_translation(str(other))
    with pytest.raises(ValueError, match="must be a directory"):
        train_translation(str(other / "metadata.json"), preset="tiny")
    with pytest.raises(
        model_dir_lib.ModelDirectoryError, match="'classifier' model"
    ):
        train_translation(str(other), preset="tiny")
    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    with pytest.raises(model_dir_lib.ModelDirectoryError, match="metadata"):
        export_translation(str(incomplete), str(tmp_path / "out" / "1"))


@pytest.mark.slow  # long: run with -m slow
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
            "--max-train-examples",
            "150",
            "--num-beams",
            "2",
        ]
    )
    assert len(outputs) == 2
    assert "BLEU" in capsys.readouterr().out


@pytest.mark.slow  # long: run with -m slow
def test_time_budget_stops_cleanly_and_training_resumes(trained, tmp_path):
    root, _, _, _, _ = trained
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
    assert first["metrics"]["stopped_early"] and first["steps"] == 1
    assert os.path.exists(os.path.join(output, "model.keras"))
    # The same call with more epochs resumes after the finished epoch.
    second = train_translation(output, epochs=2, **kwargs)
    assert not second["metrics"]["stopped_early"]
    assert second["steps"] == 4 and second["metrics"]["epochs_run"] == 1
    assert second["train_seconds"] > 0

    # Other settings than the recorded ones stop the run, naming each.
    with pytest.raises(
        model_dir_lib.ResumeMismatchError, match="--warmup-steps was 30, now 50"
    ):
        train_translation(output, epochs=3, warmup_steps=50, **kwargs)
    assert second == json.loads(
        (tmp_path / "model" / "metadata.json").read_text()
    )
    # force=True accepts them and records them.
    third = train_translation(
        output, epochs=3, warmup_steps=50, force=True, **kwargs
    )
    assert third["steps"] == 7 and third["settings"]["warmup_steps"] == 50
