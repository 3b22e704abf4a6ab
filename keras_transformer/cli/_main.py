"""`keras_transformer.cli.main`: parse, run, report."""

import contextlib
import logging
import os
import sys

from keras_transformer.cli import _errors
from keras_transformer.cli._parser import build_parser


class _Formatter(logging.Formatter):
    """Plain messages for INFO, `warning: ...` and so on above it."""

    def format(self, record):
        message = super().format(record)
        if record.levelno == logging.INFO:
            return message
        return f"{record.levelname.lower()}: {message}"


@contextlib.contextmanager
def _logging(verbose):
    """keras_transformer's log records on standard error while a command
    runs (INFO, or DEBUG with `-v`, with the logger's name)."""
    logger = logging.getLogger("keras_transformer")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(levelname)s %(name)s: %(message)s")
        if verbose
        else _Formatter("%(message)s")
    )
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def main(argv=None):
    """Runs the `keras-transformer` command line.

    Args:
        argv: list of str or None (default: `sys.argv[1:]`).

    Returns:
        The exit status: 0 on success, 2 for a user error (one line on
        standard error), 1 for an internal error (with its traceback), 130
        when interrupted. `argparse` exits with status 2 on a bad flag.

    Example:
    >>> from keras_transformer.cli import main
    >>> main(["export", "--model", "runs/gpt",
    ...       "--output", "saved_models/gpt/1"])  # doctest: +SKIP
    0
    """
    args = build_parser().parse_args(argv)
    with _logging(args.verbose):
        try:
            return int(args.run(args) or 0)
        except KeyboardInterrupt:
            print("keras-transformer: interrupted", file=sys.stderr)
            return 130
        except BrokenPipeError:
            # The reader of standard output went away (`... | head`).
            devnull = os.open(os.devnull, os.O_WRONLY)
            with contextlib.suppress(OSError, ValueError):
                os.dup2(devnull, sys.stdout.fileno())
            return 1
        except Exception as error:
            return _errors.report(error, args.leaf_parser, args.verbose)
