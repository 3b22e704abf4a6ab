import keras
import numpy as np
import pytest

from keras_transformer.layers import HashedNgrams
from keras_transformer.layers import hashed_ngrams as module


def _reference(ids, orders, vocabulary_size, buckets):
    """Feature ids by the documented rolling hash, row by row in Python."""
    rows = []
    for row in ids:
        features, mask = [], []
        offset = 0
        for n in orders:
            for start in range(len(row) - n + 1):
                gram = row[start : start + n]
                if n == 1:
                    features.append(int(gram[0]))
                else:
                    h = int(gram[0])
                    for x in gram[1:]:
                        h = (h % module._MODULUS) * module._MULTIPLIER + int(x)
                    features.append(offset + h % buckets)
                mask.append(bool(all(g != 0 for g in gram)))
            offset += vocabulary_size if n == 1 else buckets
        rows.append((features, mask))
    return rows


def test_features_follow_the_hash_and_mask_partial_ngrams():
    ids = np.array([[2, 17, 9, 3, 0, 0], [2, 40, 41, 42, 43, 3]], "int32")
    layer = HashedNgrams(50, orders=(1, 2, 3), buckets=97)
    features, mask = layer(ids, ids != 0)
    features, mask = np.asarray(features), np.asarray(mask)
    assert features.shape == mask.shape == (2, 6 + 5 + 4)
    for (want_f, want_m), got_f, got_m in zip(
        _reference(ids, (1, 2, 3), 50, 97), features, mask
    ):
        np.testing.assert_array_equal(got_m, want_m)
        # Features of real n-grams are exact; padded ones are ignored.
        np.testing.assert_array_equal(
            got_f[np.array(want_m)], np.array(want_f)[np.array(want_m)]
        )
    assert features.min() >= 0 and features.max() < layer.num_features
    assert layer.num_features == 50 + 97 + 97
    # Order matters: (17, 9) and (9, 17) are different bigrams.
    a, _ = layer(np.array([[17, 9]]), np.ones((1, 2)))
    b, _ = layer(np.array([[9, 17]]), np.ones((1, 2)))
    assert np.asarray(a)[0, 2] != np.asarray(b)[0, 2]


def test_rows_shorter_than_the_order_and_large_ids_stay_in_range():
    layer = HashedNgrams(module._MAX_ID, orders=(1, 4), buckets=1000)
    ids = np.array([[module._MAX_ID - 1, module._MAX_ID - 2]], "int32")
    features, mask = layer(ids, np.ones_like(ids))
    assert np.asarray(features).shape == (1, 2)  # no 4-grams in 2 tokens
    big = np.full((1, 6), module._MAX_ID - 1, "int32")
    features, _ = layer(big, np.ones_like(big))
    features = np.asarray(features)
    assert features.shape == (1, 6 + 3)
    tail = features[0, 6:]
    assert (tail >= module._MAX_ID).all()  # no int32 overflow
    assert (tail < layer.num_features).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(vocabulary_size=0), "vocabulary_size"),
        (dict(vocabulary_size=10, buckets=0), "buckets"),
        (dict(vocabulary_size=10, orders=()), "orders"),
        (dict(vocabulary_size=10, orders=(1, 1)), "orders"),
        (dict(vocabulary_size=10, orders=(0,)), "orders"),
        (dict(vocabulary_size=2**31), "at most"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HashedNgrams(**kwargs)


def test_config_round_trip():
    layer = HashedNgrams(30, orders=(2, 1), buckets=11, name="grams")
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert restored.orders == (1, 2) and restored.buckets == 11
    assert restored.num_features == layer.num_features == 41
