"""What every command does around its work: a quiet TensorFlow start,
progress on standard error, results on standard output.

TensorFlow writes start-up lines from C++ before its logging is set up
(`WARNING: All log messages before absl::InitializeLog() ...`, oneDNN and
CPU-feature notices, `Could not find cuda drivers`, and on a CPU-only
machine with CUDA libraries `E0000 ... failed call to cuInit`).
`TF_CPP_MIN_LOG_LEVEL=3` does not hide them (measured with TensorFlow
2.21: they ignore it), so `import_quietly` imports TensorFlow, the
command's modules and the device list (where cuInit runs) with file
descriptor 2 sent to a temporary file, then writes back every line that is
not such a notice. `-v` shows everything.
"""

import contextlib
import importlib
import json
import os
import re
import sys
import tempfile

# C++ log lines (glog/absl format `I0000 00:00:1796186632.596308 8470
# port.cc:153] ...`), absl's preamble and the CPU-feature continuation.
_STARTUP_NOISE = re.compile(
    r"(?:[IWE]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w./-]+:\d+\] "
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|To enable the following instructions: .* rebuild TensorFlow with "
    r"the appropriate compiler flags\.)"
)


def is_startup_noise(line):
    """Whether a line of standard error is one of TensorFlow's notices.

    Example:
    >>> from keras_transformer.cli._runtime import is_startup_noise
    >>> is_startup_noise("E0000 00:00:1.5 42 cuda_executor.cc:1228] "
    ...                  "failed call to cuInit: INTERNAL: CUDA error")
    True
    >>> is_startup_noise("ValueError: bad")
    False
    """
    return bool(_STARTUP_NOISE.match(line))


@contextlib.contextmanager
def _filtered_fd2():
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # No standard error to protect.
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace")
            kept = [
                line
                for line in text.splitlines(keepends=True)
                if not is_startup_noise(line)
            ]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def import_quietly(module, verbose=False):
    """Imports a module (and TensorFlow) without TensorFlow's start-up lines.

    Args:
        module: str, the module to import, e.g.
            "keras_transformer.tasks.translation".
        verbose: bool, default False. Show TensorFlow's lines.

    Returns:
        The module.
    """
    if verbose or "tensorflow" in sys.modules:
        return importlib.import_module(module)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _filtered_fd2():
        import tensorflow as tf

        tf.config.list_physical_devices()  # cuInit runs here.
        return importlib.import_module(module)


def progress_verbose():
    """1 (a progress bar) when standard error is a terminal, else 0."""
    stream = sys.stderr
    return 1 if hasattr(stream, "isatty") and stream.isatty() else 0


@contextlib.contextmanager
def progress_on_stderr():
    """Sends what the work prints (Keras progress bars) to standard error.

    Standard output then holds only the results, so they can be piped; a
    Keras bar is drawn when standard error is a terminal.
    """
    with contextlib.redirect_stdout(sys.stderr):
        yield


def input_texts(texts):
    """The texts given as arguments, else the lines of standard input.

    Blank lines are kept and invalid UTF-8 becomes U+FFFD, so every input
    line gets one output line.
    """
    if texts:
        return list(texts)
    from keras_transformer.data.loaders import stdin_lines

    if hasattr(sys.stdin, "isatty") and sys.stdin.isatty():
        print(
            "Reading one text per line from standard input; end with Ctrl-D.",
            file=sys.stderr,
        )

    return stdin_lines()


def one_line(text):
    """A result as one output line (line breaks inside become spaces).

    Example:
    >>> from keras_transformer.cli._runtime import one_line
    >>> one_line("a\\nb\\r\\nc")
    'a b c'
    """
    return re.sub(r"\r\n|\r|\n", " ", str(text))


def _json_default(value):
    for method in ("tolist", "item"):  # numpy arrays and scalars
        if hasattr(value, method):
            return getattr(value, method)()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def print_json(result):
    """Prints a dict as indented JSON on standard output."""
    print(json.dumps(result, indent=2, default=_json_default), flush=True)


def python_kwargs(args, drop=()):
    """The flags a user gave, as keyword arguments of a Python function.

    Flags left at their default (None, or False for switches) are left
    out, so the function's own default applies; command-line-only flags
    (`_flags.CLI_ONLY`) and `drop` are left out too.
    """
    from keras_transformer.cli._flags import CLI_ONLY

    return {
        key: value
        for key, value in vars(args).items()
        if key not in CLI_ONLY
        and key not in drop
        and value is not None
        and value is not False
    }
