import keras
import numpy as np
import pytest
from keras_transformer.applications import bert
from keras_transformer.applications.presets import BERT_PRESETS, get_preset

VOCAB = 60
KWARGS = dict(
    vocabulary_size=VOCAB,
    num_layers=2,
    hidden_dim=16,
    num_heads=2,
    intermediate_dim=32,
    max_sequence_length=12,
)


def _inputs(ids, segments=None):
    ids = np.asarray(ids, "int32")
    return {
        "token_ids": ids,
        "padding_mask": (ids != 0).astype("int32"),
        "segment_ids": np.zeros_like(ids) if segments is None else segments,
    }


IDS = np.array([[2, 9, 7, 11, 3, 0, 0], [2, 5, 3, 0, 0, 0, 0]], "int32")


def _vocab_matrices(model):
    return [w for w in model.weights if tuple(w.shape) in ((VOCAB, 16),)]


def test_output_shapes_and_names():
    backbone = bert.bert_backbone(**KWARGS)
    assert set(backbone.input) == {"token_ids", "padding_mask", "segment_ids"}
    outputs = backbone(_inputs(IDS))
    assert tuple(outputs["sequence_output"].shape) == (2, 7, 16)
    assert tuple(outputs["pooled_output"].shape) == (2, 16)
    mlm = bert.bert_masked_lm(backbone)
    positions = np.array([[1, 2, 3], [1, 0, 0]], "int32")
    logits = mlm({**_inputs(IDS), "mask_positions": positions})
    assert tuple(logits.shape) == (2, 3, VOCAB)
    classifier = bert.bert_classifier(KWARGS, num_classes=4)
    assert tuple(classifier(_inputs(IDS)).shape) == (2, 4)
    names = {layer.name for layer in backbone.layers}
    assert {"transformer_layer_0", "transformer_layer_1"} <= names


def test_masked_lm_projection_is_tied_to_token_embeddings(tmp_path):
    mlm = bert.bert_masked_lm(KWARGS)
    embedding = mlm.get_layer(bert.EMBEDDING_LAYER)
    # One [V, D] matrix in the whole model: the token embeddings.
    matrices = _vocab_matrices(mlm)
    assert len(matrices) == 1
    assert matrices[0] is embedding.token_embeddings
    inputs = {**_inputs(IDS), "mask_positions": np.array([[1, 2], [1, 1]])}
    # Zero embeddings give zero logits: the projection reads that variable.
    before = keras.ops.convert_to_numpy(mlm(inputs))
    assert np.abs(before).max() > 0
    embedding.token_embeddings.assign(np.zeros((VOCAB, 16), "float32"))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(mlm(inputs)), 0.0, atol=1e-6
    )
    # Still tied after a `.keras` round trip.
    path = tmp_path / "mlm.keras"
    mlm.save(path)
    reloaded = keras.saving.load_model(path)
    matrices = _vocab_matrices(reloaded)
    assert len(matrices) == 1
    assert (
        matrices[0] is reloaded.get_layer(bert.EMBEDDING_LAYER).token_embeddings
    )


def test_mask_positions_gather_the_right_tokens():
    mlm = bert.bert_masked_lm(KWARGS)
    inputs = _inputs(IDS)
    both = mlm({**inputs, "mask_positions": np.array([[1, 3], [2, 1]])})
    one = mlm({**inputs, "mask_positions": np.array([[3], [1]])})
    np.testing.assert_allclose(both[:, 1:2], one, atol=1e-5)


def test_token_and_position_tables_start_at_bert_scale():
    backbone = bert.bert_backbone(**{**KWARGS, "hidden_dim": 64})
    embedding = backbone.get_layer("token_and_position_embedding")
    assert len(embedding.weights) == 2
    for variable in embedding.weights:
        std = float(np.std(keras.ops.convert_to_numpy(variable)))
        # TruncatedNormal(0.02) has a standard deviation of about 0.0176.
        assert 0.014 < std < 0.021, (variable.path, std)


def test_padding_does_not_change_real_outputs():
    backbone = bert.bert_backbone(**KWARGS)
    base = backbone(_inputs(IDS), training=False)
    # Other ids under the padding, and more padding columns.
    noisy = IDS.copy()
    noisy[IDS == 0] = 17
    noisy = np.concatenate([noisy, np.full((2, 3), 23, "int32")], axis=1)
    inputs = _inputs(noisy)
    inputs["padding_mask"] = np.pad(
        (IDS != 0).astype("int32"), [(0, 0), (0, 3)]
    )
    other = backbone(inputs, training=False)
    np.testing.assert_allclose(
        base["pooled_output"], other["pooled_output"], atol=1e-5
    )
    real = IDS != 0
    np.testing.assert_allclose(
        np.asarray(base["sequence_output"])[real],
        np.asarray(other["sequence_output"])[:, :7][real],
        atol=1e-5,
    )


