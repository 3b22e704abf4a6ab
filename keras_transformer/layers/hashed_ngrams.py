"""Hashed n-grams of token ids, for bag-of-n-grams models."""

import keras
from keras import ops

from keras_transformer.layers._utils import check_positive_int

# Rolling hash h = (h mod _MODULUS) * _MULTIPLIER + id stays below 2**31
# for ids below _MAX_ID, so int32 suffices on every backend.
_MULTIPLIER = 40503
_MODULUS = 52879
_MAX_ID = 2**31 - 1 - (_MODULUS - 1) * _MULTIPLIER


@keras.saving.register_keras_serializable(package="keras_transformer")
class HashedNgrams(keras.layers.Layer):
    """Feature ids of the n-grams of a padded batch of token ids.

    Order 1 keeps each id as it is (features `0 .. vocabulary_size - 1`);
    each higher order n hashes every run of n consecutive real tokens into
    `buckets` features of its own (offset after the lower orders). The
    result feeds an `Embedding` of `num_features` rows: a fastText-style
    bag of n-grams (Joulin et al., "Bag of Tricks for Efficient Text
    Classification", 2016).

    Args:
        vocabulary_size: int, the number of token ids (at most about 5.7
            million, so the rolling hash fits in int32).
        orders: tuple of distinct positive ints, default `(1, 2)`. The
            n-gram orders.
        buckets: int, default `2**18`. Hash buckets per order above 1.
        **kwargs: standard `keras.layers.Layer` arguments (`name`,
            `dtype`, ...).

    Call arguments:
        token_ids: int tensor [B, T].
        padding_mask: bool or int tensor [B, T], True/1 for real tokens.

    Returns:
        `(features, mask)`: int32 [B, F] feature ids and bool [B, F], with F
        the sum over orders n of T - n + 1; an n-gram is real (mask true)
        when all its tokens are.

    Example:
    >>> import numpy as np
    >>> import keras
    >>> import keras_transformer
    >>> layer = keras_transformer.layers.HashedNgrams(
    ...     10, orders=(1, 2), buckets=100)
    >>> ids = np.array([[2, 5, 3, 0]])
    >>> features, mask = layer(ids, ids != 0)
    >>> tuple(features.shape), layer.num_features
    ((1, 7), 110)
    >>> keras.ops.convert_to_numpy(mask).astype(int).tolist()
    [[1, 1, 1, 0, 1, 1, 0]]
    """

    def __init__(self, vocabulary_size, orders=(1, 2), buckets=2**18, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("vocabulary_size", vocabulary_size)
        check_positive_int("buckets", buckets)
        if vocabulary_size > _MAX_ID:
            raise ValueError(
                f"`vocabulary_size` must be at most {_MAX_ID} (int32 "
                f"hashing). Received: vocabulary_size={vocabulary_size}"
            )
        orders = tuple(orders)
        if (
            not orders
            or len(set(orders)) != len(orders)
            or any(
                isinstance(n, bool) or not isinstance(n, int) or n < 1
                for n in orders
            )
        ):
            raise ValueError(
                "`orders` must be distinct positive ints, e.g. (1, 2). "
                f"Received: orders={orders!r}"
            )
        self.vocabulary_size = vocabulary_size
        self.orders = tuple(sorted(orders))
        self.buckets = buckets
        # The number of feature ids, rows of the embedding that follows.
        self.num_features = sum(
            vocabulary_size if n == 1 else buckets for n in self.orders
        )

    def call(self, token_ids, padding_mask):
        ids = ops.cast(token_ids, "int32")  # [B, T]
        real = ops.cast(padding_mask, "bool")  # [B, T]
        length = ops.shape(ids)[1]
        features, masks = [], []
        offset = 0
        for n in self.orders:
            width = length - n + 1  # n-grams per row
            # Rows shorter than n have none (a static length is an int).
            width = (
                max(width, 0)
                if isinstance(width, int)
                else ops.maximum(width, 0)
            )
            if n == 1:
                features.append(ids)
                masks.append(real)
                offset += self.vocabulary_size
                continue
            # Windows [B, T - n + 1] of each position k of the n-gram.
            h = ids[:, 0:width]
            ok = real[:, 0:width]
            for k in range(1, n):
                step = ids[:, k : k + width]
                h = (h % _MODULUS) * _MULTIPLIER + step
                ok = ops.logical_and(ok, real[:, k : k + width])
            features.append(offset + h % self.buckets)
            masks.append(ok)
            offset += self.buckets
        return ops.concatenate(features, axis=1), ops.concatenate(masks, axis=1)

    def compute_output_spec(self, token_ids, padding_mask):
        batch, length = token_ids.shape
        width = None
        if length is not None:
            width = sum(max(length - n + 1, 0) for n in self.orders)
        return (
            keras.KerasTensor((batch, width), dtype="int32"),
            keras.KerasTensor((batch, width), dtype="bool"),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            vocabulary_size=self.vocabulary_size,
            orders=list(self.orders),
            buckets=self.buckets,
        )
        return config
