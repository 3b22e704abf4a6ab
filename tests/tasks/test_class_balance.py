"""Imbalanced classes: the balanced loss, the per-class report, auto."""

import json
import logging
import math
import random

import keras
import numpy as np
import pytest

from keras_transformer import model_dir as model_dir_lib
from keras_transformer.inference.classifier import classification_report
from keras_transformer.losses import BalancedSparseCategoricalCrossentropy
from keras_transformer.metrics import SparseMacroF1
from keras_transformer.tasks import _class_balance, _classifier_auto
from keras_transformer.tasks import classifier as classifier_task

# ---------------------------------------------------------------------------
# The loss, by hand.


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


LOGITS = np.array([[0.0, 1.0, -1.0], [2.0, 0.5, 0.0], [0.3, 0.3, 3.0]])
LABELS = np.array([1, 0, 2])


def test_plain_loss_is_sparse_cross_entropy():
    loss = BalancedSparseCategoricalCrossentropy()
    expected = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    np.testing.assert_allclose(
        float(loss(LABELS, LOGITS)), float(expected(LABELS, LOGITS)), rtol=1e-6
    )


def test_class_weights_value():
    weights = [0.5, 2.0, 4.0]
    loss = BalancedSparseCategoricalCrossentropy(class_weights=weights)
    nll = -_log_softmax(LOGITS)[np.arange(3), LABELS]
    expected = np.mean([weights[y] * v for y, v in zip(LABELS, nll)])
    np.testing.assert_allclose(float(loss(LABELS, LOGITS)), expected, rtol=1e-5)
    # One example, uniform logits: 2 * log 3.
    value = float(loss(np.array([1]), np.zeros((1, 3))))
    assert value == pytest.approx(2 * math.log(3), rel=1e-5)


def test_logit_adjustment_value():
    prior = np.array([0.7, 0.25, 0.05])
    loss = BalancedSparseCategoricalCrossentropy(
        logit_adjustment=list(np.log(prior))
    )
    adjusted = LOGITS + np.log(prior)
    expected = -_log_softmax(adjusted)[np.arange(3), LABELS].mean()
    np.testing.assert_allclose(float(loss(LABELS, LOGITS)), expected, rtol=1e-5)
    # Uniform logits, label 2: -log(0.05 / 1) = log 20.
    value = float(loss(np.array([2]), np.zeros((1, 3))))
    assert value == pytest.approx(math.log(20), rel=1e-5)
    # A uniform prior shifts every logit alike: no change.
    uniform = BalancedSparseCategoricalCrossentropy(logit_adjustment=[-1.1] * 3)
    np.testing.assert_allclose(
        float(uniform(LABELS, LOGITS)),
        float(BalancedSparseCategoricalCrossentropy()(LABELS, LOGITS)),
        rtol=1e-6,
    )


def test_both_and_sample_weight():
    weights, shift = [1.0, 3.0, 0.5], [0.2, -0.4, 0.1]
    loss = BalancedSparseCategoricalCrossentropy(
        class_weights=weights, logit_adjustment=shift
    )
    nll = -_log_softmax(LOGITS + np.array(shift))[np.arange(3), LABELS]
    per_example = np.array([weights[y] for y in LABELS]) * nll
    sample = np.array([1.0, 0.0, 2.0])
    np.testing.assert_allclose(
        float(loss(LABELS, LOGITS, sample_weight=sample)),
        (per_example * sample).sum() / 3,
        rtol=1e-5,
    )


