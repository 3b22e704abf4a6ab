"""`keras_transformer.load` picks the inference class from the metadata."""

import json
import warnings

import pytest

import keras_transformer
from keras_transformer import inference, model_dir
from keras_transformer.inference import (
    TextClassifier,
    TextGenerator,
    Translator,
)

CLASSES = {
    "translation": Translator,
    "gpt": TextGenerator,
    "classifier": TextClassifier,
}


@pytest.mark.parametrize("task", sorted(CLASSES))
def test_load_returns_the_class_of_the_task(model_dirs, task):
    loaded = keras_transformer.load(model_dirs[task])
    assert type(loaded) is CLASSES[task]
    assert loaded.metadata["task"] == task
    assert loaded.model_dir == str(model_dirs[task])
    assert loaded.tokenizer.vocabulary_size > 4
    assert str(model_dirs[task]) in repr(loaded)


def test_inference_settings_come_from_the_metadata(model_dirs):
    translator = inference.load(model_dirs["translation"], batch_size=4)
    assert translator.max_length == 24 and translator.batch_size == 4
    generator = inference.load(model_dirs["gpt"])
    assert generator.max_sequence_length == 32
    classifier = inference.load(model_dirs["classifier"])
    metadata = json.loads(
        (model_dirs["classifier"] / model_dir.METADATA_FILE).read_text()
    )
    assert classifier.class_names == metadata["inference"]["class_names"]
    assert classifier.sequence_length == 24


def test_load_a_probability_ensemble(ensemble_dirs):
    ensemble, members = ensemble_dirs
    classifier = keras_transformer.load(ensemble)
    assert type(classifier) is TextClassifier
    assert classifier.metadata["inference"]["architecture"] == "ensemble"
    assert (
        classifier.class_names == keras_transformer.load(members[0]).class_names
    )


def test_from_dir_refuses_another_task(model_dirs):
    with pytest.raises(model_dir.ModelDirectoryError, match="'gpt' model"):
        Translator.from_dir(model_dirs["gpt"])


def test_load_missing_or_unfinished_directory(tmp_path):
    with pytest.raises(model_dir.ModelDirectoryError, match="not found"):
        keras_transformer.load(tmp_path / "nope")
    (tmp_path / "half").mkdir()
    with pytest.raises(model_dir.ModelDirectoryError, match="interrupted"):
        keras_transformer.load(tmp_path / "half")


def _metadata_only(path, task):
    path.mkdir()
    metadata = dict.fromkeys(model_dir.METADATA_KEYS)
    metadata.update(task=task, inference={}, config={}, metrics={})
    (path / model_dir.METADATA_FILE).write_text(json.dumps(metadata))
    return path


@pytest.mark.parametrize("task", ["bert-pretrain", "unknown-task"])
def test_task_without_inference_object_is_a_clean_error(tmp_path, task):
    path = _metadata_only(tmp_path / "model", task)
    with pytest.raises(model_dir.ModelDirectoryError, match=repr(task)):
        keras_transformer.load(path)


@pytest.mark.parametrize(
    "alias,task",
    [
        ("load_translator", "translation"),
        ("load_generator", "gpt"),
        ("load_classifier", "classifier"),
    ],
)
def test_deprecated_loaders_warn_and_load(model_dirs, alias, task):
    with pytest.warns(DeprecationWarning, match="keras_transformer.load"):
        loaded = getattr(inference, alias)(str(model_dirs[task]))
    assert type(loaded) is CLASSES[task]


def test_deprecated_loader_keeps_its_arguments(model_dirs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        classifier = inference.load_classifier(
            str(model_dirs["classifier"]), batch_size=3
        )
        translator = inference.load_translator(
            str(model_dirs["translation"]), batch_size=5, jit_compile=False
        )
    assert classifier.batch_size == 3
    assert translator.batch_size == 5 and translator.jit_compile is False
