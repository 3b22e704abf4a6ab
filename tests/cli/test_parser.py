"""The parser: every shared flag once, with one default and behaviour."""

import argparse
import importlib
import inspect

import pytest

from keras_transformer.cli import (
    _flags,
    _parser,
    _runtime,
    _train,
    build_parser,
)


def _leaves(parser, path=()):
    """{("train", "gpt"): parser, ("translate",): parser, ...}."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.update(_leaves(sub, path + (name,)))
    if not found and path:
        found[path] = parser
    return found


LEAVES = _leaves(build_parser())
TRAIN = {path: p for path, p in LEAVES.items() if path[0] == "train"}
EVALUATE = {path: p for path, p in LEAVES.items() if path[0] == "evaluate"}


def _flag_actions(parser):
    return {
        action.option_strings[-1]: action
        for action in parser._actions
        if action.option_strings and action.option_strings[-1].startswith("--")
    }


def _behaviour(action):
    """What must be equal wherever a flag appears (all but the help)."""
    return (
        type(action).__name__,
        action.dest,
        action.default,
        action.type,
        action.nargs,
        action.const,
        tuple(action.choices or ()),
        action.required,
        action.metavar,
    )


def test_every_command_is_there():
    assert set(TRAIN) == {
        ("train", t) for t in ("translation", "gpt", "classifier",
                               "bert-pretrain")
    }  # fmt: skip
    assert set(EVALUATE) == {
        ("evaluate", t) for t in ("translation", "gpt", "classifier")
    }
    others = {path for path in LEAVES if path[0] not in ("train", "evaluate")}
    assert others == {
        ("translate",), ("generate",), ("classify",), ("export",),
        ("average-classifiers",), ("quantize",),
    }  # fmt: skip


@pytest.mark.parametrize("path", sorted(TRAIN))
def test_train_commands_have_every_shared_flag(path):
    flags = _flag_actions(TRAIN[path])
    for flag in (*_flags.TRAIN_FLAGS, "--train-file", "--valid-file"):
        assert flag in flags, (path, flag)


@pytest.mark.parametrize("path", sorted(EVALUATE))
def test_evaluate_commands_have_every_shared_flag(path):
    flags = _flag_actions(EVALUATE[path])
    for flag in (*_flags.EVALUATE_FLAGS, "--test-file"):
        assert flag in flags, (path, flag)


def test_a_flag_behaves_the_same_on_every_command():
    seen = {}
    for path, parser in LEAVES.items():
        for flag, action in _flag_actions(parser).items():
            if path == ("average-classifiers",) and flag == "--model":
                continue  # given once per directory (action "append")
            seen.setdefault(flag, {})[path] = _behaviour(action)
    assert len(seen) > 30
    for flag, behaviours in seen.items():
        assert len(set(behaviours.values())) == 1, (flag, behaviours)
    # Defaults are left to the Python functions (None) or off (False),
    # but for the scale flags, whose values the command line applies.
    for flag, behaviours in seen.items():
        default = next(iter(behaviours.values()))[2]
        if flag in ("--strategy", "--mixed-precision", "--help", "--verbose",
                    *_flags.ALIASES):  # fmt: skip
            continue
        assert default in (None, False), (flag, default)


def test_skip_bad_lines_json_and_force():
    for path, parser in {**TRAIN, **EVALUATE}.items():
        flags = _flag_actions(parser)
        assert flags["--skip-bad-lines"].default is False, path
        assert flags["--json"].default is False, path
    for parser in TRAIN.values():
        assert _flag_actions(parser)["--force"].default is False


def test_the_choices_are_the_librarys():
    from keras_transformer import training
    from keras_transformer.inference import generator
    from keras_transformer.tasks import classifier, ensemble

    assert _flags.STRATEGIES == training.STRATEGIES
    assert set(_flags.PRECISIONS) <= set(training.PRECISIONS)
    assert _flags.SAMPLERS == generator.SAMPLERS
    assert _flags.ARCHITECTURES == tuple(classifier.ARCHITECTURES)
    assert _flags.POOLING_MODES == tuple(classifier.POOLING_MODES)
    assert _flags.CLASS_BALANCE_MODES == tuple(classifier.CLASS_BALANCE_MODES)
    from keras_transformer import lora

    assert _flags.LORA_SAVE_MODES == lora.LORA_SAVE_MODES
    assert _flags.AVERAGE_MODES == tuple(ensemble.AVERAGE_MODES)
    from keras_transformer import export

    assert _flags.EXPORT_DTYPES == export.EXPORT_DTYPES


def _parameters(module, function):
    signature = inspect.signature(
        getattr(importlib.import_module(module), function)
    )
    return set(signature.parameters)


def _all_flags_argv(parser):
    """argv setting every flag of a parser to some value."""
    argv = []
    for flag, action in _flag_actions(parser).items():
        if flag in ("--beam-size", "--verbose", "--help"):
            continue
        if action.nargs == 0:
            argv.append(flag)
        elif action.choices:
            argv += [flag, list(action.choices)[-1]]
        else:
            argv += [flag, "1"]
    return argv


@pytest.mark.parametrize("task", sorted(_train.TRAIN))
def test_every_train_flag_is_an_argument_of_the_runner(task):
    module, function, _ = _train.TRAIN[task]
    parser = TRAIN[("train", task)]
    args = build_parser().parse_args(["train", task, *_all_flags_argv(parser)])
    kwargs = _train.train_kwargs(args)
    parameters = _parameters(module, function)
    assert set(kwargs) <= parameters, set(kwargs) - parameters
    assert {"verbose", "force"} <= parameters
    assert kwargs["skip_bad_lines"] is True and kwargs["force"] is True


@pytest.mark.parametrize("task", sorted(_train.EVALUATE))
def test_every_evaluate_flag_is_an_argument_of_the_evaluator(task):
    module, function, style = _train.EVALUATE[task]
    parser = EVALUATE[("evaluate", task)]
    args = build_parser().parse_args(
        ["evaluate", task, *_all_flags_argv(parser)]
    )
    kwargs = _runtime.python_kwargs(args, drop=("model_dir",))
    _train.data_file_kwargs(kwargs, task, style)
    parameters = _parameters(module, function)
    assert set(kwargs) <= parameters, set(kwargs) - parameters


def test_flags_left_out_leave_the_python_defaults():
    args = build_parser().parse_args(["train", "gpt", "--output", "m"])
    assert _train.train_kwargs(args) == {}
    args = build_parser().parse_args(
        ["train", "gpt", "--output", "m", "--epochs", "3", "--seed", "0"]
    )
    assert _train.train_kwargs(args) == {"epochs": 3, "seed": 0}


def test_a_time_budget_without_epochs_lets_the_budget_decide():
    parse = build_parser().parse_args
    args = parse(["train", "classifier", "--output", "m", "--max-minutes", "2"])
    assert _train.train_kwargs(args) == {
        "max_minutes": 2.0,
        "epochs": _flags.BUDGET_EPOCHS,
    }
    args = parse(["train", "translation", "--output", "m",
                  "--max-minutes", "2", "--epochs", "4"])  # fmt: skip
    assert _train.train_kwargs(args)["epochs"] == 4


def test_data_files_one_or_many():
    parse = build_parser().parse_args
    args = parse(["train", "gpt", "--output", "m", "--train-file", "a", "b"])
    assert _train.train_kwargs(args) == {"train_files": ["a", "b"]}
    args = parse(["train", "translation", "--output", "m",
                  "--train-file", "a.tsv"])  # fmt: skip
    assert _train.train_kwargs(args) == {"train_file": "a.tsv"}
    args = parse(["train", "translation", "--output", "m",
                  "--train-file", "a.tsv", "b.tsv"])  # fmt: skip
    with pytest.raises(ValueError, match="reads one --train-file"):
        _train.train_kwargs(args)


def test_beam_size_is_a_deprecated_alias_that_warns(capsys):
    for command in (["translate", "--model", "m"],
                    ["evaluate", "translation", "--model", "m"]):  # fmt: skip
        args = build_parser().parse_args(command + ["--beam-size", "3"])
        assert args.num_beams == 3
        err = capsys.readouterr().err
        assert "--beam-size is deprecated" in err and "--num-beams" in err
        args = build_parser().parse_args(command + ["--num-beams", "2"])
        assert args.num_beams == 2
        assert capsys.readouterr().err == ""


def test_verbose_before_or_after_the_command():
    parse = build_parser().parse_args
    assert parse(["-v", "classify", "--model", "m"]).verbose is True
    assert parse(["classify", "--model", "m", "-v"]).verbose is True
    assert parse(["classify", "--model", "m"]).verbose is False
    assert parse(["train", "gpt", "--output", "m", "--verbose"]).verbose


def test_help_of_every_command(cli):
    for path in LEAVES:
        run = cli(*path, "--help")
        assert run.code == 0 and "usage: keras-transformer" in run.out, path
    run = cli("train", "--help")
    assert run.code == 0
    for task in ("translation", "gpt", "classifier", "bert-pretrain"):
        assert task in run.out


def test_python_names_map_to_flags():
    parser = TRAIN[("train", "gpt")]
    mapping = _parser.python_to_flag(parser)
    assert mapping["vocabulary_size"][0] == "--vocabulary-size"
    assert mapping["train_files"][0] == mapping["train_file"][0]
    assert mapping["output_dir"][0] == "--output"