def test_loss_serializes_and_checks_arguments(tmp_path):
    loss = BalancedSparseCategoricalCrossentropy(
        class_weights=[1.0, 2.0], logit_adjustment=[-0.1, -2.3]
    )
    again = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(loss)
    )
    assert isinstance(again, BalancedSparseCategoricalCrossentropy)
    assert again.get_config() == loss.get_config()
    # In a compiled model, saved and loaded without custom_objects.
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    model.compile(loss=loss, metrics=[SparseMacroF1(2)])
    model.fit(np.ones((4, 3)), np.array([0, 1, 1, 0]), verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.loss.get_config() == loss.get_config()
    with pytest.raises(ValueError, match="Received: class_weights"):
        BalancedSparseCategoricalCrossentropy(class_weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="Received: logit_adjustment"):
        BalancedSparseCategoricalCrossentropy(logit_adjustment="abc")
    with pytest.raises(ValueError, match="one value per class each"):
        BalancedSparseCategoricalCrossentropy(
            class_weights=[1.0, 1.0], logit_adjustment=[0.0, 0.0, 0.0]
        )


def test_modes_and_their_loss_options():
    counts = [60, 36, 4]
    weighted = _class_balance.loss_options("weighted", counts)
    # N / (C n_c): the mean weight per training example is 1.
    assert weighted["class_weights"] == pytest.approx(
        [100 / 180, 100 / 108, 100 / 12]
    )
    assert sum(w * c for w, c in zip(weighted["class_weights"], counts)) == (
        pytest.approx(100)
    )
    adjust = _class_balance.loss_options("logit_adjust", counts)
    assert adjust["logit_adjustment"] == pytest.approx(
        [math.log(0.6), math.log(0.36), math.log(0.04)]
    )
    assert _class_balance.loss_options("none", counts) == {
        "class_weights": None,
        "logit_adjustment": None,
    }
    assert _class_balance.resolve("auto", counts) == "logit_adjust"
    assert _class_balance.resolve("auto", [10, 9, 5]) == "none"
    assert _class_balance.resolve("weighted", [10, 10]) == "weighted"
    with pytest.raises(ValueError, match="Received: class_balance='focal'"):
        _class_balance.resolve("focal", counts)


def test_macro_f1_metric_equals_the_report():
    rng = np.random.RandomState(0)
    labels = rng.randint(0, 4, size=50)
    logits = rng.normal(size=(50, 4))
    metric = SparseMacroF1(4)
    for begin in range(0, 50, 16):  # accumulated over batches
        metric.update_state(
            labels[begin : begin + 16], logits[begin : begin + 16]
        )
    report = classification_report(labels, logits.argmax(-1), list("abcd"))
    assert float(metric.result()) == pytest.approx(report["macro_f1"], abs=1e-6)


def test_report_has_per_class_figures_and_never_predicted():
    report = classification_report(
        [0, 0, 1, 2, 2], [0, 1, 1, 1, 0], list("abc")
    )
    # a: TP 1, predicted 2, actual 2. b: TP 1, predicted 3, actual 1.
    assert report["per_class"]["a"] == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    )
    assert report["per_class"]["b"] == pytest.approx(
        {"precision": 1 / 3, "recall": 1.0, "f1": 0.5, "support": 1}
    )
    assert report["per_class"]["c"]["support"] == 2
    assert report["never_predicted"] == ["c"]
    # A class absent from the data and never predicted is not named.
    assert (
        classification_report([0, 1], [0, 1], list("abc"))["never_predicted"]
        == []
    )


# ---------------------------------------------------------------------------
# Training on an imbalanced TSV: 3 classes, one at 4%, told apart by
# keywords.

KEYS = {"alpha": ("apple", "amber"), "beta": ("banana", "berry"),
        "rare": ("zebra", "quokka")}  # fmt: skip
FILLER = "the of and to in is was for on that with as by at from it".split()


