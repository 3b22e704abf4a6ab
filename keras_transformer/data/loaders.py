"""Loaders for the bundled corpora and for user text files.

The bundled corpora (built by `tools/build_corpora.py`, see
`bundled/PROVENANCE.md`) ship inside the package, so demos and tests run on a
fresh machine without network access. The file readers check their input and
report a malformed line with the file name, the 1-based line number and what
was wrong.
"""

import gzip
import importlib.resources
import logging
import os
import sys

logger = logging.getLogger(__name__)

GENRE_CLASS_NAMES = (
    "law",
    "history",
    "wisdom",
    "prophets",
    "gospels_acts",
    "epistles_revelation",
)
SPLITS = ("train", "valid", "test")
_BUNDLED_PACKAGE = "keras_transformer.data"


class DataFormatError(ValueError):
    """A data file is missing or malformed.

    The message names the file and, for a bad line, its 1-based line number
    and what was wrong with it.

    Example:

    >>> raise DataFormatError("pairs.tsv, line 3: no tab")  # doctest: +SKIP
    """


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(
            f"`split` must be one of {SPLITS}. Received: split={split!r}"
        )


def _bundled_lines(name):
    resource = importlib.resources.files(_BUNDLED_PACKAGE) / "bundled" / name
    try:
        with resource.open("rb") as raw, gzip.open(raw, "rt", "utf-8") as f:
            return f.read().splitlines()
    except FileNotFoundError as error:
        raise DataFormatError(
            f"Bundled corpus file {name!r} is missing from the package; "
            "rebuild it with `python -m tools.build_corpora`."
        ) from error


def load_bundled_translation(split):
    """Load English-Spanish verse pairs from the bundled corpus.

    Verse pairs from texts derived from the World English Bible and the
    Reina-Valera 1909, at most 30 words per side; about 22k pairs in all,
    split 90/5/5 by a hash of the verse key.

    Args:
        split: `"train"`, `"valid"` or `"test"`.

    Returns:
        A tuple `(sources, targets)` of equal-length lists of str: English
        sources and Spanish targets.

    Example:

    >>> sources, targets = keras_transformer.data.load_bundled_translation(
    ...     "valid")
    >>> len(sources) == len(targets)
    True
    """
    _check_split(split)
    sources, targets = [], []
    for line in _bundled_lines("translation_en_es.tsv.gz"):
        line_split, _, source, target = line.split("\t")
        if line_split == split:
            sources.append(source)
            targets.append(target)
    return sources, targets


def load_bundled_genre(split):
    """Load the bundled 6-genre English verse classification task.

    Each verse is labelled with the genre of its book (see
    `GENRE_CLASS_NAMES`); split 90/5/5 by a hash of the verse key. A word
    naive-Bayes baseline reaches about 74% test accuracy.

    Args:
        split: `"train"`, `"valid"` or `"test"`.

    Returns:
        A tuple `(texts, labels, class_names)`: lists of str of equal length
        and the tuple `GENRE_CLASS_NAMES` (labels are its members as str;
        `class_names.index(label)` gives an integer id).

    Example:

    >>> texts, labels, names = keras_transformer.data.load_bundled_genre(
    ...     "test")
    >>> set(labels) <= set(names)
    True
    """
    _check_split(split)
    texts, labels = [], []
    for line in _bundled_lines("genre_verses.tsv.gz"):
        line_split, _, label, text = line.split("\t")
        if line_split == split:
            texts.append(text)
            labels.append(label)
    return texts, labels, GENRE_CLASS_NAMES


def load_bundled_lm_text(split):
    """Load the bundled English language-model text, one verse per line.

    The splits hold whole books (`LM_VALID_BOOKS` and `LM_TEST_BOOKS` in
    `tools/build_corpora.py`), so no context leaks from evaluation into
    training.

    Args:
        split: `"train"`, `"valid"` or `"test"`.

    Returns:
        A list of str, one verse per item, in canonical order.

    Example:

    >>> lines = keras_transformer.data.load_bundled_lm_text("valid")
    """
    _check_split(split)
    return _bundled_lines(f"english_lm_{split}.txt.gz")


