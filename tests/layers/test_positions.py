import json
import math
import zipfile

import keras
import numpy as np
import pytest

from keras_transformer.layers import (
    PositionEmbedding,
    SinusoidalPositionEncoding,
    TokenAndPositionEmbedding,
)
from tests.test_case import check_layer


def _paper_encoding(length, dim, start=0, wavelength=10000.0):
    table = np.zeros((length, dim))
    for p in range(length):
        for i in range(dim // 2 + dim % 2):
            angle = (p + start) / wavelength ** (2 * i / dim)
            table[p, 2 * i] = math.sin(angle)
            if 2 * i + 1 < dim:
                table[p, 2 * i + 1] = math.cos(angle)
    return table


def test_sinusoidal_shared_checks(tmp_path):
    check_layer(
        SinusoidalPositionEncoding,
        {"max_wavelength": 10000},
        {"inputs": np.zeros((2, 6, 8), "float32")},
        (2, 6, 8),
        tmp_path,
    )


@pytest.mark.parametrize("dim", [8, 7])
def test_sinusoidal_golden_values(dim):
    layer = SinusoidalPositionEncoding()
    out = keras.ops.convert_to_numpy(layer(np.zeros((1, 11, dim), "float32")))
    np.testing.assert_allclose(out[0], _paper_encoding(11, dim), atol=1e-5)
    # Position 0: sin(0) = 0 on even features, cos(0) = 1 on odd ones.
    np.testing.assert_allclose(out[0, 0, 0::2], 0.0, atol=1e-7)
    np.testing.assert_allclose(out[0, 0, 1::2], 1.0, atol=1e-7)


def test_sinusoidal_start_index_continues_positions():
    layer = SinusoidalPositionEncoding()
    full = layer(np.zeros((1, 10, 8), "float32"))
    step = layer(np.zeros((1, 3, 8), "float32"), start_index=7)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(step)[0],
        keras.ops.convert_to_numpy(full)[0, 7:10],
        atol=1e-6,
    )


def test_sinusoidal_bad_wavelength():
    with pytest.raises(ValueError, match="max_wavelength=0"):
        SinusoidalPositionEncoding(max_wavelength=0)


def test_position_embedding_shared_checks(tmp_path):
    check_layer(
        PositionEmbedding,
        {"sequence_length": 10},
        {"inputs": np.random.rand(2, 6, 8).astype("float32")},
        (2, 6, 8),
        tmp_path,
    )


def test_position_embedding_rows_and_start_index():
    layer = PositionEmbedding(sequence_length=10)
    out = keras.ops.convert_to_numpy(
        layer(np.zeros((2, 4, 8), "float32"), start_index=3)
    )
    table = keras.ops.convert_to_numpy(layer.position_embeddings)
    np.testing.assert_allclose(out[0], table[3:7])
    np.testing.assert_allclose(out[1], table[3:7])


def test_position_embedding_too_long_is_a_clear_error():
    layer = PositionEmbedding(sequence_length=4)
    with pytest.raises(ValueError, match="longer than the layer's"):
        layer(np.zeros((1, 5, 8), "float32"))
    with pytest.raises(ValueError, match="sequence_length=-1"):
        PositionEmbedding(sequence_length=-1)


@pytest.mark.parametrize("position", ["learned", "sinusoidal"])
def test_token_and_position_shared_checks(tmp_path, position):
    check_layer(
        TokenAndPositionEmbedding,
        {
            "vocabulary_size": 50,
            "sequence_length": 12,
            "hidden_dim": 16,
            "position": position,
            "scale_embeddings": True,
            "position_initializer": "random_normal",
        },
        {"inputs": np.random.randint(1, 50, size=(2, 7)).astype("int32")},
        (2, 7, 16),
        tmp_path,
    )


def test_token_and_position_mask_and_values():
    layer = TokenAndPositionEmbedding(
        50, 12, 16, position="sinusoidal", scale_embeddings=True
    )
    ids = np.array([[4, 9, 0, 0]], "int32")
    out = layer(ids)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(out._keras_mask), [[1, 1, 0, 0]]
    )
    table = keras.ops.convert_to_numpy(layer.token_embeddings)
    expected = table[ids[0]] * 4.0 + _paper_encoding(4, 16)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(out)[0], expected, atol=1e-5
    )


