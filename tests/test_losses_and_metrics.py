import keras
import numpy as np
import pytest

from keras_transformer.losses import MaskedSparseCategoricalCrossentropy
from keras_transformer.metrics import (
    MaskedAccuracy,
    Perplexity,
    corpus_bleu,
)


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _batch(seed=0):
    rng = np.random.RandomState(seed)
    labels = np.array([[3, 1, 0, 0], [2, 4, 1, 3]])
    logits = rng.normal(size=(2, 4, 5)).astype("float32")
    return labels, logits


def test_loss_is_mean_over_real_tokens():
    labels, logits = _batch()
    loss = float(MaskedSparseCategoricalCrossentropy()(labels, logits))
    logp = _log_softmax(logits)
    nll = [
        -logp[b, t, labels[b, t]]
        for b in range(2)
        for t in range(4)
        if labels[b, t] != 0
    ]
    np.testing.assert_allclose(loss, np.mean(nll), rtol=1e-5)


def test_loss_ignores_padding_logits():
    labels, logits = _batch()
    changed = logits.copy()
    changed[0, 2:] = 1000.0
    loss = MaskedSparseCategoricalCrossentropy(label_smoothing=0.1)
    np.testing.assert_allclose(
        float(loss(labels, logits)), float(loss(labels, changed)), rtol=1e-6
    )


def test_label_smoothing_value():
    labels, logits = _batch(1)
    eps = 0.1
    loss = float(MaskedSparseCategoricalCrossentropy(eps)(labels, logits))
    logp = _log_softmax(logits)
    values = [
        -(1 - eps) * logp[b, t, labels[b, t]] - eps * logp[b, t].mean()
        for b in range(2)
        for t in range(4)
        if labels[b, t] != 0
    ]
    np.testing.assert_allclose(loss, np.mean(values), rtol=1e-5)


def test_loss_config_and_errors():
    loss = MaskedSparseCategoricalCrossentropy(0.2, ignore_index=-1)
    revived = keras.losses.deserialize(keras.losses.serialize(loss))
    assert revived.get_config() == loss.get_config()
    with pytest.raises(ValueError, match="label_smoothing=1.5"):
        MaskedSparseCategoricalCrossentropy(1.5)


def test_masked_accuracy_accumulates_tokens():
    metric = MaskedAccuracy()
    labels, logits = _batch()
    predicted = logits.argmax(-1)
    metric.update_state(labels, logits)
    real = labels != 0
    expected = (predicted == labels)[real].mean()
    np.testing.assert_allclose(float(metric.result()), expected, rtol=1e-6)
    # A second batch with 1 real token, correct: weight per token.
    one_hot = np.zeros((1, 2, 5), "float32")
    one_hot[0, 0, 2] = 1.0
    metric.update_state(np.array([[2, 0]]), one_hot)
    total = (predicted == labels)[real].sum() + 1
    np.testing.assert_allclose(
        float(metric.result()), total / (real.sum() + 1), rtol=1e-6
    )


def test_perplexity_is_token_weighted():
    metric = Perplexity()
    labels, logits = _batch()
    logp = _log_softmax(logits)
    metric.update_state(labels[:1], logits[:1])
    metric.update_state(labels[1:], logits[1:])
    nll = [
        -logp[b, t, labels[b, t]]
        for b in range(2)
        for t in range(4)
        if labels[b, t] != 0
    ]
    np.testing.assert_allclose(
        float(metric.result()), np.exp(np.mean(nll)), rtol=1e-5
    )
    metric.reset_state()
    metric.update_state(np.array([[1, 2]]), np.zeros((1, 2, 7), "float32"))
    np.testing.assert_allclose(float(metric.result()), 7.0, rtol=1e-5)


def test_metrics_in_compile_and_serialization():
    for metric in (MaskedAccuracy(), Perplexity()):
        revived = keras.metrics.deserialize(keras.metrics.serialize(metric))
        assert revived.get_config() == metric.get_config()


def test_corpus_bleu():
    perfect = corpus_bleu(
        ["the cat sat on the mat"], ["the cat sat on the mat"]
    )
    assert perfect["bleu"] == pytest.approx(100.0)
    worse = corpus_bleu(["a dog ran"], ["the cat sat on the mat"])
    assert worse["bleu"] < 5 and worse["chrf"] < perfect["chrf"]
    with pytest.raises(ValueError, match="same length"):
        corpus_bleu(["a"], [])


def _two_batches():
    """Two batches padded to different lengths (4 and 2 tokens)."""
    labels, logits = _batch()
    short = np.array([[2, 0], [1, 4]])
    short_logits = np.random.RandomState(5).normal(size=(2, 2, 5))
    return [(labels, logits), (short, short_logits.astype("float32"))]


