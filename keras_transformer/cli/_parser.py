"""The `keras-transformer` argument parser: which command takes which flag.

The flags themselves are declared once, in `keras_transformer.cli._flags`.
Building the parser imports no TensorFlow or Keras.
"""

import argparse
import sys

from keras_transformer.cli import _flags, _train, _use

PROG = "keras-transformer"

_FILES = ("--train-file", "--valid-file")
_TSV = "source<TAB>target TSV"
_LABELED = "label<TAB>text TSV (an optional header line)"
_TEXT = "UTF-8 text files"

_FINE_TUNING = ("--init-from", "--lora-rank", "--lora-alpha", "--lora-save")

# task -> (help, flags besides `_flags.TRAIN_FLAGS`, help of its flags)
TRAIN_TASKS = {
    "translation": (
        "a Transformer translator on source<TAB>target pairs",
        (
            *_FILES,
            "--test-file",
            "--export",
            "--learning-rate-scale",
            "--max-train-examples",
            *_FINE_TUNING,
        ),
        {
            "--train-file": f"{_TSV} (default: the bundled English-Spanish "
            "verses)",
            "--valid-file": f"{_TSV} (default: held out of the training data)",
            "--test-file": f"{_TSV}, evaluated once at the end (default: "
            "the bundled test split when training on the bundled data)",
        },
    ),  # fmt: skip
    "gpt": (
        "a GPT language model on text files: documents split at blank lines "
        "(or one per file), line breaks kept",
        (
            *_FILES,
            "--document-per-file",
            "--export",
            "--sequence-length",
            "--backup-every-steps",
            "--max-train-examples",
            *_FINE_TUNING,
        ),
        {
            "--train-file": f"{_TEXT} or directories (every file under "
            "them) (default: the bundled English books)",
            "--valid-file": f"{_TEXT} (default: held out of the training text)",
        },
    ),
    "classifier": (
        "a BERT (or n-gram) text classifier on label<TAB>text lines",
        (
            *_FILES,
            "--test-file",
            "--export",
            "--pretrained",
            "--architecture",
            "--class-balance",
            "--pooling",
            "--sequence-length",
            "--learning-rate",
            "--encoder-dropout",
            "--token-mask-rate",
            "--ema-momentum",
            "--layer-decay",
            "--max-train-examples",
            *_FINE_TUNING,
        ),
        {
            "--train-file": f"{_LABELED} (default: the bundled 6-genre "
            "verse task)",
            "--valid-file": f"{_LABELED} (default: held out of the training "
            "data)",
            "--test-file": f"{_LABELED}, evaluated once at the end "
            "(default: the bundled test split with the bundled task)",
        },
    ),  # fmt: skip
    "bert-pretrain": (
        "a BERT encoder by masked language modeling on text files",
        (*_FILES, "--sequence-length", "--learning-rate", "--mask-rate"),
        {
            "--train-file": f"{_TEXT}, one example a line (default: the "
            "bundled English corpus)",
            "--valid-file": f"{_TEXT} (default: held out of the training text)",
        },
    ),
}

# task -> (help, flags besides `_flags.EVALUATE_FLAGS`, help of its flags)
EVALUATE_TASKS = {
    "translation": (
        "corpus BLEU and chrF on a test set",
        ("--test-file", "--num-beams", "--length-penalty"),
        {
            "--test-file": f"{_TSV} (default: the training run's test file, "
            "else the bundled test split)"
        },
    ),
    "gpt": (
        "held-out perplexity",
        ("--test-file", "--batch-size"),
        {"--test-file": f"{_TEXT} (default: the bundled test books)"},
    ),
    "classifier": (
        "accuracy, macro-F1 and a confusion matrix (PNG)",
        ("--test-file", "--output-dir"),
        {"--test-file": f"{_LABELED} (default: the bundled test split)"},
    ),
}

_TEXTS_HELP = (
    "texts (default: the lines of standard input; one output line per "
    "input line, blank lines included)"
)

# command -> (help, flags, positional or None, run)
COMMANDS = {
    "translate": (
        "translate sentences with a translation model",
        (
            "--model",
            "--num-beams",
            "--length-penalty",
            "--sampler",
            "--temperature",
            "--top-k",
            "--top-p",
            "--seed",
            "--no-repeat-ngram-size",
            "--repetition-penalty",
            "--min-new-tokens",
            "--stop",
            "--stop-token-id",
            "--n-best",
            "--scores",
            "--stream",
        ),
        "texts",
        _use.run_translate,
    ),
    "generate": (
        "continue prompts with a GPT model",
        (
            "--model",
            "--max-new-tokens",
            "--sampler",
            "--temperature",
            "--top-k",
            "--top-p",
            "--num-beams",
            "--seed",
            "--no-repeat-ngram-size",
            "--repetition-penalty",
            "--min-new-tokens",
            "--stop",
            "--stop-token-id",
            "--num-return-sequences",
            "--scores",
            "--no-stream",
            "--keep-newlines",
        ),
        "prompts",
        _use.run_generate,
    ),  # fmt: skip
    "classify": (
        "classify texts with a classifier (one `label<TAB>probability` "
        "line per text)",
        ("--model",),
        "texts",
        _use.run_classify,
    ),
    "export": (
        "export a model directory as a TF Serving SavedModel",
        ("--model", "--output", "--overwrite", "--dtype"),
        None,
        _use.run_export,
    ),
    "quantize": (
        "write an int8 copy of a model directory (about a quarter of the "
        "weight bytes)",
        ("--model", "--output", "--overwrite"),
        None,
        _use.run_quantize,
    ),
    "average-classifiers": (
        "combine classifiers into one model directory (weights or "
        "probabilities)",
        ("--model", "--output", "--overwrite", "--mode"),
        None,
        _use.run_average,
    ),
}