def test_segments_change_the_output():
    backbone = bert.bert_backbone(**KWARGS)
    a = backbone(_inputs(IDS), training=False)["pooled_output"]
    b = backbone(_inputs(IDS, np.ones_like(IDS)), training=False)
    assert np.abs(np.asarray(a) - np.asarray(b["pooled_output"])).max() > 0


def test_classifier_loads_pretrained_backbone_weights():
    pretrained = bert.bert_masked_lm(KWARGS)
    classifier = bert.bert_classifier(KWARGS, num_classes=3)
    copied = bert.load_backbone_weights(classifier, pretrained)
    assert "token_and_position_embedding" in copied
    assert "transformer_layer_1" in copied
    assert "logits" not in copied and "pooled_dense" not in copied
    for name in copied:
        for a, b in zip(
            classifier.get_layer(name).weights,
            pretrained.get_layer(name).weights,
        ):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
            assert a is not b  # copied, not shared
    smaller = bert.bert_classifier(
        {**KWARGS, "hidden_dim": 8, "num_heads": 2}, num_classes=3
    )
    with pytest.raises(ValueError, match="same backbone arguments"):
        bert.load_backbone_weights(smaller, pretrained)


def test_layer_rate_multipliers_decay_from_the_head_down():
    classifier = bert.bert_classifier(KWARGS, num_classes=3)
    factors = bert.layer_rate_multipliers(classifier, 0.5)
    # One factor per trainable variable, keyed by its path.
    assert sorted(factors) == sorted(
        v.path for v in classifier.trainable_variables
    )
    for path, factor in factors.items():
        layer = path.split("/")[0]
        if layer in ("logits", "pooled_dense"):
            expected = 1.0
        elif layer == "transformer_layer_1":  # the last of 2 blocks
            expected = 0.5
        elif layer == "transformer_layer_0":
            expected = 0.25
        else:  # token, position and segment embeddings, their norm
            assert layer in bert.EMBEDDING_LAYERS, path
            expected = 0.125
        assert factor == expected, path
    # The masked-LM head sits above the encoder too.
    mlm_factors = bert.layer_rate_multipliers(bert.bert_masked_lm(KWARGS), 0.9)
    assert mlm_factors["mlm_dense/kernel"] == 1.0
    assert mlm_factors["embeddings_norm/gamma"] == pytest.approx(0.9**3)
    assert set(bert.layer_rate_multipliers(classifier, 1.0).values()) == {1.0}
    for bad in (0.0, 1.5, True, "0.8"):
        with pytest.raises(ValueError, match="decay"):
            bert.layer_rate_multipliers(classifier, bad)
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no BERT encoder blocks"):
        bert.layer_rate_multipliers(other, 0.8)


def test_ensemble_averages_member_probabilities(tmp_path):
    keras.utils.set_random_seed(3)
    members = [
        bert.bert_classifier(KWARGS, num_classes=3, pooling="mean"),
        bert.bert_classifier(
            {**KWARGS, "hidden_dim": 8, "num_layers": 1}, num_classes=3
        ),
    ]
    ensemble = bert.bert_ensemble(members)
    x = _inputs(IDS)
    expected = np.mean(
        [np.asarray(keras.ops.softmax(m(x, training=False))) for m in members],
        axis=0,
    )
    got = np.asarray(keras.ops.softmax(ensemble(x, training=False)))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    ensemble.save(tmp_path / "e.keras")
    restored = keras.saving.load_model(tmp_path / "e.keras", compile=False)
    np.testing.assert_allclose(
        np.asarray(keras.ops.softmax(restored(x, training=False))),
        expected,
        rtol=1e-5,
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="at least two"):
        bert.bert_ensemble(members[:1])
    with pytest.raises(ValueError, match="same number of classes"):
        bert.bert_ensemble(
            [members[0], bert.bert_classifier(KWARGS, num_classes=4)]
        )


def test_ngram_classifier_ignores_padding_and_round_trips(tmp_path):
    keras.utils.set_random_seed(4)
    model = bert.ngram_classifier(VOCAB, 3, buckets=64, embedding_dim=8)
    logits = np.asarray(model(_inputs(IDS)))
    assert logits.shape == (2, 3) and logits.dtype == np.float32
    # More padding changes nothing; another token does.
    padded = np.pad(IDS, ((0, 0), (0, 3)))
    np.testing.assert_allclose(
        np.asarray(model(_inputs(padded))), logits, rtol=1e-6, atol=1e-6
    )
    changed = IDS.copy()
    changed[0, 2] = 30
    assert not np.allclose(np.asarray(model(_inputs(changed)))[0], logits[0])
    model.save(tmp_path / "n.keras")
    restored = keras.saving.load_model(tmp_path / "n.keras", compile=False)
    np.testing.assert_allclose(
        np.asarray(restored(_inputs(IDS))), logits, rtol=1e-6, atol=1e-6
    )
    # It takes the BERT inputs, so it joins an ensemble with an encoder.
    ensemble = bert.bert_ensemble([model, bert.bert_classifier(KWARGS, 3)])
    assert tuple(ensemble(_inputs(IDS)).shape) == (2, 3)
    with pytest.raises(ValueError, match="num_classes"):
        bert.ngram_classifier(VOCAB, 1)


