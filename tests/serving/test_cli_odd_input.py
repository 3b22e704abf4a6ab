"""`classify` / `generate` answer empty text and invalid UTF-8 on stdin,
one output line per input line (blank lines included)."""

import io
import sys

import pytest

from keras_transformer import cli


def _stdin(monkeypatch, data):
    stream = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stream)


def _run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def class_names(model_dirs):
    import json

    metadata = (model_dirs["classifier"] / "metadata.json").read_text()
    return json.loads(metadata)["inference"]["class_names"]


def _check_classify_lines(out, count, class_names):
    lines = out.splitlines()
    assert len(lines) == count, out
    for line in lines:
        label, probability = line.split("\t")
        assert label in class_names and 0.0 <= float(probability) <= 1.0


def test_classify_empty_and_invalid_text(
    model_dirs, capsys, monkeypatch, class_names
):
    model = model_dirs["classifier"]
    code, out, _ = _run(capsys, "classify", "--model", model, "", "  ")
    assert code == 0
    _check_classify_lines(out, 2, class_names)
    _stdin(
        monkeypatch,
        b"\xff\xfe bad \xc3\n\nIn the beginning\n\xf0\x9f\x99\x82\n",
    )
    code, out, err = _run(capsys, "classify", "--model", model)
    assert code == 0, err
    _check_classify_lines(out, 4, class_names)  # the blank line answered
    _stdin(monkeypatch, b"")
    code, out, err = _run(capsys, "classify", "--model", model)
    assert code == 0 and out == "", err


def test_generate_empty_and_invalid_prompts(model_dirs, capsys, monkeypatch):
    model = model_dirs["gpt"]
    common = ["generate", "--model", model, "--max-new-tokens", "3"]
    code, out, err = _run(capsys, *common, "")
    assert code == 0 and len(out.splitlines()) == 1, err
    _stdin(monkeypatch, b"\xff\xfe bad \xc3\n\nIn the beginning\n")
    code, out, err = _run(capsys, *common)
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 3 and lines[2].startswith("In the beginning")
    _stdin(monkeypatch, b"\x80\n")
    code, out, err = _run(capsys, *common, "--no-stream")
    assert code == 0 and len(out.splitlines()) == 1, err