def test_learned_positions_use_the_position_initializer():
    layer = TokenAndPositionEmbedding(
        50, 12, 16, position_initializer="zeros", mask_zero=False
    )
    ids = np.array([[4, 9, 0, 7]], "int32")
    out = keras.ops.convert_to_numpy(layer(ids))
    table = keras.ops.convert_to_numpy(layer.token_embeddings)
    np.testing.assert_allclose(out[0], table[ids[0]], atol=1e-7)


def test_token_and_position_reverse_is_tied():
    layer = TokenAndPositionEmbedding(50, 12, 16)
    hidden = layer(np.array([[3, 4, 5]], "int32"))
    logits = keras.ops.convert_to_numpy(layer(hidden, reverse=True))
    table = keras.ops.convert_to_numpy(layer.token_embeddings)
    np.testing.assert_allclose(
        logits, keras.ops.convert_to_numpy(hidden) @ table.T, atol=1e-5
    )
    assert getattr(layer(hidden, reverse=True), "_keras_mask", None) is None


def test_token_and_position_bad_args():
    with pytest.raises(ValueError, match="position='rotary'"):
        TokenAndPositionEmbedding(50, 12, 16, position="rotary")
    with pytest.raises(ValueError, match="dropout=-0.1"):
        TokenAndPositionEmbedding(50, 12, 16, dropout=-0.1)
    with pytest.raises(ValueError, match="vocabulary_size=0"):
        TokenAndPositionEmbedding(0, 12, 16)


def test_token_and_position_old_embedding_dim_warns_and_matches():
    new = TokenAndPositionEmbedding(50, 12, hidden_dim=16, name="embed")
    with pytest.warns(DeprecationWarning, match="embedding_dim"):
        old = TokenAndPositionEmbedding(50, 12, embedding_dim=16, name="embed")
    assert old.hidden_dim == 16
    assert old.get_config() == new.get_config()
    assert "embedding_dim" not in new.get_config()
    # Positional calls are unchanged.
    assert TokenAndPositionEmbedding(50, 12, 16).hidden_dim == 16


def test_token_and_position_config_with_the_old_name_loads():
    config = TokenAndPositionEmbedding(50, 12, 16, name="embed").get_config()
    old_config = dict(config)
    old_config["embedding_dim"] = old_config.pop("hidden_dim")
    with pytest.warns(DeprecationWarning, match="embedding_dim"):
        revived = TokenAndPositionEmbedding.from_config(old_config)
    assert revived.get_config() == config
    serialized = keras.saving.serialize_keras_object(revived)
    serialized["config"] = old_config
    with pytest.warns(DeprecationWarning, match="embedding_dim"):
        revived = keras.saving.deserialize_keras_object(serialized)
    assert revived.get_config() == config


def test_token_and_position_keras_file_with_the_old_name_loads(tmp_path):
    ids = keras.Input((None,), dtype="int32")
    layer = TokenAndPositionEmbedding(50, 12, 16, name="embed")
    model = keras.Model(ids, layer(ids))
    tokens = np.array([[4, 9, 1]], "int32")
    expected = keras.ops.convert_to_numpy(model(tokens))
    path = tmp_path / "new.keras"
    model.save(path)
    # Rewrite the saved config as an older version wrote it.
    old_path = tmp_path / "old.keras"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(old_path, "w") as out:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "config.json":
                text = data.decode("utf-8")
                assert '"hidden_dim": 16' in text
                data = text.replace('"hidden_dim"', '"embedding_dim"').encode()
                (saved,) = [
                    layer["config"]
                    for layer in json.loads(data)["config"]["layers"]
                    if layer["config"]["name"] == "embed"
                ]
                assert (
                    "hidden_dim" not in saved and saved["embedding_dim"] == 16
                )
            out.writestr(item, data)
    with pytest.warns(DeprecationWarning, match="embedding_dim"):
        reloaded = keras.saving.load_model(old_path)
    assert reloaded.get_layer("embed").hidden_dim == 16
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(reloaded(tokens)), expected, atol=1e-6
    )


def test_token_and_position_hidden_dim_errors_name_the_argument():
    with pytest.raises(ValueError, match="Received: hidden_dim=None"):
        TokenAndPositionEmbedding(50, 12)
    with pytest.raises(ValueError, match="Received: hidden_dim=0"):
        TokenAndPositionEmbedding(50, 12, 0)
    with pytest.raises(ValueError, match="not both"):
        TokenAndPositionEmbedding(50, 12, hidden_dim=16, embedding_dim=16)
