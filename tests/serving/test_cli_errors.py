"""Loader and configuration errors: one clear line naming the thing and
what was expected (and the flags the user typed, not Python arguments),
exit code 2, no traceback."""

import pytest

from keras_transformer import cli


def _run(capsys, *argv):
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse errors
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def _clean_error(code, err, *fragments):
    assert code == 2, err
    assert "Traceback" not in err
    # One line says it all (argparse prints its usage above it; INFO logs
    # may precede it).
    last = err.strip().splitlines()[-1]
    assert last.startswith("keras-transformer") and "error:" in last, err
    for fragment in fragments:
        assert fragment in last, (fragment, err)


@pytest.fixture(scope="module")
def small_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_errors")
    lines = [f"law\tAnd the LORD spoke to Moses, verse {i}." for i in range(20)]
    lines += [f"wisdom\tThe fear of the LORD, proverb {i}." for i in range(20)]
    (root / "genre.tsv").write_text("\n".join(lines) + "\n")
    (root / "lm.txt").write_text("\n".join(t.split("\t")[1] for t in lines))
    return root


def test_malformed_tsv_names_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.tsv"
    bad.write_text("label\ttext\nlaw\tIn the beginning\nno tab on this line\n")
    code, _, err = _run(
        capsys, "train", "classifier", "--train-file", bad, "--output",
        tmp_path / "m", "--preset", "tiny",
    )  # fmt: skip
    _clean_error(code, err, f"{bad}, line 3")


def test_invalid_utf8_text_file_names_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"In the beginning\nGod \xff\xfe created\n")
    code, _, err = _run(
        capsys, "train", "gpt", "--train-file", bad, "--output",
        tmp_path / "m", "--preset", "tiny",
    )  # fmt: skip
    _clean_error(code, err, f"{bad}, line 2")


def test_missing_data_file(tmp_path, capsys):
    missing = tmp_path / "nope.tsv"
    code, _, err = _run(capsys, "train", "classifier", "--train-file",
                        missing, "--output", tmp_path / "m")  # fmt: skip
    _clean_error(code, err, str(missing))


@pytest.mark.parametrize(
    "argv",
    [
        ["classify", "--model", "{missing}", "text"],
        ["generate", "--model", "{missing}", "text"],
        ["export", "--model", "{missing}", "--output", "{out}"],
        ["evaluate", "classifier", "--model", "{missing}"],
    ],
)
def test_missing_model_directory(tmp_path, capsys, argv):
    missing = str(tmp_path / "no_such_model")
    argv = [a.format(missing=missing, out=tmp_path / "x" / "1") for a in argv]
    code, _, err = _run(capsys, *argv)
    _clean_error(code, err, "Model directory not found", missing)


@pytest.mark.parametrize(
    "command,kind,other",
    [
        ("classify", "gpt", "classifier"),
        ("classify", "translation", "classifier"),
        ("generate", "classifier", "gpt"),
        ("translate", "gpt", "translation"),
    ],
)
def test_model_directory_of_another_application(
    model_dirs, capsys, command, kind, other
):
    code, _, err = _run(capsys, command, "--model", model_dirs[kind], "x")
    _clean_error(code, err, f"holds a '{kind}' model", repr(other))


def test_export_of_an_unknown_task(tmp_path, capsys):
    import json

    from keras_transformer.model_dir import METADATA_FILE, METADATA_KEYS

    model = tmp_path / "odd"
    model.mkdir()
    metadata = dict.fromkeys(METADATA_KEYS) | {"task": "speech"}
    (model / METADATA_FILE).write_text(json.dumps(metadata))
    code, _, err = _run(capsys, "export", "--model", model,
                        "--output", tmp_path / "s" / "1")  # fmt: skip
    # Names the task found and the tasks that can be exported.
    _clean_error(code, err, "'speech' model", "'gpt'", "'classifier'",
                 "'translation'")  # fmt: skip


@pytest.mark.parametrize("task", ["gpt", "classifier"])
def test_unknown_preset(small_files, tmp_path, capsys, task):
    data = small_files / ("lm.txt" if task == "gpt" else "genre.tsv")
    code, _, err = _run(capsys, "train", task, "--train-file", data,
                        "--output", tmp_path / "m", "--preset", "huge",
                        "--vocabulary-size", "30")  # fmt: skip
    _clean_error(code, err, "huge", "tiny")
    assert not (tmp_path / "m" / "tokenizer.model").exists()


@pytest.mark.parametrize("task", ["gpt", "classifier"])
@pytest.mark.parametrize(
    "flag,value,received",
    [
        ("--batch-size", "0", "--batch-size 0"),
        ("--epochs", "-1", "--epochs -1"),
        ("--sequence-length", "0", "--sequence-length 0"),
        ("--steps-per-epoch", "0", "--steps-per-epoch 0"),
        ("--vocabulary-size", "3", "--vocabulary-size 3"),
    ],
)
def test_impossible_hyperparameters_fail_before_training(
    small_files, tmp_path, capsys, task, flag, value, received
):
    data = small_files / ("lm.txt" if task == "gpt" else "genre.tsv")
    code, _, err = _run(capsys, "train", task, "--train-file", data,
                        "--output", tmp_path / "m", "--preset", "tiny",
                        "--vocabulary-size", "30", flag, value)  # fmt: skip
    _clean_error(code, err, received)
    assert received.split()[0].lstrip("-").replace("-", "_") + "=" not in err
    assert not (tmp_path / "m" / "tokenizer.model").exists()


@pytest.mark.parametrize("task", ["gpt", "classifier"])
def test_vocabulary_too_large_for_the_corpus(
    small_files, tmp_path, capsys, task
):
    data = small_files / ("lm.txt" if task == "gpt" else "genre.tsv")
    code, _, err = _run(capsys, "train", task, "--train-file", data,
                        "--output", tmp_path / "m", "--preset", "tiny",
                        "--vocabulary-size", "5000")  # fmt: skip
    _clean_error(code, err, "too large for this corpus",
                 "--vocabulary-size 5000")  # fmt: skip
    assert "vocabulary_size=5000" not in err
