"""Tests for the bundled-corpus loaders and the TSV / text file readers."""

import logging

import pytest

from keras_transformer import data
from keras_transformer.data import DataFormatError

# --- Bundled corpora --------------------------------------------------------


def test_bundled_translation_counts():
    expected = {"train": 20075, "valid": 1085, "test": 1138}
    for split, count in expected.items():
        sources, targets = data.load_bundled_translation(split)
        assert len(sources) == len(targets) == count
        assert all(sources) and all(targets)
        for source, target in zip(sources, targets):
            assert len(source.split()) <= 30 and len(target.split()) <= 30
            assert "\t" not in source and "<" not in target
    sources, targets = data.load_bundled_translation("train")
    first = sources.index(
        "In the beginning, God created the heavens and the earth."
    )
    assert targets[first] == "En el principio crió Dios los cielos y la tierra."


def test_bundled_genre_labels():
    expected = {"train": 28005, "valid": 1511, "test": 1579}
    for split, count in expected.items():
        texts, labels, class_names = data.load_bundled_genre(split)
        assert len(texts) == len(labels) == count
        assert class_names == data.GENRE_CLASS_NAMES
        assert set(labels) == set(class_names)
    assert data.GENRE_CLASS_NAMES == (
        "law",
        "history",
        "wisdom",
        "prophets",
        "gospels_acts",
        "epistles_revelation",
    )


def test_bundled_lm_text_splits_hold_whole_books():
    counts = {"train": 27860, "valid": 1408, "test": 1827}
    lines = {split: data.load_bundled_lm_text(split) for split in counts}
    for split, count in counts.items():
        assert len(lines[split]) == count
        assert all(line.strip() == line and line for line in lines[split])
    # Ruth is a validation book, John a test book, Genesis a training book.
    assert lines["valid"][0].startswith("In the days when the judges judged")
    assert any(line.startswith("For God so loved") for line in lines["test"])
    assert lines["train"][0].startswith("In the beginning, God created")
    assert lines["test"][0].startswith("Now in the days of Ahasuerus")


@pytest.mark.parametrize(
    "loader",
    [
        data.load_bundled_translation,
        data.load_bundled_genre,
        data.load_bundled_lm_text,
    ],
)
def test_bundled_bad_split(loader):
    with pytest.raises(ValueError, match="Received: split='validation'"):
        loader("validation")


# --- read_pairs_tsv ---------------------------------------------------------


def _write(tmp_path, content, name="pairs.tsv"):
    path = tmp_path / name
    path.write_bytes(
        content if isinstance(content, bytes) else content.encode()
    )
    return path


def test_read_pairs_tsv_extra_columns_crlf_bom_and_trailing_blanks(tmp_path):
    path = _write(
        tmp_path,
        "\ufeffGo.\tVe.\tCC-BY 2.0 (France) Attribution: tatoeba.org #1\r\n"
        " Hi. \t¡Hola!\r\n"
        "\n\n",
    )
    sources, targets, skipped = data.read_pairs_tsv(path)
    assert sources == ["Go.", "Hi."]
    assert targets == ["Ve.", "¡Hola!"]
    assert skipped == 0


@pytest.mark.parametrize(
    "content, line, problem",
    [
        ("a\tb\nno tab here\nc\td\n", 2, "no tab"),
        ("a\tb\n\tonly target\n", 2, "empty source"),
        ("a\tb\nc\td\nsource\t  \n", 3, "empty target"),
        ("a\tb\n\nc\td\n", 2, "blank line"),
        (b"a\tb\nc\t\xff\xfe\n", 2, "invalid UTF-8"),
    ],
)
def test_read_pairs_tsv_malformed_lines(tmp_path, content, line, problem):
    path = _write(tmp_path, content)
    with pytest.raises(DataFormatError) as info:
        data.read_pairs_tsv(path)
    message = str(info.value)
    assert str(path) in message
    assert f"line {line}:" in message
    assert problem in message
    assert isinstance(info.value, ValueError)


def test_read_pairs_tsv_skip_bad_lines_logs(tmp_path, caplog):
    path = _write(tmp_path, b"a\tb\nbad\n\tx\nc\td\n\xff\tz\n")
    with caplog.at_level(logging.WARNING):
        sources, targets, skipped = data.read_pairs_tsv(
            path, skip_bad_lines=True
        )
    assert (sources, targets, skipped) == (["a", "c"], ["b", "d"], 3)
    assert "Skipped 3 malformed line(s)" in caplog.text
    assert str(path) in caplog.text


def test_read_pairs_tsv_missing_file(tmp_path):
    path = tmp_path / "nope.tsv"
    with pytest.raises(FileNotFoundError, match="nope.tsv"):
        data.read_pairs_tsv(path)
    with pytest.raises(DataFormatError, match="directory"):
        data.read_pairs_tsv(tmp_path)


def test_read_pairs_tsv_empty_file(tmp_path):
    path = _write(tmp_path, "")
    assert data.read_pairs_tsv(path) == ([], [], 0)


# --- read_labeled_tsv ---------------------------------------------------------


def test_read_labeled_tsv_with_and_without_header(tmp_path):
    with_header = _write(tmp_path, "label\ttext\npos\tgreat\nneg\tbad\n", "a")
    assert data.read_labeled_tsv(with_header) == (
        ["great", "bad"],
        ["pos", "neg"],
        0,
    )
    no_header = _write(tmp_path, "pos\tgreat\tx\n", "b")
    assert data.read_labeled_tsv(no_header) == (["great"], ["pos"], 0)


def test_read_labeled_tsv_errors(tmp_path):
    path = _write(tmp_path, "label\ttext\npos\tgood\nneg\n\tno label\n")
    with pytest.raises(DataFormatError, match=r"line 3: no tab"):
        data.read_labeled_tsv(path)
    texts, labels, skipped = data.read_labeled_tsv(path, skip_bad_lines=True)
    assert (texts, labels, skipped) == (["good"], ["pos"], 2)


# --- read_text_files ----------------------------------------------------------


def test_read_text_files(tmp_path):
    first = _write(tmp_path, "one\n\n  \ntwo\r\n", "a.txt")
    second = _write(tmp_path, "three", "b.txt")
    assert data.read_text_files([first, second]) == ["one", "two", "three"]
    assert data.read_text_files(str(second)) == ["three"]


def test_read_text_files_errors(tmp_path):
    bad = _write(tmp_path, b"fine\nstill fine\nbroken \xc3\x28\n", "bad.txt")
    with pytest.raises(DataFormatError, match=r"bad\.txt, line 3: invalid"):
        data.read_text_files([bad])
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        data.read_text_files([tmp_path / "missing.txt"])
    with pytest.raises(ValueError, match="Received: paths=\\[\\]"):
        data.read_text_files([])