def _write_imbalanced(path, count, rare_share, seed):
    rng = random.Random(seed)
    lines = []
    for _ in range(count):
        r = rng.random()
        label = (
            "rare"
            if r < rare_share
            else "alpha"
            if r < (1 + rare_share) / 2
            else "beta"
        )
        words = [rng.choice(FILLER) for _ in range(6)]
        words.append(rng.choice(KEYS[label]))
        rng.shuffle(words)
        lines.append(f"{label}\t{' '.join(words)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def imbalanced(tmp_path_factory):
    root = tmp_path_factory.mktemp("imbalanced")
    return {
        "root": root,
        "train": _write_imbalanced(root / "train.tsv", 500, 0.04, 0),
        "valid": _write_imbalanced(root / "valid.tsv", 90, 0.2, 1),
    }


NGRAM = dict(architecture="ngram", sequence_length=16, batch_size=16,
             epochs=1, steps_per_epoch=30, verbose=0)  # fmt: skip


def test_default_balance_predicts_every_class_where_none_does_not(
    imbalanced, caplog
):
    # Measured (seeds 0, 1; 30 steps): "none" never predicts the rare
    # class (validation macro-F1 0.57, 0.55); logit adjustment does
    # (0.99, 0.88), inverse-frequency weights less well (0.91, 0.75).
    common = dict(
        NGRAM, train_file=imbalanced["train"], valid_file=imbalanced["valid"]
    )
    root = imbalanced["root"]
    with caplog.at_level(logging.WARNING, "keras_transformer"):
        plain = classifier_task.train_classifier(
            root / "none", class_balance="none", **common
        )
    assert plain["metrics"]["class_balance"] == "none"
    assert plain["metrics"]["valid_never_predicted"] == ["rare"]
    warnings = [r.getMessage() for r in caplog.records if "never" in r.message]
    assert any("rare" in w and "validation" in w for w in warnings), warnings
    caplog.clear()
    balanced = classifier_task.train_classifier(root / "default", **common)
    metrics = balanced["metrics"]
    assert metrics["class_balance"] == "logit_adjust"  # "auto", 4% vs 48%
    assert metrics["valid_never_predicted"] == []
    assert metrics["valid_per_class"]["rare"]["recall"] > 0.5
    assert metrics["valid_macro_f1"] > plain["metrics"]["valid_macro_f1"]
    assert balanced["data"]["train_class_counts"]["rare"] < 30
    assert not [r for r in caplog.records if "never predicts" in r.message]
    # The figures reach the card and evaluate's report.
    card = (root / "default" / "README.md").read_text()
    assert "valid_per_class" in card
    report = classifier_task.evaluate_classifier(
        root / "none", test_file=imbalanced["valid"]
    )
    assert set(report["per_class"]["rare"]) == {
        "precision",
        "recall",
        "f1",
        "support",
    }
    with open(imbalanced["valid"], encoding="utf-8") as f:
        rare = sum(line.startswith("rare\t") for line in f)
    assert report["per_class"]["rare"]["support"] == rare
    assert report["never_predicted"] == ["rare"]
    from keras_transformer.cli._train import _classifier_report

    printed = _classifier_report(report)
    assert "precision" in printed and "WARNING" in printed
    assert "WARNING: the model never predicts rare on the test split" in printed


def test_train_summary_prints_per_class_and_the_warning():
    from keras_transformer.cli._train import train_summary

    per_class = {
        "a": {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 4},
        "b": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1},
    }
    text = train_summary(
        {"task": "classifier", "steps": 3, "train_seconds": 6.0, "data": {},
         "metrics": {"valid_accuracy": 0.8, "valid_macro_f1": 0.3333,
                     "valid_per_class": per_class,
                     "valid_never_predicted": ["b"], "auto_chosen": "ngram",
                     "auto_valid_macro_f1_ngram": 0.3333}},
        "/runs/c",
    )  # fmt: skip
    assert "validation: macro-F1 0.3333" in text
    assert "WARNING: the model never predicts b on the validation split" in text
    assert "auto chose ngram" in text


# ---------------------------------------------------------------------------
# architecture="auto".


class _FakeClassifier:
    def __init__(self, probabilities):
        self._probabilities = probabilities

    def predict_proba(self, texts):
        return self._probabilities[: len(texts)]


