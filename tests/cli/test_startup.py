"""In a fresh process: `--help` imports neither TensorFlow nor Keras, and
TensorFlow's C++ start-up lines are hidden unless `-v`."""

import json

from keras_transformer.cli._runtime import is_startup_noise
from tests.cli.conftest import run_fresh

_HELP_IMPORTS = """
import json, sys
sys.argv[0] = "keras-transformer"  # as the console script starts
from keras_transformer.cli import main
for argv in (["--help"], ["train", "--help"], ["evaluate", "--help"],
             ["train", "translation", "--help"], ["train", "gpt", "--help"],
             ["train", "classifier", "--help"],
             ["train", "bert-pretrain", "--help"],
             ["evaluate", "classifier", "--help"], ["translate", "--help"],
             ["generate", "--help"], ["classify", "--help"],
             ["export", "--help"], ["average-classifiers", "--help"]):
    try:
        main(argv)
    except SystemExit as exit_:
        assert exit_.code == 0, argv
heavy = ("tensorflow", "keras", "keras_hub", "keras_nlp", "tensorflow_text",
         "sentencepiece", "matplotlib")
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules
                         if m.split(".")[0] in heavy})))
"""


def test_help_imports_no_tensorflow_or_keras():
    run = run_fresh(code=_HELP_IMPORTS, timeout=120)
    assert run.code == 0, run.err
    assert json.loads(run.out.strip().splitlines()[-1]) == []
    run = run_fresh("--help", env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert run.code == 0 and "usage: keras-transformer" in run.out
    imported = [line for line in run.err.splitlines() if "|" in line]
    assert imported  # -X importtime did report
    assert not any(
        line.rsplit("|", 1)[-1].strip().split(".")[0] in ("tensorflow", "keras")
        for line in imported
    )


def test_startup_noise_pattern():
    noisy = [
        "WARNING: All log messages before absl::InitializeLog() is called "
        "are written to STDERR",
        "I0000 00:00:1796186632.596308    8470 port.cc:153] oneDNN custom "
        "operations are on.",
        "I0000 00:00:1796186632.597634    8470 cudart_stub.cc:31] Could not "
        "find cuda drivers on your machine, GPU will not be used.",
        "E0000 00:00:1715000000.123456   12345 cuda_executor.cc:1228] failed "
        "call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: "
        "UNKNOWN ERROR (303)",
        "W0000 00:00:1715000000.123456   12345 gpu_device.cc:2344] Cannot "
        "dlopen some GPU libraries.",
        "To enable the following instructions: AVX2 FMA, in other "
        "operations, rebuild TensorFlow with the appropriate compiler flags.",
    ]
    for line in noisy:
        assert is_startup_noise(line), line
    for line in (
        "keras-transformer: error: Model directory not found: x.",
        "Traceback (most recent call last):",
        "UserWarning: something",
        "Epoch 1/3",
    ):
        assert not is_startup_noise(line), line


def test_commands_hide_tensorflow_start_up_lines_unless_verbose(tmp_path):
    missing = tmp_path / "no_model"
    run = run_fresh("classify", "--model", missing, "x", timeout=120)
    assert run.code == 2, run.err
    assert run.err.splitlines() == [
        "keras-transformer: error: Model directory not found: "
        f"{missing}. Expected a directory written by `keras-transformer "
        "train`."
    ]
    # -v shows the traceback, and TensorFlow's lines where it prints them
    # (on x86 CPUs TensorFlow 2.21 always does: oneDNN, CPU features).
    verbose = run_fresh("classify", "--model", missing, "x", "-v")
    assert verbose.code == 2
    assert "Traceback" in verbose.err
    assert (
        verbose.err.strip()
        .splitlines()[-1]
        .startswith("keras-transformer: error: Model directory not found")
    )
    import platform

    if platform.machine() in ("x86_64", "AMD64"):
        assert any(is_startup_noise(line) for line in verbose.err.splitlines())


def test_a_working_command_prints_no_start_up_lines(cli_model_dirs):
    run = run_fresh(
        "translate", "--model", cli_model_dirs["translation"], "", "Hello.",
        timeout=240,
    )  # fmt: skip
    assert run.code == 0, run.err
    assert len(run.out.splitlines()) == 2 and run.out.splitlines()[0] == ""
    assert not [line for line in run.err.splitlines() if is_startup_noise(line)]