_HELP = {
    "export": {
        "--output": "the versioned destination, e.g. saved_models/NAME/1",
        "--overwrite": "replace an existing version",
    },
    "quantize": {
        "--output": "the new model directory (the original is kept)",
        "--overwrite": "replace an existing output directory",
    },
    "average-classifiers": {
        "--model": "a classifier directory (give two or more)",
        "--output": "the new classifier directory",
    },
}


class DeprecatedAlias(argparse.Action):
    """Stores a value under a new flag's name and warns on stderr."""

    def __init__(self, option_strings, dest, new_flag, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.new_flag = new_flag

    def __call__(self, parser, namespace, values, option_string=None):
        print(
            f"keras-transformer: warning: {option_string} is deprecated and "
            f"will be removed; use {self.new_flag}.",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, values)


def add_flags(parser, flags, help=None, repeated=()):
    """Adds flags of `FLAGS` (and their deprecated aliases) to a parser.

    Args:
        parser: an `argparse.ArgumentParser`.
        flags: iterable of flag names, keys of `FLAGS`.
        help: dict or None (default). Help texts that replace the generic
            ones for this command (only the text may differ).
        repeated: flags given once per value (`--model A --model B`).
    """
    if not hasattr(parser, "flag_actions"):
        parser.flag_actions = []
    for flag in flags:
        kwargs = dict(_flags.FLAGS[flag])
        names = (kwargs["dest"], *kwargs.pop("names", ()))
        if help and flag in help:
            kwargs["help"] = help[flag]
        if flag in repeated:
            kwargs["action"] = "append"
        action = parser.add_argument(flag, **kwargs)
        action.python_names = names
        parser.flag_actions.append(action)
        for alias, target in _flags.ALIASES.items():
            if target == flag:
                parser.add_argument(
                    alias,
                    dest=kwargs["dest"],
                    type=kwargs.get("type"),
                    metavar=kwargs.get("metavar"),
                    action=DeprecatedAlias,
                    new_flag=flag,
                    default=argparse.SUPPRESS,
                    help=f"deprecated spelling of {flag}",
                )


def add_verbose(parser, default=argparse.SUPPRESS):
    """Adds -v/--verbose (on every command, so it may follow the command).

    Args:
        parser: an `argparse.ArgumentParser`.
        default: False on the top-level parser; left unset on commands, so
            `keras-transformer -v translate ...` keeps the top-level value.
    """
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default,
        help="log more detail, show TensorFlow's start-up lines and tracebacks",
    )


def python_to_flag(parser):
    """`{python argument name: (flag, action)}` for a parser's flags."""
    mapping = {}
    for action in getattr(parser, "flag_actions", ()):
        for name in action.python_names:
            mapping.setdefault(name, (action.option_strings[0], action))
    return mapping


def _leaf(subparsers, name, help, flags, run, *, command_help=None, **kw):
    parser = subparsers.add_parser(name, help=help, description=help)
    add_flags(parser, flags, help=command_help, **kw)
    add_verbose(parser)
    parser.set_defaults(run=run, leaf_parser=parser)
    return parser


def build_parser():
    """The full `keras-transformer` argument parser.

    Returns:
        An `argparse.ArgumentParser`; each command's namespace has `run`
        (the function to call with it) and `leaf_parser` (the command's
        own parser, whose flags name the Python arguments in errors).

    Example:
    >>> from keras_transformer.cli import build_parser
    >>> args = build_parser().parse_args(
    ...     ["translate", "--model", "runs/en-es", "Hello."])
    >>> args.model_dir, args.texts, args.num_beams
    ('runs/en-es', ['Hello.'], None)
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train, evaluate, use and export Transformer models. "
        "Results go to standard output; progress, logs and errors to "
        "standard error.",
    )
    add_verbose(parser, default=False)
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND"
    )
    train = commands.add_parser("train", help="train a model")
    train_tasks = train.add_subparsers(dest="task", required=True)
    for task, (help, flags, flag_help) in TRAIN_TASKS.items():
        _leaf(train_tasks, task, f"train {help}", _flags.TRAIN_FLAGS + flags,
              _train.run_train, command_help=flag_help)  # fmt: skip
    evaluate = commands.add_parser("evaluate", help="evaluate a model")
    evaluate_tasks = evaluate.add_subparsers(dest="task", required=True)
    for task, (help, flags, flag_help) in EVALUATE_TASKS.items():
        _leaf(evaluate_tasks, task, f"evaluate {task}: {help}",
              _flags.EVALUATE_FLAGS + flags, _train.run_evaluate,
              command_help=flag_help)  # fmt: skip
    for name, (help, flags, positional, run) in COMMANDS.items():
        sub = _leaf(
            commands,
            name,
            help,
            flags,
            run,
            command_help=_HELP.get(name),
            repeated=("--model",) if name == "average-classifiers" else (),
        )
        if positional:
            sub.add_argument(positional, nargs="*", help=_TEXTS_HELP)
    return parser
