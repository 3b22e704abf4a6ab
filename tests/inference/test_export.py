"""`keras_transformer.export`: one entry point for directories and
inference objects; destinations checked before anything is loaded."""

import json
import types

import numpy as np
import pytest
import tensorflow as tf

import keras_transformer
from keras_transformer import export, model_dir


def test_each_exporter_takes_a_directory_or_an_object(model_dirs, tmp_path):
    classifier = keras_transformer.load(model_dirs["classifier"])
    by_dir = export.export_classifier(
        model_dirs["classifier"], tmp_path / "a" / "1"
    )
    # Any object with .model, .tokenizer and .metadata (duck typing).
    plain = types.SimpleNamespace(
        model=classifier.model,
        tokenizer=classifier.tokenizer,
        metadata=classifier.metadata,
    )
    # `export_model` dispatches on `metadata["task"]`.
    by_object = export.export_model(plain, tmp_path / "b" / "1")
    texts = tf.constant(["Blessed are the meek.", ""])
    first, second = (tf.saved_model.load(p) for p in (by_dir, by_object))
    assert set(first.signatures) == set(second.signatures)
    assert set(first.signatures) == {"serving_default"}
    first, second = (
        m.signatures["serving_default"](text=texts) for m in (first, second)
    )
    assert first["label"].numpy().tolist() == second["label"].numpy().tolist()
    np.testing.assert_allclose(
        first["probabilities"].numpy(), second["probabilities"].numpy()
    )


def test_the_destination_is_checked_before_loading(tmp_path):
    existing = tmp_path / "genre" / "1"
    existing.mkdir(parents=True)
    missing_model = tmp_path / "no_such_model"
    for exporter in (
        export.export_model,
        export.export_translation,
        export.export_gpt,
        export.export_classifier,
    ):
        with pytest.raises(export.ExportError, match="already exists"):
            exporter(str(missing_model), existing)
        with pytest.raises(export.ExportError, match="positive integer"):
            exporter(str(missing_model), tmp_path / "genre" / "latest")
    with pytest.raises(model_dir.ModelDirectoryError, match="not found"):
        export.export_model(str(missing_model), tmp_path / "genre" / "2")
    assert not (tmp_path / "genre" / "2").exists()


def test_wrong_task_is_a_clean_error(model_dirs, tmp_path):
    output = tmp_path / "gpt" / "1"
    with pytest.raises(model_dir.ModelDirectoryError, match="'translation'"):
        export.export_gpt(str(model_dirs["translation"]), output)
    translator = keras_transformer.load(
        model_dirs["translation"], jit_compile=False
    )
    with pytest.raises(export.ExportError, match="'translation'"):
        export.export_gpt(translator, output)
    with pytest.raises(export.ExportError, match="without `.tokenizer`"):
        export.export_model(types.SimpleNamespace(model=None), output)
    assert not output.exists()


def test_a_pretrained_encoder_has_no_export(tmp_path):
    path = tmp_path / "encoder"
    path.mkdir()
    metadata = dict.fromkeys(model_dir.METADATA_KEYS)
    metadata.update(task="bert-pretrain", inference={"sequence_length": 8})
    (path / model_dir.METADATA_FILE).write_text(json.dumps(metadata))
    with pytest.raises(export.ExportError, match="'bert-pretrain'"):
        export.export_model(str(path), tmp_path / "out" / "1")