@pytest.mark.parametrize(
    "predictions, chosen",
    [
        # valid labels: 0 0 1 1 2 2
        ({"ngram": [0, 0, 1, 1, 2, 2], "bert": [0, 0, 1, 1, 1, 1]}, "ngram"),
        # The average equals the encoder's predictions: a tie, the encoder.
        ({"ngram": [0, 0, 0, 0, 0, 0], "bert": [0, 0, 1, 1, 2, 0]}, "bert"),
        # Each right on different examples, confident where right.
        ({"ngram": [0, 0, 1, 0, 2, 0], "bert": [0, 2, 1, 1, 1, 2]}, "average"),
    ],
)
def test_auto_choice_by_validation_macro_f1(
    tmp_path, monkeypatch, predictions, chosen
):
    texts = [f"text {i}" for i in range(6)]
    valid = tmp_path / "valid.tsv"
    valid.write_text(
        "".join(f"{y}\t{t}\n" for y, t in zip("aabbcc", texts)),
        encoding="utf-8",
    )
    train = tmp_path / "train.tsv"
    train.write_text("a\tx\nb\ty\nc\tz\n", encoding="utf-8")
    correct = np.array([0, 0, 1, 1, 2, 2])

    def probabilities(ids):
        p = np.full((6, 3), 0.05)
        for i, (c, truth) in enumerate(zip(ids, correct)):
            p[i, c] = 0.9 if c == truth else 0.6
        return p / p.sum(-1, keepdims=True)

    fakes = {name: probabilities(ids) for name, ids in predictions.items()}
    from keras_transformer.inference import classifier as inference

    monkeypatch.setattr(
        inference.TextClassifier,
        "from_dir",
        classmethod(lambda cls, d: _FakeClassifier(fakes[d.split("/")[-1]])),
    )
    written = []
    monkeypatch.setattr(
        "keras_transformer.tasks.ensemble.average_classifiers",
        lambda dirs, out, **kwargs: written.append((dirs, out, kwargs)),
    )
    dirs = {n: str(tmp_path / n) for n in _classifier_auto.CANDIDATES}
    settings = dict(train_file=str(train), valid_file=str(valid),
                    test_file=None, skip_bad_lines=False,
                    max_train_examples=None)  # fmt: skip
    scores, got, _ = _classifier_auto._choose(
        dirs, {"ngram": None, "bert": None}, settings, classifier_task
    )
    assert got == chosen, scores
    assert set(scores) == {"ngram", "bert", "average"}
    assert bool(written) == (chosen == "average")
    if written:
        assert written[0][2]["mode"] == "probabilities"


def test_encoder_budget():
    assert _classifier_auto._encoder_minutes(None, 3.0) is None
    assert _classifier_auto._encoder_minutes(5.0, 1.25) == pytest.approx(3.5)
    assert _classifier_auto._encoder_minutes(1.0, 0.25) == 0


def test_auto_trains_both_and_records_the_choice(imbalanced):
    output = imbalanced["root"] / "auto"
    metadata = classifier_task.train_classifier(
        output,
        train_file=imbalanced["train"],
        valid_file=imbalanced["valid"],
        preset="tiny",
        sequence_length=16,
        batch_size=16,
        epochs=1,
        steps_per_epoch=4,
        verbose=0,
    )
    auto = metadata["inference"]["auto"]
    scores = auto["valid_macro_f1"]
    assert set(scores) == {"ngram", "bert", "average"}
    best = "ngram"
    for name in ("bert", "average"):
        if scores[name] >= scores[best] + _classifier_auto.MIN_GAIN:
            best = name
    assert auto["chosen"] == best
    assert metadata["metrics"]["auto_chosen"] == auto["chosen"]
    assert metadata["settings"]["architecture"] == "auto"
    expected = {"ngram": "ngram", "bert": "bert", "average": "ensemble"}
    assert metadata["inference"]["architecture"] == expected[auto["chosen"]]
    candidates = output / "candidates"
    ngram = model_dir_lib.read_metadata(candidates / "ngram")
    bert = model_dir_lib.read_metadata(candidates / "bert")
    assert ngram["inference"]["architecture"] == "ngram"
    assert bert["inference"]["architecture"] == "bert"
    # One tokenizer for both (so their probabilities can be averaged).
    assert (candidates / "ngram" / "tokenizer.model").read_bytes() == (
        candidates / "bert" / "tokenizer.model"
    ).read_bytes()
    assert (output / "tokenizer.model").exists()
    # The directory loads as the chosen classifier.
    import keras_transformer

    classifier = keras_transformer.load(output)
    assert sorted(classifier.class_names) == ["alpha", "beta", "rare"]
    with open(output / "metadata.json") as f:
        assert (
            json.load(f)["metrics"]["auto_valid_macro_f1_ngram"]
            == (scores["ngram"])
        )
