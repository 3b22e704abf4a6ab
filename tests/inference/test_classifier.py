"""`TextClassifier`: str/list calls, probabilities, report, ensembles,
batching and export."""

import numpy as np
import pytest
import tensorflow as tf

import keras_transformer
from keras_transformer.inference import TextClassifier, classification_report

TEXTS = [
    "Blessed are the meek: for they shall inherit the earth.",
    "And the LORD spoke to Moses, saying,",
    "The fear of the LORD is the beginning of wisdom.",
    "",
    "x",
]


@pytest.fixture(scope="module")
def classifier(model_dirs):
    return keras_transformer.load(model_dirs["classifier"])


@pytest.fixture(scope="module")
def probabilities(classifier):
    return classifier.predict_proba(TEXTS)


def test_probabilities(classifier, probabilities):
    assert probabilities.shape == (len(TEXTS), len(classifier.class_names))
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)
    # The answers depend on the text.
    assert np.ptp(probabilities, axis=0).max() > 1e-3
    single = classifier.predict_proba(TEXTS[0])
    assert single.shape == (len(classifier.class_names),)
    np.testing.assert_allclose(single, probabilities[0], atol=1e-6)
    assert classifier.predict_proba([]).shape == (0, 3)


def test_call_takes_a_str_or_a_list(classifier, probabilities):
    results = classifier(TEXTS)
    assert results == classifier.classify(TEXTS)
    for (label, p), row in zip(results, probabilities):
        assert label == classifier.class_names[int(row.argmax())]
        assert p == pytest.approx(float(row.max()), abs=1e-6)
    label, p = classifier(TEXTS[0])
    assert (label, p) == results[0]
    assert classifier([]) == []
    with pytest.raises(ValueError, match="texts"):
        classifier([TEXTS[0], None])


def test_batches_and_progress_bar_leave_results_unchanged(
    model_dirs, probabilities, capsys
):
    small = TextClassifier.from_dir(model_dirs["classifier"], batch_size=2)
    capsys.readouterr()
    np.testing.assert_allclose(
        small.predict_proba(TEXTS, verbose=1), probabilities, atol=1e-6
    )
    out = capsys.readouterr().out
    assert "5/5" in out and "text" in out
    small.predict_proba(TEXTS[:2], verbose=1)
    assert capsys.readouterr().out == ""


def test_evaluate(classifier, probabilities):
    predicted = [classifier.class_names[i] for i in probabilities.argmax(-1)]
    report = classifier.evaluate(TEXTS, predicted)
    assert report["accuracy"] == 1.0 and report["examples"] == len(TEXTS)
    with pytest.raises(ValueError, match="does not know"):
        classifier.evaluate(TEXTS[:1], ["no_such_class"])
    with pytest.raises(ValueError, match="one label per text"):
        classifier.evaluate(TEXTS, predicted[:2])


def test_classification_report_values():
    report = classification_report([0, 0, 1, 2], [0, 1, 1, 1], ["a", "b", "c"])
    assert report["accuracy"] == 0.5
    assert report["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]
    assert report["per_class_f1"] == pytest.approx(
        {"a": 2 / 3, "b": 0.5, "c": 0.0}
    )
    assert report["macro_f1"] == pytest.approx((2 / 3 + 0.5) / 3)
    assert report["class_names"] == ["a", "b", "c"]


def test_class_names_must_match_the_outputs(classifier):
    with pytest.raises(ValueError, match="3 outputs but 2 class names"):
        TextClassifier(classifier.model, classifier.tokenizer, ["a", "b"], 24)


def test_ensemble_averages_member_probabilities(ensemble_dirs):
    ensemble, members = ensemble_dirs
    expected = np.mean(
        [keras_transformer.load(d).predict_proba(TEXTS) for d in members],
        axis=0,
    )
    np.testing.assert_allclose(
        keras_transformer.load(ensemble).predict_proba(TEXTS),
        expected,
        atol=1e-5,
    )


def test_export_round_trip(classifier, probabilities, tmp_path):
    output = tmp_path / "genre" / "1"
    assert classifier.export(str(output)) == str(output)
    served = tf.saved_model.load(str(output)).signatures["serving_default"](
        text=tf.constant(TEXTS)
    )
    np.testing.assert_allclose(
        served["probabilities"].numpy(), probabilities, atol=1e-5
    )
    labels = [t.decode() for t in served["label"].numpy()]
    assert labels == [label for label, _ in classifier(TEXTS)]
