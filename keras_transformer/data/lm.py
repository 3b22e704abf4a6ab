"""Language-model data: documents of text packed into fixed windows.

`read_documents` reads plain-text files as documents: paragraphs split at
blank lines, or one document per file (source code). Line breaks and
indentation inside a document are kept; a document is one text, however
many lines it holds.

Each text (a document, a verse) becomes `<s> ids </s>`; the sequences are
concatenated into one token stream, which is cut into windows of
`sequence_length + 1` tokens that overlap by one token. A window gives the
inputs (its first `sequence_length` tokens) and the labels (the same tokens
shifted by one), so every token of the stream after the first is predicted
exactly once per epoch. The last, shorter window is padded with id 0 (the
padding id, ignored by the masked loss and metrics).
"""

import logging
import os

import numpy as np
import tensorflow as tf

from keras_transformer.data.loaders import DataFormatError

logger = logging.getLogger(__name__)


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"`{name}` must be a positive integer. Received: {name}={value!r}"
        )


def list_text_files(paths):
    """The files that paths name: files as given, directories expanded.

    A directory stands for every regular file under it, at any depth, in
    sorted order of their paths; hidden files and folders (names starting
    with ".", such as `.git`) are left out.

    Args:
        paths: a path or a list of paths (files or directories), in order.

    Returns:
        A list of str paths.

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: no paths, or a directory holds no file.

    Example:
    >>> from keras_transformer.data.lm import list_text_files
    >>> list_text_files(["notes.txt", "src"])  # doctest: +SKIP
    ['notes.txt', 'src/a.py', 'src/pkg/b.py']
    """
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    paths = [os.fsdecode(path) for path in paths]
    if not paths:
        raise ValueError(
            "`paths` must name at least one file. Received: paths=[]"
        )
    files = []
    for path in paths:
        if not os.path.exists(path):
            raise FileNotFoundError(f"No such data file: {path!r}")
        if not os.path.isdir(path):
            files.append(path)
            continue
        found = []
        for root, folders, names in os.walk(path):
            folders[:] = [f for f in folders if not f.startswith(".")]
            for name in names:
                full = os.path.join(root, name)
                if not name.startswith(".") and os.path.isfile(full):
                    found.append(full)
        if not found:
            raise ValueError(
                "The directory holds no (non-hidden) file to read. "
                f"Received: path={path!r}"
            )
        files.extend(sorted(found))
    return files


def _strip_line_end(text):
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith("\n") else text


def read_documents(
    paths, document_per_file=False, skip_bad_lines=False, max_lines=None
):
    """Reads UTF-8 plain-text files as documents, whitespace kept.

    By default documents are separated by blank lines (one or more lines
    holding only whitespace) and by the end of a file; the lines of a
    document keep their line ends (`"\\n"` or `"\\r\\n"`) and indentation,
    the last line's end is dropped. With `document_per_file`, each file is
    one document, exactly as written (blank lines and the final line end
    included). Files are read once.

    Args:
        paths: a path or a list of paths, read in order; a directory
            stands for the files under it (see `list_text_files`).
        document_per_file: bool, default False. One document per file
            (source code) instead of one per paragraph.
        skip_bad_lines: bool, default False. Leave out lines that are not
            valid UTF-8 (counted and logged) instead of raising.
        max_lines: int or None (default). Read only the first N lines
            (blank and bad ones count), across the files in order.

    Returns:
        `(documents, num_skipped)`: a list of str (none of them blank) and
        the number of lines left out as invalid UTF-8.

    Raises:
        FileNotFoundError: a path does not exist.
        DataFormatError: a line is not valid UTF-8 (the message names the
            file and the 1-based line number), unless `skip_bad_lines`.

    Example:
    >>> from keras_transformer.data.lm import read_documents
    >>> documents, skipped = read_documents(  # doctest: +SKIP
    ...     "src", document_per_file=True)
    """
    if max_lines is not None:
        _check_positive_int("max_lines", max_lines)
    documents, skipped, read = [], 0, 0
    for path in list_text_files(paths):
        if max_lines is not None and read >= max_lines:
            break
        paragraph = []  # The lines of the document being read.
        with open(path, "rb") as f:
            for number, raw in enumerate(f, start=1):
                if max_lines is not None and read >= max_lines:
                    break
                read += 1
                if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]  # UTF-8 byte-order mark.
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    if not skip_bad_lines:
                        raise DataFormatError(
                            f"{path}, line {number}: invalid UTF-8 at byte "
                            f"{error.start}; pass skip_bad_lines=True to "
                            "skip such lines."
                        ) from None
                    skipped += 1
                    continue
                if document_per_file or line.strip():
                    paragraph.append(line)
                elif paragraph:
                    documents.append(_strip_line_end("".join(paragraph)))
                    paragraph = []
        text = "".join(paragraph)
        if text.strip():
            documents.append(
                text if document_per_file else _strip_line_end(text)
            )
    if skipped:
        logger.warning("Skipped %d line(s) that are not valid UTF-8.", skipped)
    return documents, skipped


def count_lines(documents):
    """The number of non-blank lines in a list of documents.

    Example:
    >>> from keras_transformer.data.lm import count_lines
    >>> count_lines(["a\\nb", "c\\n\\n  \\nd\\n"])
    4
    """
    return sum(
        1 for text in documents for line in text.split("\n") if line.strip()
    )


