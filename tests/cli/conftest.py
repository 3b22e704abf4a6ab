"""Fixtures of the command-line tests: tiny model directories (random
weights, no training; `tests/inference/model_dirs.py`), a runner of
`keras_transformer.cli.main` in this process and one in a fresh process."""

import io
import os
import subprocess
import sys

import pytest

from tests.inference import model_dirs as builders

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


@pytest.fixture(scope="session")
def cli_tokenizer():
    return builders.train_tokenizer()


@pytest.fixture(scope="session")
def cli_model_dirs(tmp_path_factory, cli_tokenizer):
    """{"translation", "gpt", "classifier": model directory (a Path)}."""
    root = tmp_path_factory.mktemp("cli_models")
    return builders.build_model_dirs(root, cli_tokenizer)


class CliRun:
    """The exit status, standard output and standard error of a command."""

    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err

    @property
    def last_error_line(self):
        lines = self.err.strip().splitlines()
        return lines[-1] if lines else ""

    def __repr__(self):
        return f"CliRun(code={self.code})\nout:\n{self.out}\nerr:\n{self.err}"


@pytest.fixture
def cli(capsys, monkeypatch):
    """`cli(*argv, stdin=None)` runs `main` here and returns a `CliRun`."""
    from keras_transformer.cli import main

    def run(*argv, stdin=None):
        if stdin is not None:
            data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
            stream = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
            monkeypatch.setattr(sys, "stdin", stream)
        capsys.readouterr()
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exit_:  # argparse errors and --help
            code = exit_.code
        out, err = capsys.readouterr()
        return CliRun(code, out, err)

    return run


def run_fresh(*argv, code=None, env=None, timeout=300, stdin=None):
    """Runs `python -m keras_transformer ARGV` (or `python -c CODE`) in a
    fresh process, as a user's shell would; returns a `CliRun`."""
    command = [sys.executable]
    command += ["-c", code] if code else ["-m", "keras_transformer"]
    command += [str(a) for a in argv]
    environment = {
        k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"
    }
    environment.update(env or {})
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
        cwd=REPO,
        input=stdin,
    )
    return CliRun(result.returncode, result.stdout, result.stderr)
