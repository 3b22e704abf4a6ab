"""How the command line reports errors.

- A user error (bad input, a missing file, a model directory of another
  task, settings that differ from a resumed run's) is one line,
  `keras-transformer: error: ...`, exit status 2. Where the message names
  a Python argument (`` `skip_bad_lines` ``, `vocabulary_size=8000`,
  `force=True`), it is rewritten to the flag the user typed
  (`` `--skip-bad-lines` ``, `--vocabulary-size 8000`, `--force`).
- Any other exception is an internal error: its traceback and a request
  to report it, exit status 1.
- `-v` prints the traceback of every error.

A `ValueError` is a user error only when keras_transformer raised it
itself (a `raise` statement in a `keras_transformer` module): a
`ValueError` from inside Keras or TensorFlow, or from a failed call such
as `int("x")`, is a bug of ours.
"""

import ast
import dis
import re
import shlex
import sys
import traceback

from keras_transformer.cli._parser import python_to_flag

PREFIX = "keras-transformer"

# Wherever they come from, these name a path the user gave.
USER_OS_ERRORS = (
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)

_RAISE = dis.opmap["RAISE_VARARGS"]
_VALUE = r"""(?:'[^']*'|"[^"]*"|\[[^\]]*\]|\([^)]*\)|[^\s,;)\]]+)"""


def _raised_by_keras_transformer(error):
    """Whether the innermost frame is a `raise` in a keras_transformer module
    (the bytecode that raised is RAISE_VARARGS, not a call that failed)."""
    tb = error.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    frame = tb.tb_frame
    if not frame.f_globals.get("__name__", "").startswith("keras_transformer"):
        return False
    code = frame.f_code.co_code
    return 0 <= tb.tb_lasti < len(code) and code[tb.tb_lasti] == _RAISE


def is_user_error(error):
    """Whether an exception is the user's to fix (reported in one line).

    Args:
        error: an `Exception`.

    Returns:
        bool.
    """
    from keras_transformer.model_dir import (
        ModelDirectoryError,
        ResumeMismatchError,
    )

    if isinstance(error, (ModelDirectoryError, ResumeMismatchError)):
        return True
    if isinstance(error, USER_OS_ERRORS):
        return True
    return isinstance(error, ValueError) and _raised_by_keras_transformer(error)


def _as_flag(flag, action, raw):
    if raw == "True" and action.nargs == 0:
        return flag
    if raw in ("False", "None"):
        return f"no {flag}"
    value = raw
    if raw[:1] in "'\"[(":
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            return f"{flag} {raw}"
    if isinstance(value, (list, tuple)):
        return " ".join([flag, *(shlex.quote(str(v)) for v in value)])
    return f"{flag} {shlex.quote(str(value))}"


def to_flags(message, parser):
    """Rewrites the Python argument names in a message to a parser's flags.

    Args:
        message: str, an error message.
        parser: the command's `argparse.ArgumentParser` (its flags come
            from `keras_transformer.cli._flags.add_flags`).

    Returns:
        The message with `` `name` `` as `` `--flag` ``, `name=value` as
        `--flag value`, `name=True` as `--flag` (for a switch) and
        `name=True (`--flag`)` as `--flag`.

    Example:
    >>> from keras_transformer.cli import build_parser
    >>> from keras_transformer.cli._errors import to_flags
    >>> parser = build_parser().parse_args(
    ...     ["train", "gpt", "--output", "x"]).leaf_parser
    >>> to_flags("`vocabulary_size` is too large. "
    ...          "Received: vocabulary_size=8000.", parser)
    '`--vocabulary-size` is too large. Received: --vocabulary-size 8000.'
    >>> to_flags("pass skip_bad_lines=True to skip them", parser)
    'pass --skip-bad-lines to skip them'
    """
    mapping = python_to_flag(parser) if parser is not None else {}
    if not mapping:
        return message
    names = "|".join(
        re.escape(name) for name in sorted(mapping, key=len, reverse=True)
    )

    def assignment(match):
        raw, end = match.group(2), ""
        if raw.endswith(".") and raw[:1] not in "'\"[(":
            raw, end = raw[:-1], "."  # the sentence's full stop
        flag, action = mapping[match.group(1)]
        return _as_flag(flag, action, raw) + end

    message = re.sub(
        rf"(?<![\w./\\-])({names})=({_VALUE})(?:\s*\(`--[\w-]+`\))?",
        assignment,
        message,
    )
    return re.sub(
        rf"`({names})`", lambda m: f"`{mapping[m.group(1)][0]}`", message
    )


def report(error, parser=None, verbose=False):
    """Prints an error the way the command line reports it.

    Args:
        error: the `Exception` a command raised.
        parser: the command's parser (for `to_flags`), or None.
        verbose: bool, default False. Print the traceback of user errors
            too.

    Returns:
        The exit status: 2 for a user error, 1 for an internal one.
    """
    user = is_user_error(error)
    if verbose or not user:
        traceback.print_exception(error, file=sys.stderr)
    message = " ".join(str(error).split()) or type(error).__name__
    if user:
        print(f"{PREFIX}: error: {to_flags(message, parser)}", file=sys.stderr)
        return 2
    print(
        f"{PREFIX}: internal error: {type(error).__name__}: {message}\n"
        "This is a bug in keras_transformer, not a problem with your input. "
        "Please report it with the command you ran, the traceback above and "
        "the versions of keras_transformer, keras and tensorflow.",
        file=sys.stderr,
    )
    return 1
