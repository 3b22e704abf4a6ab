"""GPT documents: blank-line and per-file documents, whitespace kept from
the files through the tokenizer to the generator and the SavedModel."""

import json
import os
import subprocess
import sys

import pytest
from keras_transformer.applications import presets

import keras_transformer
from keras_transformer.data import lm as lm_data
from keras_transformer.data.loaders import DataFormatError
from keras_transformer.export import export_gpt
from keras_transformer.tasks import gpt as gpt_task
from keras_transformer.tokenizers import SubwordTokenizer

# 1 layer, d32: 40 steps in seconds are enough to indent (d16 after 20
# steps only writes line breaks).
TEST_PRESET = {
    "vocabulary_size": 8000,
    "num_layers": 1,
    "hidden_dim": 32,
    "num_heads": 2,
    "intermediate_dim": 64,
    "max_sequence_length": 64,
    "dropout": 0.0,
}


# ----------------------------------------------------------------------
# Reading documents
# ----------------------------------------------------------------------
def test_blank_lines_split_documents_and_line_breaks_stay(tmp_path):
    path = tmp_path / "text.txt"
    path.write_bytes(
        b"Roses are red,\n  violets are blue.\n\n"
        b"   \t \n\n"  # whitespace-only lines: one separator
        b"Second\r\n\tindented\r\n\r\n"
        b"last line, no line end"
    )
    documents, skipped = gpt_task.read_texts(str(path))
    assert documents == [
        "Roses are red,\n  violets are blue.",
        "Second\r\n\tindented",
        "last line, no line end",
    ]
    assert skipped == 0
    # Never one document per line.
    assert lm_data.count_lines(documents) == 5


def test_document_per_file_and_directories(tmp_path):
    source = tmp_path / "src"
    (source / "pkg").mkdir(parents=True)
    (source / ".git").mkdir()
    (source / ".git" / "HEAD").write_bytes(b"\xff not text")
    (source / ".hidden.py").write_text("hidden = True\n")
    (source / "pkg" / "b.py").write_text(
        "def f(x):\n    return x\n\n\nclass A:\n\tpass\n"
    )
    (source / "a.py").write_text("x = 1\n")
    (source / "empty.py").write_text("\n \n")
    files = [str(source / "a.py"), str(source / "pkg" / "b.py")]
    assert lm_data.list_text_files(str(source)) == sorted(
        files + [str(source / "empty.py")]
    )
    whole, _ = gpt_task.read_texts([str(source)], document_per_file=True)
    # Exactly the files (blank ones dropped), blank lines and ends kept.
    assert whole == [
        "x = 1\n",
        "def f(x):\n    return x\n\n\nclass A:\n\tpass\n",
    ]
    paragraphs, _ = gpt_task.read_texts(str(source))
    assert paragraphs == [
        "x = 1",
        "def f(x):\n    return x",
        "class A:\n\tpass",
    ]
    # A directory and a file, in the order given.
    extra = tmp_path / "notes.txt"
    extra.write_text("note\n")
    both, _ = gpt_task.read_texts([str(extra), str(source)], False, True)
    assert both[0] == "note\n" and both[1:] == whole
    with pytest.raises(FileNotFoundError, match="missing"):
        gpt_task.read_texts(str(tmp_path / "missing"))
    (tmp_path / "nothing").mkdir()
    with pytest.raises(ValueError, match="holds no"):
        gpt_task.read_texts(str(tmp_path / "nothing"))


def test_bad_utf8_is_named_or_skipped_and_max_lines_counts_lines(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"\xef\xbb\xbfone\n  two\n\xff bad\nthree\n\nfour\nfive\n")
    with pytest.raises(DataFormatError, match=r"bad\.txt, line 3"):
        gpt_task.read_texts(str(path))
    documents, skipped = gpt_task.read_texts(str(path), skip_bad_lines=True)
    # The byte-order mark goes; the bad line is left out of its document.
    assert documents == ["one\n  two\nthree", "four\nfive"]
    assert skipped == 1
    # The first 5 lines (the bad and the blank one included).
    documents, skipped = gpt_task.read_texts(str(path), True, max_lines=5)
    assert documents == ["one\n  two\nthree"] and skipped == 1
    with pytest.raises(ValueError, match="Received: max_lines=0"):
        gpt_task.read_texts(str(path), True, max_lines=0)


def test_hold_out_of_documents_and_of_a_single_document():
    documents = [f"doc {i}\nline" for i in range(40)]
    train, valid = gpt_task._hold_out(documents)
    assert len(valid) == 2 and len(train) == 38
    assert sorted(train + valid) == sorted(documents)
    lines = "".join(f"line {i}\n" for i in range(40))
    train, valid = gpt_task._hold_out([lines])
    # The last 5% of the lines, in one piece.
    assert valid == ["line 38\nline 39\n"] and train[0] + valid[0] == lines
    with pytest.raises(ValueError, match="fewer than 2"):
        gpt_task._hold_out(["one line\n\n"])


# ----------------------------------------------------------------------
# Training on code; whitespace through generation and export
# ----------------------------------------------------------------------
def _write_code(root):
    """Small Python files with 4-space and tab indentation."""
    root.mkdir()
    for i in range(30):
        tab = "\t" if i % 3 == 0 else "    "
        (root / f"m{i:02d}.py").write_text(
            f"def f{i % 5}(x):\n{tab}y = x + {i}\n\n{tab}return y\n\n\n"
            f"class C{i % 4}:\n{tab}def g(self):\n{tab}{tab}return {i}\n"
        )