def tokenize_texts(texts, tokenizer, add_start=True, add_end=True):
    """Tokenizes texts into one list of ids per text.

    A text is a whole document: its line breaks are tokens like any
    other (with a whitespace-preserving tokenizer).

    Args:
        texts: list of str.
        tokenizer: a `keras_transformer.tokenizers.SubwordTokenizer`.
        add_start: prepend the start id to each text.
        add_end: append the end id to each text.

    Returns:
        A list of lists of int (blank texts are skipped).
    """
    texts = [text for text in texts if text.strip()]
    if not texts:
        raise ValueError(
            "`texts` holds no non-blank text. Received: texts with 0 "
            "non-blank items"
        )
    ids = tokenizer.tokenize(texts, add_start=add_start, add_end=add_end)
    return [row.tolist() for row in ids.numpy()]


def pack_windows(token_id_lists, sequence_length, pad_last=True):
    """Concatenates token id lists and cuts them into windows.

    Args:
        token_id_lists: list of lists of int.
        sequence_length: int L, the model input length.
        pad_last: keep the last, shorter window padded with 0; if False it
            is dropped.

    Returns:
        int32 numpy array [W, L + 1]; window `w` holds stream tokens
        `w * L .. w * L + L`.

    Example:
    >>> from keras_transformer.data.lm import pack_windows
    >>> pack_windows([[2, 5, 6, 3], [2, 7, 3]], 3).tolist()
    [[2, 5, 6, 3], [3, 2, 7, 3]]
    """
    _check_positive_int("sequence_length", sequence_length)
    stream = np.fromiter(
        (t for row in token_id_lists for t in row), dtype=np.int32
    )
    if stream.size < 2:
        raise ValueError(
            "The text is too short to make a training window (fewer than 2 "
            f"tokens). Received: num_tokens={stream.size}"
        )
    step = sequence_length
    count = (stream.size - 1) // step
    remainder = (stream.size - 1) % step
    if remainder and pad_last:
        count += 1
    padded = np.zeros(count * step + 1, dtype=np.int32)
    used = min(stream.size, padded.size)
    padded[:used] = stream[:used]
    # [W, L + 1] windows overlapping by one token.
    starts = np.arange(count)[:, None] * step
    return padded[starts + np.arange(step + 1)[None, :]]


def windows_to_examples(windows):
    """Splits windows [..., L + 1] into model inputs and labels.

    Returns:
        `({"token_ids": [..., L], "padding_mask": [..., L]}, labels [..., L])`
        where `padding_mask` is True on real (non-zero) input tokens.
    """
    token_ids = windows[..., :-1]
    labels = windows[..., 1:]
    return (
        {"token_ids": token_ids, "padding_mask": token_ids != 0},
        labels,
    )


def lm_dataset(
    windows,
    batch_size,
    shuffle=False,
    seed=0,
    drop_remainder=False,
):
    """A `tf.data` pipeline over packed windows.

    Args:
        windows: int array [W, L + 1] from `pack_windows`.
        batch_size: int.
        shuffle: shuffle the windows (again every epoch).
        seed: shuffle seed.
        drop_remainder: drop the last, smaller batch (static shapes for
            training).

    Returns:
        A `tf.data.Dataset` of `({"token_ids": int32 [B, L],
        "padding_mask": bool [B, L]}, labels int32 [B, L])`.

    Example:
    >>> from keras_transformer.data.lm import lm_dataset, pack_windows
    >>> windows = pack_windows([[2, 5, 6, 3], [2, 7, 3]], 3)
    >>> inputs, labels = next(iter(lm_dataset(windows, batch_size=2)))
    >>> labels.numpy().tolist()
    [[5, 6, 3], [2, 7, 3]]
    """
    _check_positive_int("batch_size", batch_size)
    windows = np.asarray(windows, dtype=np.int32)
    if windows.ndim != 2 or windows.shape[1] < 2:
        raise ValueError(
            "`windows` must have shape [W, L + 1] with L >= 1. "
            f"Received: windows.shape={windows.shape}"
        )
    dataset = tf.data.Dataset.from_tensor_slices(windows)
    if shuffle:
        dataset = dataset.shuffle(
            len(windows), seed=seed, reshuffle_each_iteration=True
        )
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.map(
        windows_to_examples, num_parallel_calls=tf.data.AUTOTUNE
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


def text_lm_dataset(
    texts,
    tokenizer,
    sequence_length,
    batch_size,
    shuffle=False,
    seed=0,
    drop_remainder=False,
):
    """Tokenizes, packs and batches texts for language modelling.

    Args:
        texts: list of str (documents, or e.g. one verse per item).
        tokenizer: a `keras_transformer.tokenizers.SubwordTokenizer`.
        sequence_length: int L, the model input length.
        batch_size: int.
        shuffle: shuffle windows every epoch.
        seed: shuffle seed.
        drop_remainder: drop the last, smaller batch.

    Returns:
        A tuple `(dataset, num_windows, num_label_tokens)`: the dataset as
        in `lm_dataset`, the number of windows and of real label tokens.

    Example:
    >>> dataset, windows, tokens = text_lm_dataset(  # doctest: +SKIP
    ...     lines, tokenizer, sequence_length=128, batch_size=32)
    """
    windows = pack_windows(
        tokenize_texts(texts, tokenizer), sequence_length, pad_last=True
    )
    tokens = int(np.count_nonzero(windows[:, 1:]))
    dataset = lm_dataset(
        windows, batch_size, shuffle, seed, drop_remainder=drop_remainder
    )
    return dataset, len(windows), tokens
