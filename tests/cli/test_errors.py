"""User errors in one line naming flags; internal errors with a traceback."""

import json

import pytest

from keras_transformer.cli import _errors, build_parser


def _leaf(*argv):
    return build_parser().parse_args(list(argv)).leaf_parser


GPT = _leaf("train", "gpt", "--output", "m")


@pytest.mark.parametrize(
    "message,expected",
    [
        ("`skip_bad_lines` is off.", "`--skip-bad-lines` is off."),
        ("pass skip_bad_lines=True to skip them",
         "pass --skip-bad-lines to skip them"),
        ("Received: vocabulary_size=8000", "Received: --vocabulary-size 8000"),
        ("Received: batch_size=0.", "Received: --batch-size 0."),
        ("Received: max_minutes=0.5.", "Received: --max-minutes 0.5."),
        ("or pass force=True (`--force`) to continue",
         "or pass --force to continue"),
        ("Received: preset='huge'", "Received: --preset huge"),
        ("Received: train_files=['a.txt', 'b c.txt']",
         "Received: --train-file a.txt 'b c.txt'"),
        ("Received: train_file=/tmp/x.txt",
         "Received: --train-file /tmp/x.txt"),
        ("Received: valid_files=None", "Received: no --valid-file"),
        ("`output_dir` must be a directory. Received: output_dir=/tmp/f",
         "`--output` must be a directory. Received: --output /tmp/f"),
        # Not flags of this command, or not a Python name: unchanged.
        ("Received: num_beams=0", "Received: num_beams=0"),
        ("/runs/seed=3/x: bad", "/runs/seed=3/x: bad"),
        ("my_batch_size=3", "my_batch_size=3"),
    ],
)  # fmt: skip
def test_python_names_become_flags(message, expected):
    assert _errors.to_flags(message, GPT) == expected


def test_other_commands_map_their_own_flags():
    translate = _leaf("translate", "--model", "m")
    assert (
        _errors.to_flags("Received: num_beams=0", translate)
        == "Received: --num-beams 0"
    )
    assert _errors.to_flags("Received: beam_size=0", translate) == (
        "Received: --num-beams 0"
    )


def test_user_and_internal_errors_are_told_apart():
    import keras

    from keras_transformer.model_dir import read_metadata

    with pytest.raises(ValueError) as ours:
        read_metadata("/no/such/model/dir")
    assert _errors.is_user_error(ours.value)
    with pytest.raises(ValueError) as keras_error:
        keras.layers.Dense(units=-1)
    assert not _errors.is_user_error(keras_error.value)
    assert _errors.is_user_error(FileNotFoundError(2, "No such file", "x"))
    assert not _errors.is_user_error(KeyError("x"))
    assert not _errors.is_user_error(ValueError("raised by no one"))
    # In a keras_transformer module: a `raise` is ours, a failed call a bug.
    scope = {"__name__": "keras_transformer.somewhere"}
    exec("def check():\n    raise ValueError('Received: x=1')", scope)
    exec("def convert():\n    return int('one')", scope)
    for function, user in ((scope["check"], True), (scope["convert"], False)):
        with pytest.raises(ValueError) as error:
            function()
        assert _errors.is_user_error(error.value) is user


def _data(tmp_path):
    path = tmp_path / "lm.txt"
    path.write_text(
        "\n".join(f"And the LORD spoke to Moses, verse {i}." for i in range(40))
    )
    return path


def test_user_error_is_one_line_naming_the_flag(cli, tmp_path):
    run = cli("train", "gpt", "--train-file", _data(tmp_path), "--output",
              tmp_path / "m", "--preset", "tiny",
              "--batch-size", "0")  # fmt: skip
    assert run.code == 2, run
    assert "Traceback" not in run.err
    assert run.err.strip().splitlines() == [run.last_error_line]
    assert run.last_error_line.startswith("keras-transformer: error: ")
    assert "--batch-size 0" in run.last_error_line
    assert "batch_size=0" not in run.last_error_line


def test_verbose_shows_the_traceback_of_a_user_error(cli, tmp_path):
    run = cli("-v", "train", "gpt", "--train-file", _data(tmp_path),
              "--output", tmp_path / "m", "--batch-size", "0")  # fmt: skip
    assert run.code == 2
    assert "Traceback (most recent call last)" in run.err
    assert run.last_error_line.startswith("keras-transformer: error: ")


