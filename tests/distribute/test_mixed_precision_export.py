"""Models trained under a mixed precision policy export the documented
float32 / string signatures, and their layers computed in the half dtype."""

import numpy as np
import pytest


@pytest.mark.parametrize(
    "precision", ["bfloat16", pytest.param("float16", marks=pytest.mark.slow)]
)
def test_classifier_trained_mixed_exports_float32(tmp_path, precision):
    import keras
    import tensorflow as tf

    from keras_transformer import training
    from keras_transformer.data import load_bundled_genre
    from keras_transformer.export.classifier import export_classifier
    from keras_transformer.tasks.classifier import train_classifier

    texts, labels, _ = load_bundled_genre("train")
    rows = [f"{y}\t{x}" for x, y in zip(texts[::200], labels[::200])]
    data = tmp_path / "genre.tsv"
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    model_dir = tmp_path / "model"
    with training.scale_scope("default", mixed_precision=precision):
        train_classifier(
            model_dir,
            train_file=str(data),
            preset="tiny",
            vocabulary_size=120,
            sequence_length=24,
            batch_size=8,
            epochs=1,
            steps_per_epoch=2,
            verbose=0,
        )
    assert keras.config.dtype_policy().name == "float32"  # restored
    reloaded = keras.saving.load_model(str(model_dir / "model.keras"))
    policies = {layer.dtype_policy.name for layer in reloaded.layers}
    assert f"mixed_{precision}" in policies
    path = export_classifier(str(model_dir), str(tmp_path / "export" / "1"))
    serve = tf.saved_model.load(path).signatures["serving_default"]
    out = serve(text=tf.constant(["In the beginning", ""]))
    assert out["probabilities"].dtype == tf.float32
    assert out["label"].dtype == tf.string
    np.testing.assert_allclose(
        out["probabilities"].numpy().sum(-1), 1.0, atol=1e-3
    )
