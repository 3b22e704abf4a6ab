import keras
import numpy as np

from keras_transformer.layers import masks


def _np(x):
    return keras.ops.convert_to_numpy(x)


def test_causal_mask_values():
    np.testing.assert_array_equal(
        _np(masks.causal_mask(3))[0], np.tril(np.ones((3, 3), bool))
    )
    # Two queries at positions 2 and 3 of a 5-slot cache.
    expected = [[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]]
    np.testing.assert_array_equal(
        _np(masks.causal_mask(2, 5, start_index=2))[0], expected
    )


def test_merge_is_logical_and_of_all_masks():
    padding = np.array([[1, 1, 0]], bool)
    attention = np.array([[[1, 0, 1], [1, 1, 1], [0, 1, 1]]], bool)
    merged = _np(
        masks.merge_masks(3, 3, padding, attention, use_causal_mask=True)
    )
    expected = padding[:, None, :] & attention & np.tril(np.ones((3, 3), bool))
    np.testing.assert_array_equal(merged, expected)
    assert masks.merge_masks(3, 3) is None


def test_explicit_padding_mask_takes_priority_over_implicit():
    x = keras.layers.Embedding(10, 4, mask_zero=True)(np.array([[1, 0, 0]]))
    np.testing.assert_array_equal(
        _np(masks.resolve_padding_mask(x)), [[True, False, False]]
    )
    explicit = np.array([[True, True, False]])
    np.testing.assert_array_equal(
        _np(masks.resolve_padding_mask(x, explicit)), explicit
    )
    assert masks.resolve_padding_mask(np.zeros((1, 3, 4))) is None
