"""Session fixtures: tiny GPT, classifier and translation model directories
(random weights, built in seconds), exported once as TF Serving SavedModels,
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
    """{"gpt", "classifier", "translation": model directory (a Path)}.

    Tiny models with random weights (`tests/inference/model_dirs.py`): the
    serving contract does not depend on training, and building takes
    seconds where training took minutes.
    """
    from tests.inference.model_dirs import build_model_dirs

    return build_model_dirs(serving_root)


@pytest.fixture(scope="session")
def exports(model_dirs, serving_root):
    """{model: .../saved_models/model/1}, written by `export_model`."""
    from keras_transformer.export import export_model

    base = serving_root / "saved_models"
    return {
        name: pathlib.Path(export_model(str(path), base / name / "1"))
        for name, path in model_dirs.items()
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
