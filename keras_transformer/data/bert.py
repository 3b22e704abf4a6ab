"""tf.data pipelines for the BERT-style encoder: encoding, classification.

Every sequence is `[CLS] pieces... [SEP]`, using the tokenizer's start id
(`<s>`, 2) as [CLS] and its end id (`</s>`, 3) as [SEP], truncated to
`sequence_length` and padded with 0. The features are the dict the models of
`keras_transformer.applications.bert` take: `token_ids`, `padding_mask`
(1 for real tokens) and `segment_ids` (all 0: one segment per example).

Training batches are grouped by length (`bucket_by_sequence_length`), so a
batch of short verses is not padded to the longest verse of the corpus.

Masked-LM pipelines are in `keras_transformer.data.masked_lm`.
"""

import tensorflow as tf

from keras_transformer.layers._utils import check_rate

MASK_TOKEN = "[MASK]"
USER_SYMBOLS = (MASK_TOKEN,)
DEFAULT_BUCKET_BOUNDARIES = (16, 24, 32, 48, 64, 96)


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(
            f"`{name}` must be a positive int. Received: {name}={value!r}"
        )


def _check_sequence_length(sequence_length):
    _check_positive_int("sequence_length", sequence_length)
    if sequence_length < 3:
        raise ValueError(
            "`sequence_length` must be at least 3 ([CLS], one piece, "
            f"[SEP]). Received: sequence_length={sequence_length}"
        )


def _wrap(ids, tokenizer, sequence_length):
    """[CLS] + ids[: sequence_length - 2] + [SEP], for 1-D or ragged ids."""
    if isinstance(ids, tf.RaggedTensor):
        ids = ids[:, : sequence_length - 2]
        rows = ids.nrows()
        start = tf.fill([rows, 1], tf.constant(tokenizer.start_id, tf.int32))
        end = tf.fill([rows, 1], tf.constant(tokenizer.end_id, tf.int32))
        return tf.concat([start, ids, end], axis=1)
    ids = ids[: sequence_length - 2]
    return tf.concat([[tokenizer.start_id], ids, [tokenizer.end_id]], axis=0)


def _features(token_ids):
    """The model inputs for padded ids [B, T]."""
    token_ids = tf.cast(token_ids, tf.int32)
    return {
        "token_ids": token_ids,
        "padding_mask": tf.cast(tf.not_equal(token_ids, 0), tf.int32),
        "segment_ids": tf.zeros_like(token_ids),
    }


def encode_batch(tokenizer, texts, sequence_length):
    """Tokenizes a batch of strings into padded model inputs, in-graph.

    Used by the evaluation pipelines and by the exported SavedModel, so the
    served model sees exactly what the Python classifier sees.

    Args:
        tokenizer: a `keras_transformer.tokenizers.SubwordTokenizer`.
        texts: tf.string [B].
        sequence_length: the longest sequence, [CLS] and [SEP] included.

    Returns:
        A dict of int32 [B, T] tensors `token_ids`, `padding_mask` and
        `segment_ids`, with T the longest row of the batch (at most
        `sequence_length`).

    Example:
    >>> features = encode_batch(tokenizer, tf.constant(["In the beginning"]),
    ...                         128)  # doctest: +SKIP
    """
    ids = tokenizer.tokenize(texts)  # [B, None]
    ids = _wrap(ids, tokenizer, sequence_length)
    return _features(ids.to_tensor(default_value=0))  # [B, T]