def test_resume_mismatch_names_flags(cli, tmp_path):
    output = tmp_path / "m"
    (output / "backup").mkdir(parents=True)  # a run that had started
    (output / "run.json").write_text(json.dumps({"settings": {"seed": 99}}))
    run = cli("train", "gpt", "--train-file", _data(tmp_path), "--output",
              output, "--preset", "tiny")  # fmt: skip
    assert run.code == 2, run
    line = run.last_error_line
    assert "--seed was 99, now 0" in line, line
    assert "--force" in line and "force=True" not in line


def _raise(error):
    def runner(*args, **kwargs):
        if callable(error):
            error()
        raise error

    return runner


@pytest.mark.parametrize(
    "error",
    [KeyError("boom"), lambda: __import__("keras").layers.Dense(units=-1)],
    ids=["KeyError", "ValueError-inside-keras"],
)
def test_internal_error_shows_traceback_and_asks_for_a_report(
    cli, tmp_path, monkeypatch, error
):
    from keras_transformer.tasks import gpt

    monkeypatch.setattr(gpt, "train_gpt", _raise(error))
    run = cli("train", "gpt", "--output", tmp_path / "m")
    assert run.code == 1, run
    assert "Traceback (most recent call last)" in run.err
    assert "keras-transformer: internal error:" in run.err
    assert "bug in keras_transformer" in run.err and "report" in run.err


def test_several_files_where_one_is_read(cli, tmp_path):
    run = cli("train", "translation", "--output", tmp_path / "m",
              "--train-file", "a.tsv", "b.tsv")  # fmt: skip
    assert run.code == 2
    assert "reads one --train-file" in run.last_error_line
    assert "Traceback" not in run.err


def test_argparse_errors_exit_2(cli):
    run = cli("train", "gpt")
    assert run.code == 2 and "--output" in run.err
    run = cli("generate", "--model", "m", "--sampler", "nope")
    assert run.code == 2 and "invalid choice" in run.err


def _metadata_only_dir(path, task):
    from keras_transformer.model_dir import METADATA_FILE, METADATA_KEYS

    path.mkdir()
    metadata = dict.fromkeys(METADATA_KEYS) | {"task": task}
    (path / METADATA_FILE).write_text(json.dumps(metadata))
    return path


@pytest.mark.parametrize(
    "argv,kind",
    [
        (["classify", "--model", "{dir}", "x"], "bert-pretrain"),
        (["evaluate", "gpt", "--model", "{dir}"], "translation"),
        (["evaluate", "translation", "--model", "{dir}"], "gpt"),
        (["evaluate", "classifier", "--model", "{dir}"], "bert-pretrain"),
        (["translate", "--model", "{dir}", "x"], "classifier"),
    ],
)
def test_a_directory_of_another_task_is_a_clean_error(
    cli, tmp_path, argv, kind
):
    directory = _metadata_only_dir(tmp_path / "other", kind)
    run = cli(*[a.format(dir=directory) for a in argv])
    assert run.code == 2, run
    assert "Traceback" not in run.err
    assert f"holds a '{kind}' model" in run.last_error_line


def test_a_classifier_is_no_pretrained_encoder(cli, cli_model_dirs, tmp_path):
    run = cli("train", "classifier", "--pretrained",
              cli_model_dirs["classifier"], "--output", tmp_path / "c",
              "--preset", "tiny")  # fmt: skip
    assert run.code == 2, run
    assert "holds a 'classifier' model" in run.last_error_line


def test_unknown_test_labels_are_named(cli, cli_model_dirs, tmp_path):
    test = tmp_path / "u.tsv"
    test.write_text("poetry\tA verse of a kind never seen.\n")
    run = cli("evaluate", "classifier", "--model",
              cli_model_dirs["classifier"], "--test-file", test)  # fmt: skip
    assert run.code == 2, run
    assert "Received: labels=['poetry']" in run.last_error_line


def test_interrupted(cli, tmp_path, monkeypatch):
    from keras_transformer.tasks import gpt

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(gpt, "train_gpt", interrupted)
    run = cli("train", "gpt", "--output", tmp_path / "m")
    assert run.code == 130 and run.err == "keras-transformer: interrupted\n"