def _iter_file_lines(path):
    """Yield `(line_number, text_or_None, error)` for each line of a file."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such data file: {path!r}")
    if os.path.isdir(path):
        raise DataFormatError(f"Expected a file, got a directory: {path!r}")
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            raw = raw.rstrip(b"\r\n")
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # UTF-8 byte-order mark.
            try:
                yield number, raw.decode("utf-8"), None
            except UnicodeDecodeError as error:
                yield number, None, f"invalid UTF-8 at byte {error.start}"


def _read_two_columns(path, skip_bad_lines, header, names):
    """Read `first<TAB>second[<TAB>...]` lines; shared by the TSV readers."""
    firsts, seconds = [], []
    bad = []  # (line number, problem) of malformed lines.
    blank_lines = []
    for number, text, problem in _iter_file_lines(path):
        if problem is None and not text.strip():
            blank_lines.append(number)
            continue
        if problem is None and blank_lines:
            # A blank line in the middle of the data is malformed.
            bad.extend((n, "blank line") for n in blank_lines)
        blank_lines = []
        if problem is None:
            columns = text.split("\t")
            if (
                header
                and number == 1
                and [c.strip() for c in columns] == list(header)
            ):
                continue
            if len(columns) < 2:
                problem = "no tab separating two columns"
            elif not columns[0].strip():
                problem = f"empty {names[0]}"
            elif not columns[1].strip():
                problem = f"empty {names[1]}"
        if problem is not None:
            bad.append((number, problem))
            if not skip_bad_lines:
                break
            continue
        firsts.append(columns[0].strip())
        seconds.append(columns[1].strip())
    if bad and not skip_bad_lines:
        number, problem = bad[0]
        raise DataFormatError(
            f"{os.fspath(path)}, line {number}: {problem}. Expected "
            f"`{names[0]}<TAB>{names[1]}`; pass skip_bad_lines=True to skip "
            "malformed lines."
        )
    if bad:
        logger.warning(
            "Skipped %d malformed line(s) of %s (first: line %d, %s).",
            len(bad),
            os.fspath(path),
            bad[0][0],
            bad[0][1],
        )
    return firsts, seconds, len(bad)


def read_pairs_tsv(path, skip_bad_lines=False):
    """Read a UTF-8 parallel corpus of `source<TAB>target` lines.

    Extra columns (Tatoeba and Anki pair files carry attribution) are
    ignored; both sides are stripped of surrounding whitespace. Blank lines
    at the end of the file are allowed. A line without a tab, with an empty
    side, a blank line in the middle or invalid UTF-8 is malformed.

    Args:
        path: path of the file.
        skip_bad_lines: bool. If False (default), the first malformed line
            raises `DataFormatError`; if True, malformed lines are skipped
            and their number is logged.

    Returns:
        A tuple `(sources, targets, num_skipped)`.

    Raises:
        FileNotFoundError: the file does not exist.
        DataFormatError: a line is malformed (the message names the file,
            the 1-based line number and the problem).

    Example:

    >>> sources, targets, skipped = keras_transformer.data.read_pairs_tsv(
    ...     "spa.txt")  # doctest: +SKIP
    """
    return _read_two_columns(path, skip_bad_lines, None, ("source", "target"))


def read_labeled_tsv(path, skip_bad_lines=False):
    """Read a UTF-8 classification file of `label<TAB>text` lines.

    An optional first line `label<TAB>text` is taken as a header. Extra
    columns are ignored. The error rules are those of `read_pairs_tsv`.

    Args:
        path: path of the file.
        skip_bad_lines: bool, skip (and log) malformed lines instead of
            raising.

    Returns:
        A tuple `(texts, labels, num_skipped)`; labels are str.

    Raises:
        FileNotFoundError: the file does not exist.
        DataFormatError: a line is malformed.

    Example:

    >>> texts, labels, skipped = keras_transformer.data.read_labeled_tsv(
    ...     "reviews.tsv")  # doctest: +SKIP
    """
    labels, texts, skipped = _read_two_columns(
        path, skip_bad_lines, ("label", "text"), ("label", "text")
    )
    return texts, labels, skipped


def stdin_lines():
    """The lines of standard input without their line ends.

    Invalid UTF-8 becomes U+FFFD rather than an error, so one bad byte
    does not stop a command reading text to translate, classify or
    continue. Blank lines are kept (callers that must stay aligned with
    their input need them).
    """
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:
        return [line.rstrip("\n") for line in sys.stdin]
    return [line.rstrip(b"\n").decode("utf-8", "replace") for line in stream]


def read_text_files(paths, skip_bad_lines=False):
    """Read the non-empty lines of UTF-8 plain-text files.

    Args:
        paths: a path or a list of paths, read in order.
        skip_bad_lines: bool, default False. Skip lines that are not valid
            UTF-8 (their count is logged as a warning) instead of raising.

    Returns:
        A list of str: every line that is not blank, without its line end.

    Raises:
        FileNotFoundError: a file does not exist.
        DataFormatError: a file holds invalid UTF-8 (the message names the
            file and the 1-based line number).

    Example:

    >>> lines = keras_transformer.data.read_text_files(
    ...     ["a.txt", "b.txt"])  # doctest: +SKIP
    """
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    paths = list(paths)
    if not paths:
        raise ValueError(
            "`paths` must name at least one file. Received: paths=[]"
        )
    lines, skipped = [], 0
    for path in paths:
        for number, text, problem in _iter_file_lines(path):
            if problem is not None and skip_bad_lines:
                skipped += 1
                continue
            if problem is not None:
                raise DataFormatError(
                    f"{os.fspath(path)}, line {number}: {problem}; pass "
                    "skip_bad_lines=True to skip such lines."
                )
            if text.strip():
                lines.append(text)
    if skipped:
        logger.warning("Skipped %d line(s) that are not valid UTF-8.", skipped)
    return lines