def _encoded_examples(texts, tokenizer, sequence_length, labels=None):
    """A dataset of 1-D id tensors (and int labels), in input order."""
    texts = tf.constant(list(texts), tf.string)
    if labels is None:
        dataset = tf.data.Dataset.from_tensor_slices(texts)
    else:
        labels = tf.constant(list(labels), tf.int32)
        dataset = tf.data.Dataset.from_tensor_slices((texts, labels))
    # Tokenize in chunks (fast), then go back to single examples.
    dataset = dataset.batch(1024)

    def encode(*item):
        ids = _wrap(tokenizer.tokenize(item[0]), tokenizer, sequence_length)
        # Dense rows and lengths: unbatched ragged rows cannot be padded.
        return (ids.to_tensor(), ids.row_lengths()) + item[1:]

    def trim(ids, length, *rest):
        return (ids[:length],) + rest if rest else ids[:length]

    dataset = dataset.map(encode, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.unbatch().map(trim)


def _shuffle_repeat_batch(
    dataset,
    num_examples,
    batch_size,
    sequence_length,
    bucket,
    *,
    shuffle,
    repeat,
    seed,
):
    """Shuffles, repeats and batches encoded examples (shared by both
    pipelines)."""
    if shuffle:
        dataset = dataset.shuffle(
            min(num_examples, 20_000), seed=seed, reshuffle_each_iteration=True
        )
    if repeat:
        dataset = dataset.repeat()
    return _batched(
        dataset,
        batch_size,
        sequence_length,
        bucket,
        num_examples=None if repeat else num_examples,
    )


def _batched(
    dataset,
    batch_size,
    sequence_length,
    bucket,
    drop_remainder=False,
    num_examples=None,
):
    """Pads examples (ids first) into batches, optionally by length."""
    if not bucket:
        dataset = dataset.padded_batch(
            batch_size, drop_remainder=drop_remainder
        )
        if num_examples is not None:
            # A known length lets Keras size its progress bar and stops it
            # warning that the data "ran out" at the end of evaluation.
            batches = -(-num_examples // batch_size)
            dataset = dataset.apply(
                tf.data.experimental.assert_cardinality(batches)
            )
        return dataset
    boundaries = [
        b for b in DEFAULT_BUCKET_BOUNDARIES if b < sequence_length
    ] + [sequence_length + 1]
    return dataset.bucket_by_sequence_length(
        element_length_func=lambda ids, *rest: tf.shape(ids)[0],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        drop_remainder=drop_remainder,
    )


def classification_dataset(
    texts,
    tokenizer,
    labels=None,
    *,
    sequence_length=128,
    batch_size=32,
    shuffle=False,
    seed=0,
    repeat=False,
    bucket=None,
    token_mask_rate=0.0,
):
    """Batches of encoded texts (and labels) for a BERT classifier.

    Args:
        texts: a list of str.
        tokenizer: a `keras_transformer.tokenizers.SubwordTokenizer`.
        labels: optional list of int class ids, one per text.
        sequence_length: the longest sequence, [CLS] and [SEP] included;
            longer texts are truncated.
        batch_size: examples per batch.
        shuffle: shuffle the examples (each pass in a new order).
        seed: the shuffle seed.
        repeat: repeat forever (for `fit` with `steps_per_epoch`).
        bucket: group examples of similar length; defaults to `shuffle`.
            Without it the batches keep the input order.
        token_mask_rate: share of the text's pieces replaced by `[MASK]`
            in every batch (a fresh draw each time, seeded by `seed`): a
            regularizer for training from little data. 0 (the default)
            keeps the text as it is; [CLS], [SEP] and padding are never
            replaced. Needs a tokenizer with a `[MASK]` piece.

    Returns:
        A `tf.data.Dataset` of `(features, labels)` (or `features` alone
        when `labels` is None), features being the dict of int32 [B, T]
        `token_ids`, `padding_mask` and `segment_ids`, labels int32 [B].

    Example:
    >>> from keras_transformer.data.bert import classification_dataset
    >>> dataset = classification_dataset(["a text"], tokenizer, [0],
    ...                                  batch_size=8)  # doctest: +SKIP
    """
    _check_sequence_length(sequence_length)
    _check_positive_int("batch_size", batch_size)
    texts = list(texts)
    if labels is not None:
        labels = list(labels)
        if len(labels) != len(texts):
            raise ValueError(
                "`labels` must have one label per text "
                f"({len(texts)} texts). Received: {len(labels)} labels"
            )
    if not texts:
        raise ValueError("`texts` is empty. Received: texts=[]")
    check_rate("token_mask_rate", token_mask_rate)
    mask_token_id = _mask_token_id(tokenizer) if token_mask_rate else None
    bucket = shuffle if bucket is None else bucket
    dataset = _encoded_examples(texts, tokenizer, sequence_length, labels)
    dataset = _shuffle_repeat_batch(
        dataset,
        len(texts),
        batch_size,
        sequence_length,
        bucket,
        shuffle=shuffle,
        repeat=repeat,
        seed=seed,
    )
    if token_mask_rate:
        unselectable = (0, tokenizer.start_id, tokenizer.end_id)

        def replace(index, ids):
            draw = tf.random.stateless_uniform(
                tf.shape(ids), tf.stack([tf.cast(seed, tf.int64), index])
            )
            chosen = _selectable(ids, unselectable) & (draw < token_mask_rate)
            return tf.where(chosen, tf.cast(mask_token_id, ids.dtype), ids)

        if labels is None:
            dataset = dataset.enumerate().map(
                replace, num_parallel_calls=tf.data.AUTOTUNE
            )
        else:
            dataset = dataset.enumerate().map(
                lambda index, item: (replace(index, item[0]), item[1]),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
    if labels is None:
        dataset = dataset.map(_features)
    else:
        dataset = dataset.map(lambda ids, y: (_features(ids), y))
    return dataset.prefetch(tf.data.AUTOTUNE)


def _selectable(token_ids, unselectable_ids):
    """bool [B, T]: True where the id is none of `unselectable_ids`."""
    selectable = tf.ones_like(token_ids, dtype=tf.bool)
    for special in unselectable_ids:
        selectable &= tf.not_equal(token_ids, special)
    return selectable


def _mask_token_id(tokenizer):
    """The tokenizer's `[MASK]` id, or a clear error."""
    try:
        return tokenizer.token_to_id(MASK_TOKEN)
    except ValueError:
        raise ValueError(
            f"The tokenizer has no {MASK_TOKEN} token; train it with "
            f"user_defined_symbols={USER_SYMBOLS}. Received: tokenizer "
            f"with {tokenizer.vocabulary_size} pieces"
        ) from None


def first_text_piece_id(tokenizer):
    """The smallest id above every special piece (`<...>` and [MASK]):
    random MLM replacements are drawn from this id up."""
    special_ids = [
        tokenizer.token_to_id(t)
        for t in tokenizer.get_vocabulary()
        if t.startswith("<") and t.endswith(">") or t in USER_SYMBOLS
    ]
    return max(special_ids) + 1