def test_mean_pooling_is_the_masked_mean_of_the_final_states():
    keras.utils.set_random_seed(1)
    classifier = bert.bert_classifier(
        KWARGS, num_classes=3, dropout=0.0, pooling="mean"
    )
    # The pooled vector feeds the logits layer; read it with a probe model.
    pooled = keras.Model(classifier.input, classifier.get_layer("logits").input)
    states = keras.Model(
        classifier.input,
        classifier.get_layer("transformer_layer_1").output,
    )
    inputs = _inputs(IDS)
    got = np.asarray(pooled(inputs, training=False))
    hidden = np.asarray(states(inputs, training=False))
    real = (IDS != 0)[..., None]
    expected = (hidden * real).sum(1) / real.sum(1)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # Extra padding changes nothing.
    padded = np.pad(IDS, [(0, 0), (0, 3)])
    np.testing.assert_allclose(
        np.asarray(classifier(_inputs(padded), training=False)),
        np.asarray(classifier(inputs, training=False)),
        atol=1e-5,
    )
    # The [CLS] pooler is not part of this model.
    assert "pooled_dense" not in [layer.name for layer in classifier.layers]


@pytest.mark.parametrize(
    "kind", ["backbone", "masked_lm", "classifier", "classifier_mean"]
)
def test_keras_round_trip(kind, tmp_path):
    if kind == "backbone":
        model = bert.bert_backbone(**KWARGS)
        inputs = _inputs(IDS)
    elif kind == "masked_lm":
        model = bert.bert_masked_lm(KWARGS)
        inputs = {**_inputs(IDS), "mask_positions": np.array([[1], [2]])}
    elif kind == "classifier":
        model = bert.bert_classifier(KWARGS, num_classes=3)
        inputs = _inputs(IDS)
    else:
        model = bert.bert_classifier(KWARGS, num_classes=3, pooling="mean")
        inputs = _inputs(IDS)
    path = tmp_path / f"{kind}.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    expected = model.predict(inputs, verbose=0)
    actual = reloaded.predict(inputs, verbose=0)
    if isinstance(expected, dict):
        for key in expected:
            np.testing.assert_allclose(expected[key], actual[key], atol=1e-6)
    else:
        np.testing.assert_allclose(expected, actual, atol=1e-6)


def test_classifier_trains_one_step():
    model = bert.bert_classifier(KWARGS, num_classes=2)
    model.compile(
        "adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    before = [np.asarray(w).copy() for w in model.trainable_weights]
    model.fit(_inputs(IDS), np.array([0, 1]), epochs=1, verbose=0)
    after = [np.asarray(w) for w in model.trainable_weights]
    assert any(np.abs(a - b).max() > 0 for a, b in zip(before, after))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({**KWARGS, "num_heads": 3}, "num_heads"),
        ({**KWARGS, "num_layers": 0}, "num_layers"),
        ({**KWARGS, "dropout": 1.0}, "dropout"),
    ],
)
def test_bad_backbone_arguments(kwargs, match):
    with pytest.raises(ValueError, match=f"Received: {match}="):
        bert.bert_backbone(**kwargs)


def test_bad_classifier_arguments():
    with pytest.raises(ValueError, match="Received: num_classes=1"):
        bert.bert_classifier(KWARGS, num_classes=1)
    with pytest.raises(ValueError, match="Received: pooling='max'"):
        bert.bert_classifier(KWARGS, num_classes=2, pooling="max")
    with pytest.raises(ValueError, match="Expected a `bert_backbone`"):
        bert.bert_masked_lm("small")


def test_presets():
    assert set(BERT_PRESETS) >= {"tiny", "mini", "small", "base"}
    base = get_preset("bert", "base")
    assert (base["num_layers"], base["hidden_dim"], base["num_heads"]) == (
        12,
        768,
        12,
    )
    assert base["intermediate_dim"] == 3072
    assert base["max_sequence_length"] == 512
    # The count written in the presets comment.
    tiny = bert.bert_backbone(
        vocabulary_size=8000, **get_preset("bert", "tiny")
    )
    assert tiny.count_params() == 624_576
