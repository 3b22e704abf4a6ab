"""Session fixtures: tiny GPT, classifier and translation model directories,
trained once (a few steps each) and exported once as TF Serving SavedModels,
and, from fresh processes that import only TensorFlow, the results of the
bad-input battery (`battery.py`) and of `saved_model_cli show --all` on
each export."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from tests.serving.paths import (
    BATTERY,
    CLI_RUN_INPUTS,
    REPO,
    REQUESTS,
    SERVING_DIR,
)


def _fresh_env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="-1")


@pytest.fixture(scope="session")
def serving_root(tmp_path_factory):
    return tmp_path_factory.mktemp("serving")


@pytest.fixture(scope="session")
def model_dirs(serving_root):
    """{"gpt", "classifier", "translation": model directory}."""
    from keras_transformer.data import load_bundled_genre
    from keras_transformer.data.loaders import (
        load_bundled_lm_text,
        load_bundled_translation,
    )
    from keras_transformer.tasks.bert import train_classifier
    from keras_transformer.tasks.gpt import train_gpt
    from keras_transformer.tasks.translation import train_translation

    data = serving_root / "data"
    data.mkdir()
    lines = load_bundled_lm_text("train")[:200]
    (data / "lm.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    gpt_dir = serving_root / "gpt_model"
    train_gpt(
        str(gpt_dir),
        train_files=[str(data / "lm.txt")],
        preset="tiny",
        epochs=1,
        vocabulary_size=150,
        sequence_length=32,
        batch_size=8,
        steps_per_epoch=2,
    )

    texts, labels, _ = load_bundled_genre("train")
    step = len(texts) // 160
    rows = [f"{y}\t{x}" for x, y in zip(texts[::step], labels[::step])]
    (data / "genre.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    classifier_dir = serving_root / "classifier_model"
    train_classifier(
        classifier_dir,
        train_file=str(data / "genre.tsv"),
        preset="tiny",
        vocabulary_size=150,
        sequence_length=24,
        batch_size=8,
        epochs=1,
        steps_per_epoch=1,
        verbose=0,
    )

    sources, targets = load_bundled_translation("train")
    pairs = [f"{a}\t{b}" for a, b in zip(sources[:200], targets[:200])]
    (data / "pairs.tsv").write_text("\n".join(pairs) + "\n", encoding="utf-8")
    translation_dir = serving_root / "translation_model"
    train_translation(
        str(translation_dir),
        train_file=str(data / "pairs.tsv"),
        preset="tiny",
        epochs=1,
        steps_per_epoch=2,
        vocabulary_size=150,
        batch_size=8,
        verbose=0,
    )
    return {
        "gpt": gpt_dir,
        "classifier": classifier_dir,
        "translation": translation_dir,
    }


@pytest.fixture(scope="session")
def exports(model_dirs, serving_root):
    """{model: .../saved_models/model/1}."""
    from keras_transformer.export.classifier import export_classifier
    from keras_transformer.export.gpt import export_gpt
    from keras_transformer.tasks.translation import export_translation

    base = serving_root / "saved_models"
    exporters = {
        "gpt": export_gpt,
        "classifier": export_classifier,
        "translation": export_translation,
    }
    return {
        name: pathlib.Path(export(model_dirs[name], base / name / "1"))
        for name, export in exporters.items()
    }


def _saved_model_cli():
    import shutil

    executable = shutil.which("saved_model_cli") or str(
        pathlib.Path(sys.executable).parent / "saved_model_cli"
    )
    return executable if os.path.exists(executable) else None


@pytest.fixture(scope="session")
def fresh_processes(exports, serving_root):
    """Runs battery.py, `saved_model_cli show --all` and `saved_model_cli
    run` (serving_default on `CLI_RUN_INPUTS`, outputs as .npy files under
    `serving_root/saved_model_cli_run/MODEL`) on every export, all at once;
    returns {(tool, model): stdout}."""
    commands = {}
    for name, path in exports.items():
        bodies = [str(SERVING_DIR / "requests" / r) for r in REQUESTS[name]]
        commands[("battery", name)] = [
            sys.executable, str(BATTERY), name, str(path), *bodies
        ]  # fmt: skip
        if _saved_model_cli():
            commands[("saved_model_cli", name)] = [
                _saved_model_cli(), "show", "--all", "--dir", str(path)
            ]  # fmt: skip
        # `saved_model_cli run` loads through a TF1 session and the saver's
        # restore op, as TF Serving's C++ loader does.
        key, texts = CLI_RUN_INPUTS[name]
        outdir = serving_root / "saved_model_cli_run" / name
        commands[("saved_model_cli_run", name)] = [
            sys.executable, str(SERVING_DIR / "saved_model_cli.py"), "run",
            "--dir", str(path), "--tag_set", "serve",
            "--signature_def", "serving_default",
            "--input_exprs", f"{key}={json.dumps(texts)}",
            "--outdir", str(outdir), "--overwrite",
        ]  # fmt: skip
    processes = {
        key: subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_fresh_env(),
            cwd=str(REPO),
        )
        for key, command in commands.items()
    }
    outputs = {}
    for key, process in processes.items():
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, (key, err[-3000:])
        outputs[key] = out
    return outputs


@pytest.fixture(scope="session")
def battery(fresh_processes):
    """{model: the JSON results of battery.py}."""
    return {
        name: json.loads(out.strip().splitlines()[-1])
        for (tool, name), out in fresh_processes.items()
        if tool == "battery"
    }


@pytest.fixture(scope="session")
def saved_model_cli_output(fresh_processes):
    """{model: stdout of `saved_model_cli show --all --dir EXPORT`}."""
    if not _saved_model_cli():
        pytest.skip("saved_model_cli is not installed")
    return {
        name: out
        for (tool, name), out in fresh_processes.items()
        if tool == "saved_model_cli"
    }
