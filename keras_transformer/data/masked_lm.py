"""tf.data pipelines for masked-LM pretraining of the BERT-style encoder.

Masking (`mask_tokens`) runs in the pipeline with stateless random ops: a
fixed seed gives the same masks, batch by batch. Sequences are encoded as in
`keras_transformer.data.bert` (`[CLS] pieces... [SEP]`, padded with 0).
"""

import tensorflow as tf

from keras_transformer.data.bert import (
    _check_positive_int,
    _check_sequence_length,
    _encoded_examples,
    _features,
    _mask_token_id,
    _selectable,
    _shuffle_repeat_batch,
    first_text_piece_id,
)


def default_max_predictions(sequence_length, mask_rate=0.15):
    """MLM prediction slots for rows of `sequence_length` tokens.

    `mask_rate` x length with headroom, so that the cap rarely binds (for
    32 tokens and 15%: 10 slots, exceeded by about 0.3% of full rows).

    Args:
        sequence_length: int or int32 scalar tensor, the batch width T.
        mask_rate: the selection probability.

    Returns:
        The slot count P, of the type of `sequence_length`.
    """
    if isinstance(sequence_length, int):
        return int(-(-1.5 * mask_rate * sequence_length // 1)) + 2
    width = tf.cast(sequence_length, tf.float32)
    return tf.cast(tf.math.ceil(1.5 * mask_rate * width), tf.int32) + 2


def mask_tokens(
    token_ids,
    seed,
    *,
    mask_token_id,
    vocabulary_size,
    mask_rate=0.15,
    max_predictions=20,
    unselectable_ids=(0, 2, 3),
    random_token_min_id=4,
    mask_token_rate=0.8,
    random_token_rate=0.1,
):
    """Chooses and corrupts tokens for masked-LM training (BERT's recipe).

    Each selectable token (not padding, [CLS], [SEP] or another id in
    `unselectable_ids`) is selected with probability `mask_rate`, at most
    `max_predictions` per row. A selected token is replaced by
    `mask_token_id` with probability `mask_token_rate`, by a random id in
    `[random_token_min_id, vocabulary_size)` with probability
    `random_token_rate`, and otherwise kept.

    Args:
        token_ids: int [B, T], padded with 0.
        seed: int32 [2] seed of the stateless random ops.
        mask_token_id: the [MASK] id.
        vocabulary_size: V, the exclusive upper bound of random ids.
        mask_rate: the selection probability (0.15 in BERT).
        max_predictions: P, the prediction slots per row (an int or an
            int32 scalar tensor).
        unselectable_ids: ids never selected.
        random_token_min_id: the smallest random replacement id (ids below
            are special tokens).
        mask_token_rate: share of selected tokens replaced by [MASK].
        random_token_rate: share replaced by a random token.

    Returns:
        A tuple `(masked_ids, mask_positions, mask_ids, mask_weights)`:
        the corrupted ids int32 [B, T], the selected positions int32 [B, P],
        the original ids there int32 [B, P] (0 in unused slots) and float32
        [B, P] weights (1 for a used slot).

    Example:
    >>> ids = tf.constant([[2, 10, 11, 12, 3, 0]])
    >>> masked, positions, labels, weights = mask_tokens(
    ...     ids, tf.constant([1, 2]), mask_token_id=4, vocabulary_size=50)
    """
    if not 0.0 < mask_rate <= 1.0:
        raise ValueError(
            f"`mask_rate` must be in (0, 1]. Received: mask_rate={mask_rate}"
        )
    if (
        mask_token_rate < 0
        or random_token_rate < 0
        or (mask_token_rate + random_token_rate > 1.0)
    ):
        raise ValueError(
            "`mask_token_rate` and `random_token_rate` must be "
            "non-negative and sum to at most 1. Received: "
            f"mask_token_rate={mask_token_rate}, "
            f"random_token_rate={random_token_rate}"
        )
    if isinstance(max_predictions, (int, float)):
        _check_positive_int("max_predictions", max_predictions)
    token_ids = tf.cast(token_ids, tf.int32)
    seeds = tf.random.experimental.stateless_split(
        tf.cast(seed, tf.int64), num=3
    )
    shape = tf.shape(token_ids)
    batch, length = shape[0], shape[1]

    selectable = _selectable(token_ids, unselectable_ids)
    draw = tf.random.stateless_uniform(shape, seeds[0])  # [B, T]
    selected = selectable & (draw < mask_rate)
    # Keep at most P selected positions per row (a uniform choice among
    # them, since the draws are i.i.d.): scores of selected tokens are > 0.
    score = tf.where(selected, 1.0 - draw, -1.0)
    k = tf.minimum(length, max_predictions)
    values, positions = tf.math.top_k(score, k=k)  # [B, k]
    used = values > 0.0
    pad = tf.reshape(tf.stack([0, 0, 0, max_predictions - k]), [2, 2])
    used = tf.pad(used, pad)  # [B, P]
    positions = tf.pad(positions, pad) * tf.cast(used, tf.int32)
    # Ascending positions in the used slots, unused slots last.
    order = tf.argsort(
        tf.where(used, positions, length + max_predictions), axis=1
    )
    positions = tf.gather(positions, order, batch_dims=1)
    used = tf.gather(used, order, batch_dims=1)
    original = tf.gather(token_ids, positions, batch_dims=1)  # [B, P]
    mask_ids = original * tf.cast(used, tf.int32)

    choice = tf.random.stateless_uniform(
        tf.shape(positions), seeds[1]
    )  # [B, P]
    random_ids = tf.random.stateless_uniform(
        tf.shape(positions),
        seeds[2],
        minval=random_token_min_id,
        maxval=vocabulary_size,
        dtype=tf.int32,
    )
    replacement = tf.where(
        choice < mask_token_rate,
        tf.fill(tf.shape(positions), tf.constant(mask_token_id, tf.int32)),
        tf.where(
            choice < mask_token_rate + random_token_rate,
            random_ids,
            original,
        ),
    )
    rows = tf.broadcast_to(
        tf.range(batch)[:, None], tf.shape(positions)
    )  # [B, P]
    index = tf.stack([rows, positions], axis=-1)  # [B, P, 2]
    masked = tf.tensor_scatter_nd_update(
        token_ids,
        tf.boolean_mask(index, used),
        tf.boolean_mask(replacement, used),
    )
    return masked, positions, mask_ids, tf.cast(used, tf.float32)


def masked_lm_dataset(
    texts,
    tokenizer,
    *,
    sequence_length=128,
    batch_size=32,
    mask_rate=0.15,
    max_predictions=None,
    shuffle=False,
    seed=0,
    repeat=False,
    bucket=None,
):
    """Batches for masked-LM pretraining, masked in the pipeline.

    Every text (a line, e.g. a verse) is one example. Masking follows
    `mask_tokens` with a per-batch seed derived from `seed`, so a fixed seed
    gives the same batches; with `repeat`, every pass gets new masks.

    Args:
        texts: a list of str.
        tokenizer: a `SubwordTokenizer` whose vocabulary holds `[MASK]`
            (train it with `user_defined_symbols=USER_SYMBOLS`).
        sequence_length: the longest sequence, [CLS] and [SEP] included.
        batch_size: examples per batch.
        mask_rate: share of tokens to predict (0.15 in BERT).
        max_predictions: prediction slots per row; by default each batch
            gets `default_max_predictions(T, mask_rate)` for its width T,
            so short batches do not pay for unused slots in the MLM head.
        shuffle: shuffle the examples.
        seed: seed of the shuffle and of the masks.
        repeat: repeat forever.
        bucket: group examples of similar length; defaults to `shuffle`.

    Returns:
        A `tf.data.Dataset` of `(features, mask_ids, mask_weights)`:
        features holds `token_ids`, `padding_mask`, `segment_ids` [B, T] and
        `mask_positions` [B, P]; `mask_ids` int32 [B, P] are the original
        ids to predict and `mask_weights` float32 [B, P] mark used slots.

    Example:
    >>> dataset = masked_lm_dataset(lines, tokenizer,
    ...                             batch_size=64)  # doctest: +SKIP
    """
    _check_sequence_length(sequence_length)
    _check_positive_int("batch_size", batch_size)
    texts = list(texts)
    if not texts:
        raise ValueError("`texts` is empty. Received: texts=[]")
    mask_token_id = _mask_token_id(tokenizer)
    random_token_min_id = first_text_piece_id(tokenizer)
    bucket = shuffle if bucket is None else bucket
    dataset = _encoded_examples(texts, tokenizer, sequence_length)
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

    def mask(index, ids):
        masked, positions, mask_ids, weights = mask_tokens(
            ids,
            tf.stack([tf.cast(seed, tf.int64), index]),
            mask_token_id=mask_token_id,
            vocabulary_size=tokenizer.vocabulary_size,
            mask_rate=mask_rate,
            max_predictions=(
                default_max_predictions(tf.shape(ids)[1], mask_rate)
                if max_predictions is None
                else max_predictions
            ),
            unselectable_ids=(0, tokenizer.start_id, tokenizer.end_id),
            random_token_min_id=random_token_min_id,
        )
        features = _features(ids)
        features["token_ids"] = masked
        features["mask_positions"] = positions
        return features, mask_ids, weights

    dataset = dataset.enumerate().map(mask, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
