"""A training run killed with SIGKILL resumes from its last backup."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).parents[2]


def _train_command(output, corpus):
    return [
        sys.executable,
        "-m",
        "keras_transformer",
        "train",
        "gpt",
        "--train-file",
        str(corpus),
        "--output",
        str(output),
        "--preset",
        "tiny",
        "--vocabulary-size",
        "120",
        "--sequence-length",
        "32",
        "--batch-size",
        "4",
        "--epochs",
        "4",
        "--steps-per-epoch",
        "10",
        "--backup-every-steps",
        "3",
    ]


def _backup_state(output):
    path = output / "backup" / "training_metadata.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:  # being rewritten
        return None


def test_sigkill_mid_epoch_then_resume(tmp_path):
    from keras_transformer.data import load_bundled_lm_text

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(load_bundled_lm_text("train")[:600]) + "\n")
    output = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    first = subprocess.Popen(
        _train_command(output, corpus),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    # Kill it once a mid-epoch backup of the second epoch exists.
    deadline = time.monotonic() + 400
    state = None
    while time.monotonic() < deadline and first.poll() is None:
        state = _backup_state(output)
        if state and state.get("epoch", 0) >= 1:
            break
        time.sleep(0.2)
    assert first.poll() is None, first.stderr.read()[-2000:]
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert not (output / "metadata.json").exists()
    killed_at = _backup_state(output)
    assert killed_at is not None and killed_at["epoch"] >= 1

    second = subprocess.run(
        _train_command(output, corpus),
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert second.returncode == 0, second.stderr[-3000:]
    metadata = json.loads((output / "metadata.json").read_text())
    # Resumed: the second run trained only the epochs left, not all four.
    assert metadata["metrics"]["epochs_run"] == 4 - killed_at["epoch"]
    assert metadata["metrics"]["epochs_run"] < 4

    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import keras, sys, keras_transformer; "
            "m = keras.saving.load_model(sys.argv[1]); "
            "print(int(m.optimizer.iterations.numpy()))",
            str(output / "model.keras"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=200,
    )
    assert check.returncode == 0, check.stderr[-2000:]
    # The step count continued from the backup instead of restarting at 0.
    assert int(check.stdout.split()[-1]) > 10 * killed_at["epoch"]
