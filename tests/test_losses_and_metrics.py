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