def test_perplexity_equals_keras_hub_with_masking():
    import keras_hub

    ours = Perplexity()
    theirs = keras_hub.metrics.Perplexity(from_logits=True, mask_token_id=0)
    row_weights = np.array([0.5, 2.0], "float32")
    ours_weighted = Perplexity()
    theirs_weighted = keras_hub.metrics.Perplexity(
        from_logits=True, mask_token_id=0
    )
    for labels, logits in _two_batches():
        ours.update_state(labels, logits)
        theirs.update_state(labels, logits)
        # Our [B] weights are KerasHub's [B, T] weights, row by row.
        ours_weighted.update_state(labels, logits, row_weights)
        theirs_weighted.update_state(
            labels, logits, np.repeat(row_weights[:, None], labels.shape[1], 1)
        )
    np.testing.assert_allclose(
        float(ours.result()), float(theirs.result()), rtol=1e-6
    )
    np.testing.assert_allclose(
        float(ours_weighted.result()),
        float(theirs_weighted.result()),
        rtol=1e-6,
    )
    assert float(ours_weighted.result()) != pytest.approx(float(ours.result()))


def test_masked_accuracy_weights_rows_by_token():
    labels, logits = _batch()
    correct = logits.argmax(-1) == labels
    real = labels != 0
    metric = MaskedAccuracy()
    metric.update_state(labels, logits, np.array([1.0, 0.0]))  # row 0 only
    np.testing.assert_allclose(
        float(metric.result()), correct[0][real[0]].mean(), rtol=1e-6
    )
    everything = MaskedAccuracy(ignore_index=None)
    everything.update_state(labels, logits)
    np.testing.assert_allclose(
        float(everything.result()), correct.mean(), rtol=1e-6
    )


def test_keras_weighted_accuracy_is_not_per_token():
    """Why MaskedAccuracy is kept (keras_transformer/metrics.py docstring).

    `weighted_metrics=["sparse_categorical_accuracy"]` with a padding mask
    averages each row first, so batches padded to different lengths are
    weighed per row. When this fails, Keras counts tokens: use it instead.
    """
    ours = MaskedAccuracy()
    keras_metric = keras.metrics.SparseCategoricalAccuracy()
    correct = total = 0
    for labels, logits in _two_batches():
        mask = (labels != 0).astype("float32")
        ours.update_state(labels, logits)
        keras_metric.update_state(labels, logits, sample_weight=mask)
        correct += ((logits.argmax(-1) == labels) * mask).sum()
        total += mask.sum()
    np.testing.assert_allclose(float(ours.result()), correct / total, 1e-6)
    assert abs(float(keras_metric.result()) - correct / total) > 0.01


def test_loss_equals_keras_where_keras_has_one():
    labels, logits = _batch()
    ours = MaskedSparseCategoricalCrossentropy()
    keras_loss = keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, ignore_class=0
    )
    np.testing.assert_allclose(
        float(ours(labels, logits)), float(keras_loss(labels, logits)), 1e-5
    )
    # Label smoothing in Keras needs one-hot [B, T, V] labels.
    mask = (labels != 0).astype("float32")
    smoothed = keras.losses.CategoricalCrossentropy(
        from_logits=True, label_smoothing=0.1, reduction="sum"
    )
    one_hot = np.eye(5, dtype="float32")[labels]
    expected = float(smoothed(one_hot, logits, sample_weight=mask)) / mask.sum()
    np.testing.assert_allclose(
        float(MaskedSparseCategoricalCrossentropy(0.1)(labels, logits)),
        expected,
        rtol=1e-5,
    )


def test_metrics_in_a_compiled_model():
    labels, logits = _batch()
    inputs = keras.Input((4,), dtype="int32")
    outputs = keras.layers.Embedding(5, 5, name="logits")(inputs)
    model = keras.Model(inputs, outputs)
    model.get_layer("logits").set_weights([np.eye(5, dtype="float32") * 3])
    model.compile(
        loss=MaskedSparseCategoricalCrossentropy(),
        metrics=[MaskedAccuracy(name="accuracy"), Perplexity()],
    )
    # The model predicts its input token: one real label (1) is missed.
    tokens = np.array([[3, 2, 2, 2], [2, 4, 1, 3]])
    results = model.evaluate(tokens, labels, verbose=0, return_dict=True)
    predictions = model.predict(tokens, verbose=0)
    accuracy, perplexity = MaskedAccuracy(), Perplexity()
    accuracy.update_state(labels, predictions)
    perplexity.update_state(labels, predictions)
    assert results["accuracy"] == pytest.approx(float(accuracy.result()))
    assert results["perplexity"] == pytest.approx(float(perplexity.result()))
    assert results["accuracy"] == pytest.approx(5 / 6)  # padding ignored