@pytest.fixture(scope="module")
def code_model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpt_code")
    _write_code(root / "code")
    output = root / "model"
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(presets.GPT_PRESETS, "test_1x16", TEST_PRESET)
        metadata = gpt_task.train_gpt(
            str(output),
            train_files=[str(root / "code")],
            document_per_file=True,
            preset="test_1x16",
            epochs=1,
            steps_per_epoch=40,
            batch_size=8,
            warmup_steps=10,
            verbose=0,
        )
    return output, metadata


def test_training_on_a_directory_of_code(code_model_dir):
    output, metadata = code_model_dir
    data = metadata["data"]
    assert data["train_documents"] + data["valid_documents"] == 30
    assert data["valid_documents"] == 2 and metadata["steps"] == 40
    assert metadata["settings"]["document_per_file"] is True
    # vocabulary_size=None: 8000 lowered to what the code can give, with
    # the byte pieces.
    assert metadata["settings"]["vocabulary_size"] is None
    tokenizer = SubwordTokenizer.load(output / "tokenizer.model")
    assert 260 < tokenizer.vocabulary_size < 8000
    assert metadata["config"]["vocabulary_size"] == tokenizer.vocabulary_size
    assert tokenizer.preserve_whitespace
    assert "<0xFF>" in tokenizer.get_vocabulary()
    for path in sorted((output.parent / "code").iterdir())[:3]:
        text = path.read_text()
        back = tokenizer.detokenize(tokenizer.tokenize(text)).numpy()
        assert back.decode("utf-8") == text
    # Evaluation reads the files as the run did (one document per file).
    result = gpt_task.evaluate_gpt(str(output), [str(output.parent / "code")])
    assert result["tokens"] > 100


PROMPTS = ["def f1(x):\n", "class C2:\n\tdef g(self):\n", "\n"]


def test_generator_returns_line_breaks_and_indentation(code_model_dir):
    output, _ = code_model_dir
    generator = keras_transformer.load(str(output))
    newline = generator.tokenizer.token_to_id("\n")
    prompt_ids, new_ids = generator.generate_ids(PROMPTS, 16)
    texts = generator.generate(PROMPTS, 16)
    full = generator.generate(PROMPTS, 16, return_full_text=True)
    vocabulary = generator.tokenizer.get_vocabulary()
    for prompt, ids, text, whole in zip(PROMPTS, new_ids, texts, full):
        ids = [i for i in ids if i not in (0, generator.tokenizer.end_id)]
        # The text is the pieces as they are: nothing stripped or joined.
        pieces = "".join(vocabulary[i] for i in ids).replace("\u2581", " ")
        assert text == pieces
        assert ("\n" in text) == (newline in ids)
        assert whole == prompt + text
        streamed = "".join(generator.stream(prompt, 16))
        assert streamed == text
    # After 40 steps on the code the model writes indented lines.
    assert any("\n" in text for text in texts)
    assert any(("    " in text) or ("\t" in text) for text in texts)


_FRESH_PROCESS = r"""
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the SentencePiece ops)
path, prompts = sys.argv[1], json.loads(sys.argv[2])
model = tf.saved_model.load(path)
serve = model.signatures["serving_default"]
out = serve(prompt=tf.constant(prompts))["completion"].numpy().tolist()
print(json.dumps({
    "completions": [s.decode("utf-8") for s in out],
    "keras_transformer_imported": any(
        m.startswith("keras_transformer") for m in sys.modules),
}))
"""


def test_saved_model_returns_line_breaks_in_a_fresh_process(
    code_model_dir, tmp_path
):
    output, _ = code_model_dir
    saved = str(tmp_path / "saved" / "gpt" / "1")
    export_gpt(str(output), saved)
    completed = subprocess.run(
        [sys.executable, "-c", _FRESH_PROCESS, saved, json.dumps(PROMPTS)],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert not result["keras_transformer_imported"]
    generator = keras_transformer.load(str(output))
    expected = generator.generate(PROMPTS, generator.max_sequence_length - 1)
    assert result["completions"] == expected
    assert any("\n" in text for text in result["completions"])


# ----------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------
def test_train_gpt_flag_document_per_file():
    from keras_transformer.cli import _parser, _train

    parser = _parser.build_parser()
    args = parser.parse_args(
        ["train", "gpt", "--output", "m", "--train-file", "src"]
        + ["--document-per-file"]
    )
    kwargs = _train.train_kwargs(args)
    assert kwargs["document_per_file"] is True
    assert kwargs["train_files"] == ["src"]
    # The vocabulary is left to the runner (None: 8000, lowered).
    assert "vocabulary_size" not in kwargs
    plain = _train.train_kwargs(
        parser.parse_args(["train", "gpt", "--output", "m"])
    )
    assert "document_per_file" not in plain


def test_cli_generate_keeps_newlines_when_asked(code_model_dir, capsys):
    from keras_transformer.cli import main

    output, _ = code_model_dir
    generator = keras_transformer.load(str(output))
    prompt = PROMPTS[0]
    expected = generator.generate(prompt, 16, return_full_text=True)
    # The prompt's line break and the completion's indentation.
    assert expected.startswith(prompt) and "  " in expected[len(prompt) :]
    common = ["generate", "--model", str(output), "--max-new-tokens", "16"]
    for mode in ([], ["--no-stream"]):
        capsys.readouterr()
        assert main(common + mode + ["--keep-newlines", prompt]) == 0
        assert capsys.readouterr().out == expected + "\n"
        # By default one output line per prompt.
        assert main(common + mode + [prompt]) == 0
        out = capsys.readouterr().out
        assert out == expected.replace("\n", " ") + "\n"
