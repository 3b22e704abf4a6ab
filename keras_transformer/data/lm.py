"""Language-model data: tokenized text packed into fixed windows.

Each text (a verse, a line) becomes `<s> ids </s>`; the sequences are
concatenated into one token stream, which is cut into windows of
`sequence_length + 1` tokens that overlap by one token. A window gives the
inputs (its first `sequence_length` tokens) and the labels (the same tokens
shifted by one), so every token of the stream after the first is predicted
exactly once per epoch. The last, shorter window is padded with id 0 (the
padding id, ignored by the masked loss and metrics).
"""

import numpy as np
import tensorflow as tf


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"`{name}` must be a positive integer. Received: {name}={value!r}"
        )


def tokenize_texts(texts, tokenizer, add_start=True, add_end=True):
    """Tokenizes texts into one list of ids per text.

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
        texts: list of str (e.g. one verse per item).
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
