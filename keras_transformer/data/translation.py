"""tf.data pipeline for sequence-to-sequence training (translation).

Turns `(source, target)` string pairs into batches of
`({"encoder_token_ids": [B, S], "decoder_token_ids": [B, T]}, labels [B, T])`
for `transformer_seq2seq`: both sides are tokenized with one
`SubwordTokenizer`, the source gets an end token, the decoder input starts
with the start token and the labels (the decoder input shifted by one) end
with the end token. Pairs are grouped by length into buckets so that a batch
holds sequences of similar length (little padding), and every batch of a
bucket is padded to the bucket's upper bound, so the model sees only a few
distinct shapes (one XLA compilation each).
"""

import numpy as np
import tensorflow as tf

PAD_ID = 0


def bucket_boundaries(max_length, width=8):
    """Upper bounds (exclusive) of the length buckets.

    Args:
        max_length: the longest sequence after truncation.
        width: the bucket width in tokens.

    Returns:
        A list of ints `[width + 1, 2 * width + 1, ..., max_length + 1]`.

    Example:
    >>> from keras_transformer.data.translation import bucket_boundaries
    >>> bucket_boundaries(20, width=8)
    [9, 17, 21]
    """
    if width < 1:
        raise ValueError(
            f"`width` must be a positive integer. Received: width={width}"
        )
    bounds = list(range(width + 1, max_length + 1, width))
    if not bounds or bounds[-1] != max_length + 1:
        bounds.append(max_length + 1)
    return bounds


def tokenize_pairs(sources, targets, tokenizer, max_length):
    """Tokenizes string pairs into model inputs and labels (ragged).

    Args:
        sources: string tensor [B].
        targets: string tensor [B].
        tokenizer: a `keras_transformer.tokenizers.SubwordTokenizer`.
        max_length: the longest source and target sequence (special tokens
            included); longer ones are truncated, keeping the end token.

    Returns:
        A tuple of three int32 `tf.RaggedTensor`s [B, None]:
        `(encoder_token_ids, decoder_token_ids, labels)`.
    """
    source_ids = tokenizer.tokenize(sources)[:, : max_length - 1]
    target_ids = tokenizer.tokenize(targets)[:, : max_length - 1]
    rows = source_ids.nrows()
    start = tf.fill([rows, 1], tf.constant(tokenizer.start_id, tf.int32))
    end = tf.fill([rows, 1], tf.constant(tokenizer.end_id, tf.int32))
    encoder_ids = tf.concat([source_ids, end], axis=1)
    decoder_ids = tf.concat([start, target_ids], axis=1)
    labels = tf.concat([target_ids, end], axis=1)
    return encoder_ids, decoder_ids, labels


def make_translation_dataset(
    sources,
    targets,
    tokenizer,
    *,
    batch_size,
    max_length,
    shuffle=True,
    seed=0,
    bucket_width=8,
    repeat=False,
    cache=True,
):
    """Builds the training or evaluation `tf.data.Dataset`.

    Pipeline: tokenize (once, then cached), add start/end tokens, truncate
    to `max_length`, shuffle, bucket by length
    (`tf.data.Dataset.bucket_by_sequence_length`, each batch padded to its
    bucket's bound), prefetch.

    Args:
        sources: list of source strings.
        targets: list of target strings (same length).
        tokenizer: a `keras_transformer.tokenizers.SubwordTokenizer` shared
            by source and target.
        batch_size: pairs per batch.
        max_length: longest source/target sequence in tokens, special
            tokens included (the model's `max_sequence_length` or less).
        shuffle: shuffle pairs every epoch (training).
        seed: shuffle seed.
        bucket_width: width of the length buckets in tokens.
        repeat: repeat forever (for `steps_per_epoch` training).
        cache: keep the tokenized pairs in memory.

    Returns:
        A `tf.data.Dataset` of `({"encoder_token_ids": int32 [B, S],
        "decoder_token_ids": int32 [B, T]}, labels int32 [B, T])`, where S and
        T are the bucket bound of the batch and 0 is padding.

    Example:
    >>> from keras_transformer.data.translation import (
    ...     make_translation_dataset)
    >>> dataset = make_translation_dataset(
    ...     ["in the beginning"], ["en el principio"], tokenizer,
    ...     batch_size=32, max_length=64)  # doctest: +SKIP
    """
    if len(sources) != len(targets):
        raise ValueError(
            "`sources` and `targets` must have the same length. Received: "
            f"len(sources)={len(sources)}, len(targets)={len(targets)}"
        )
    if not sources:
        raise ValueError("No sentence pairs to train on. Received: 0 pairs")
    if batch_size < 1:
        raise ValueError(
            f"`batch_size` must be positive. Received: batch_size={batch_size}"
        )
    if max_length < 2:
        raise ValueError(
            "`max_length` must be at least 2. "
            f"Received: max_length={max_length}"
        )
    dataset = tf.data.Dataset.from_tensor_slices(
        (tf.constant(list(sources)), tf.constant(list(targets)))
    )

    def tokenize(source, target):
        encoder_ids, decoder_ids, labels = tokenize_pairs(
            source[None], target[None], tokenizer, max_length
        )
        # Row 0 of a ragged [1, None] batch is a dense [None] tensor.
        return encoder_ids[0], decoder_ids[0], labels[0]

    dataset = dataset.map(tokenize, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(
            min(len(sources), 20_000), seed=seed, reshuffle_each_iteration=True
        )
    if repeat:
        dataset = dataset.repeat()

    def length(encoder_ids, decoder_ids, labels):
        return tf.maximum(tf.shape(encoder_ids)[0], tf.shape(decoder_ids)[0])

    bounds = bucket_boundaries(max_length, bucket_width)
    dataset = dataset.bucket_by_sequence_length(
        length,
        bucket_boundaries=bounds,
        bucket_batch_sizes=[batch_size] * (len(bounds) + 1),
        pad_to_bucket_boundary=True,
        padding_values=PAD_ID,
    )

    def to_inputs(encoder_ids, decoder_ids, labels):
        inputs = {
            "encoder_token_ids": encoder_ids,
            "decoder_token_ids": decoder_ids,
        }
        return inputs, labels

    return dataset.map(to_inputs).prefetch(tf.data.AUTOTUNE)


def count_target_tokens(targets, tokenizer, max_length):
    """Number of label tokens (end tokens included) of a list of targets."""
    ids = tokenizer.tokenize(tf.constant(list(targets)))[:, : max_length - 1]
    return int(np.sum(ids.row_lengths().numpy() + 1))


def pad_batch(token_ids, length=None, multiple=8):
    """Pads lists of ids into an int32 array, length rounded up.

    Args:
        token_ids: list of lists of ints.
        length: the padded length; defaults to the longest list rounded up
            to a multiple of `multiple` (fewer distinct shapes to compile).
        multiple: rounding of the default length.

    Returns:
        An int32 numpy array [B, length], 0 for padding.
    """
    if length is None:
        longest = max((len(ids) for ids in token_ids), default=1)
        length = max(multiple, -(-longest // multiple) * multiple)
    out = np.zeros((len(token_ids), length), "int32")
    for i, ids in enumerate(token_ids):
        ids = list(ids)[:length]
        out[i, : len(ids)] = ids
    return out
