import json

import numpy as np
import pytest

import keras_transformer
from keras_transformer import model_dir as model_dir_lib
from keras_transformer.tasks import classifier as classifier_task
from keras_transformer.tasks.ensemble import AVERAGE_MODES, average_classifiers
from tests.tasks import bert_runs
from tests.tasks.bert_runs import TINY


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return bert_runs.fine_tuned(tmp_path_factory)


@pytest.fixture(scope="module")
def other(tmp_path_factory):
    """A second fine-tune of the same encoder (seed 1)."""
    return bert_runs.second_fine_tune(tmp_path_factory)


@pytest.fixture(scope="module")
def ngram(runs):
    """An n-gram model on the pretrained encoder's tokenizer."""
    path = runs.root / "ngram"
    if not (path / "metadata.json").exists():
        classifier_task.train_classifier(
            path,
            architecture="ngram",
            train_file=runs.files["train"],
            valid_file=runs.files["valid"],
            pretrained=str(runs.pretrained),
            learning_rate=0.01,
            **TINY,
        )
    return path


def _probabilities(model_dir, texts):
    return keras_transformer.load(model_dir).predict_proba(texts)


def test_average_classifiers_gives_the_mean_of_the_weights(
    runs, other, tmp_path
):
    import keras

    assert AVERAGE_MODES == ("weights", "probabilities")
    model_dir, test = runs.model_dir, runs.test
    soup = tmp_path / "soup"
    assert average_classifiers([model_dir, other], soup) == str(soup)
    weights = [
        keras.saving.load_model(d / "model.keras", compile=False).get_weights()
        for d in (model_dir, other, soup)
    ]
    changed = 0
    for a, b, mean in zip(*weights):
        np.testing.assert_allclose(mean, (a + b) / 2, rtol=1e-6, atol=1e-7)
        changed += not np.allclose(a, b)
    assert changed > 0  # the two runs did differ
    metadata = json.loads((soup / "metadata.json").read_text())
    assert tuple(metadata) == model_dir_lib.METADATA_KEYS
    assert metadata["task"] == "classifier"
    assert metadata["parent"] == [str(model_dir), str(other)]
    assert metadata["settings"] == {
        "mode": "weights",
        "model_dirs": [str(model_dir), str(other)],
    }
    assert metadata["metrics"] == {}  # no test figures of a member
    assert metadata["inference"]["architecture"] == "bert"
    assert metadata["config"]["pooling"] == "mean"
    assert metadata["steps"] == 6 + 3
    labels = [
        label for label, _ in keras_transformer.load(soup).classify(test[0][:3])
    ]
    assert set(labels) <= set(metadata["inference"]["class_names"])
    # The ensemble benchmark averages the two models' probabilities.
    from benchmarks.genre_ensemble import ensemble_report

    report = ensemble_report([model_dir, other], {"test": test})
    names = metadata["inference"]["class_names"]
    expected = np.mean(
        [_probabilities(d, test[0]) for d in (model_dir, other)], axis=0
    )
    np.testing.assert_allclose(report["probabilities"]["test"], expected,
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    truth = np.array([names.index(label) for label in test[1]])
    assert report["ensemble"]["test"] == pytest.approx(
        np.mean(expected.argmax(1) == truth)
    )
    assert set(report["models"]) == {str(model_dir), str(other)}
    # The same output again: refused without overwrite.
    with pytest.raises(FileExistsError, match="already exists"):
        average_classifiers([model_dir, other], soup)


def test_probability_ensemble_is_one_classifier_directory(
    runs, other, tmp_path
):
    import tensorflow as tf

    from keras_transformer.export import export_model

    model_dir, test = runs.model_dir, runs.test
    expected = np.mean(
        [_probabilities(d, test[0]) for d in (model_dir, other)], axis=0
    )
    names = keras_transformer.load(model_dir).class_names
    truth = np.array([names.index(label) for label in test[1]])
    # Mode "probabilities": one model directory holding both, whose
    # probabilities are the members' mean, in Python and when served.
    pair = tmp_path / "pair"
    assert average_classifiers(
        [model_dir, other], pair, mode="probabilities"
    ) == str(pair)
    ensemble = keras_transformer.load(pair)
    np.testing.assert_allclose(ensemble.predict_proba(test[0]), expected,
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    metadata = json.loads((pair / "metadata.json").read_text())
    assert tuple(metadata) == model_dir_lib.METADATA_KEYS
    inference = metadata["inference"]
    assert inference["architecture"] == "ensemble"
    assert inference["members"] == [str(model_dir), str(other)]
    assert inference["class_names"] == names
    assert inference["sequence_length"] == 32
    assert metadata["parent"] == [str(model_dir), str(other)]
    assert len(metadata["config"]["members"]) == 2
    assert metadata["config"]["members"][0]["architecture"] == "bert"
    report = classifier_task.evaluate_classifier(
        pair, test_file=runs.files["test"]
    )
    assert report["accuracy"] == pytest.approx(
        np.mean(expected.argmax(1) == truth)
    )
    export_dir = tmp_path / "served_pair" / "1"
    assert export_model(str(pair), str(export_dir)) == str(export_dir)
    serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    served = serve(text=tf.constant(test[0][:4]))["probabilities"].numpy()
    np.testing.assert_allclose(served, expected[:4], atol=1e-5)


def test_an_ngram_model_joins_an_ensemble_but_not_a_soup(runs, ngram, tmp_path):
    model_dir, test = runs.model_dir, runs.test
    ngram_meta = json.loads((ngram / "metadata.json").read_text())
    assert tuple(ngram_meta) == model_dir_lib.METADATA_KEYS
    assert ngram_meta["inference"]["architecture"] == "ngram"
    assert "backbone" not in ngram_meta["config"]
    assert ngram_meta["config"]["buckets"]
    assert ngram_meta["settings"]["learning_rate"] == 0.01
    assert (ngram / "tokenizer.model").read_bytes() == (
        runs.pretrained / "tokenizer.model"
    ).read_bytes()
    mixed = tmp_path / "mixed"
    average_classifiers([model_dir, ngram], mixed, mode="probabilities")
    np.testing.assert_allclose(
        _probabilities(mixed, test[0]),
        np.mean([_probabilities(d, test[0]) for d in (model_dir, ngram)],
                axis=0),
        rtol=1e-5, atol=1e-6,
    )  # fmt: skip
    members = json.loads((mixed / "metadata.json").read_text())["config"]
    assert [m["architecture"] for m in members["members"]] == ["bert", "ngram"]
    # Weight averaging needs one architecture.
    with pytest.raises(ValueError, match="another architecture"):
        average_classifiers([model_dir, ngram], tmp_path / "no")
    assert not (tmp_path / "no").exists()


def test_average_classifiers_refuses_what_cannot_be_averaged(runs, tmp_path):
    model_dir = runs.model_dir
    with pytest.raises(ValueError, match="at least two"):
        average_classifiers([model_dir], tmp_path / "one")
    with pytest.raises(ValueError, match="Received: mode='median'"):
        average_classifiers(
            [model_dir, model_dir], tmp_path / "m", mode="median"
        )
    with pytest.raises(
        model_dir_lib.ModelDirectoryError, match="holds a 'bert-pretrain'"
    ):
        average_classifiers([model_dir, runs.pretrained], tmp_path / "p")
    # Trained from scratch: another tokenizer.
    scratch = tmp_path / "scratch"
    classifier_task.train_classifier(
        scratch,
        train_file=runs.files["train"],
        valid_file=runs.files["valid"],
        architecture="bert",
        pooling="mean",
        **TINY,
    )
    with pytest.raises(ValueError, match="same encoder"):
        average_classifiers([model_dir, scratch], tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scratch"]


@pytest.mark.slow
def test_bundled_recipe_reaches_85_percent(tmp_path):
    # The target on a 2-core CPU in 30 minutes: the n-gram model
    # (about 3 minutes), the bundled encoder fine-tuned for 26 minutes,
    # their probabilities averaged. Measured: 86.2% mean over 14 pairs
    # (85.8-86.9%), docs/classifier.md.
    ngram, encoder, pair = (tmp_path / n for n in ("ngram", "ft", "pair"))
    classifier_task.train_classifier(
        ngram, architecture="ngram", pretrained="bundled", epochs=5,
        batch_size=64, verbose=2,
    )  # fmt: skip
    classifier_task.train_classifier(
        encoder, architecture="bert", pretrained="bundled", pooling="mean",
        ema_momentum=0.999,
        steps_per_epoch=200, epochs=1000, max_minutes=26, verbose=2,
    )  # fmt: skip
    average_classifiers([encoder, ngram], pair, mode="probabilities")
    report = classifier_task.evaluate_classifier(pair)
    print("ensemble test accuracy", report["accuracy"])
    assert report["accuracy"] >= 0.85
