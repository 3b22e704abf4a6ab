"""The `keras-transformer` command line.

Commands: `train translation|gpt|classifier|bert-pretrain`,
`evaluate translation|gpt|classifier`, `translate`, `generate`,
`classify`, `export`, `average-classifiers` (`keras-transformer --help`).

- Every flag is declared once (`keras_transformer.cli._flags`), with one
  type, default and behaviour on every command that takes it; a flag left
  out leaves the Python function's default in force.
- Results go to standard output (one output line per input line for
  `translate`, `generate` and `classify`); progress bars (on a terminal),
  one line per epoch (otherwise), logs and errors go to standard error.
- A user error is one line, `keras-transformer: error: ...`, naming flags
  rather than Python arguments (exit status 2); an internal error prints
  its traceback and asks to be reported (exit status 1); `-v` shows every
  traceback and TensorFlow's start-up lines.
- `--help` imports neither TensorFlow nor Keras: the commands import
  them when they run.

Example:
>>> from keras_transformer.cli import main
>>> main(["translate", "--model", "runs/en-es", "Hello."])  # doctest: +SKIP
0
"""

from keras_transformer.cli._main import main
from keras_transformer.cli._parser import build_parser

__all__ = ["build_parser", "main"]
