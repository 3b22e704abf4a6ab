"""The `keras-transformer` command line.

Thin: it builds the argument parser from the task modules in
`keras_transformer.tasks` and calls their functions. Each task module
provides, for the names it serves:

- `TRAIN_TASKS`, `add_train_arguments(task, parser)`, `run_train(task, args)`
  (the dispatcher adds `--strategy`, `--tpu` and `--mixed-precision` and runs
  `run_train` inside `training.scale_scope`)
- `EVALUATE_TASKS`, `add_evaluate_arguments(task, parser)`,
  `run_evaluate(task, args)`
- `COMMANDS`: {command: (add_arguments(parser), run(args))} for top-level
  commands such as `translate`, `classify` and `generate`
- `EXPORT_TASKS` and `run_export(task, args)` for `export`, which reads the
  task from the model directory's metadata.

Every `run_*` returns the process exit code.
"""

import argparse
import importlib
import logging
import os
import sys

from keras_transformer import training

TASK_MODULES = (
    "keras_transformer.tasks.translation",
    "keras_transformer.tasks.bert",
    "keras_transformer.tasks.gpt",
)


class UserError(Exception):
    """An error caused by the user's input, reported without a traceback."""


def _modules():
    modules = []
    for name in TASK_MODULES:
        try:
            modules.append(importlib.import_module(name))
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
    return modules


def build_parser():
    """Returns the full argument parser."""
    parser = argparse.ArgumentParser(
        prog="keras-transformer",
        description="Train, evaluate, use and export Transformer models.",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log more detail"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a model")
    train_tasks = train.add_subparsers(dest="task", required=True)
    evaluate = commands.add_parser("evaluate", help="evaluate a model")
    evaluate_tasks = evaluate.add_subparsers(dest="task", required=True)
    export_tasks = {}
    for module in _modules():
        for task in getattr(module, "TRAIN_TASKS", ()):
            sub = train_tasks.add_parser(task, help=f"train {task}")
            module.add_train_arguments(task, sub)
            training.add_scale_arguments(sub)
            sub.set_defaults(run=lambda a, m=module: _train(m, a))
        for task in getattr(module, "EVALUATE_TASKS", ()):
            sub = evaluate_tasks.add_parser(task, help=f"evaluate {task}")
            module.add_evaluate_arguments(task, sub)
            sub.set_defaults(run=lambda a, m=module: m.run_evaluate(a.task, a))
        for command, (add, run) in getattr(module, "COMMANDS", {}).items():
            sub = commands.add_parser(command, help=f"{command} with a model")
            add(sub)
            sub.set_defaults(run=run)
        for task in getattr(module, "EXPORT_TASKS", ()):
            export_tasks[task] = module
    export = commands.add_parser(
        "export", help="export a SavedModel for TF Serving"
    )
    export.add_argument("--model", required=True, help="model directory")
    export.add_argument(
        "--output",
        required=True,
        help="versioned destination, e.g. saved_models/NAME/1",
    )
    export.add_argument(
        "--overwrite", action="store_true", help="replace an existing version"
    )
    export.set_defaults(run=lambda a: _export(a, export_tasks))
    return parser


def _train(module, args):
    # Every train command takes --strategy/--tpu/--mixed-precision; the
    # task's model, optimizer and metrics are created inside this scope.
    with training.scale_scope_from_args(args):
        return module.run_train(args.task, args)


def _export(args, export_tasks):
    metadata = training.read_metadata(args.model, tuple(export_tasks) or None)
    module = export_tasks[metadata["task"]]
    return module.run_export(metadata["task"], args)


def main(argv=None):
    """Entry point of the `keras-transformer` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.run(args) or 0)
    except (UserError, ValueError, FileNotFoundError, FileExistsError) as e:
        if args.verbose:
            raise
        print(f"keras-transformer: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("keras-transformer: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
