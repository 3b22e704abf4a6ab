"""int8 quantization: the tied output projection against a hand-computed
product, model directories that round-trip (reload equals the quantized
model in memory; close to float32), the inference objects, the CLI
command, and exported SavedModels served from a fresh TF-only process."""

import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_transformer
from keras_transformer import model_dir as model_dir_lib
from keras_transformer.layers import TokenAndPositionEmbedding
from keras_transformer.quantization import quantize_model, quantize_model_dir


def _embedding_layer():
    layer = TokenAndPositionEmbedding(
        vocabulary_size=30, sequence_length=8, hidden_dim=16
    )
    layer.build((None, None))
    return layer


def test_int8_tied_projection_is_the_int8_product_over_row_scales():
    layer = _embedding_layer()
    hidden = np.random.default_rng(0).normal(size=(2, 3, 16)).astype("f4")
    table = keras.ops.convert_to_numpy(layer.token_embeddings)
    float_logits = keras.ops.convert_to_numpy(layer(hidden, reverse=True))
    np.testing.assert_allclose(
        float_logits, np.einsum("btd,vd->btv", hidden, table), atol=1e-6
    )
    layer.token_embedding.quantize("int8")
    q = keras.ops.convert_to_numpy(layer.token_embedding._embeddings)
    scale = keras.ops.convert_to_numpy(layer.token_embedding.embeddings_scale)
    assert q.dtype == np.int8 and scale.shape == (30,)
    expected = np.einsum("btd,vd->btv", hidden, q.astype("f4")) / scale
    logits = keras.ops.convert_to_numpy(layer(hidden, reverse=True))
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
    # Per-row absmax rounding: each entry off by at most half a step.
    step = np.abs(table).max(axis=1, keepdims=True) / 127
    assert np.all(np.abs(q / scale[:, None] - table) <= step / 2 + 1e-7)
    np.testing.assert_allclose(logits, float_logits, atol=0.05)


def test_int8_tied_projection_adds_the_lora_update():
    layer = _embedding_layer()
    layer.token_embedding.quantize("int8")
    layer.token_embedding.enable_lora(2)
    embedding = layer.token_embedding
    rng = np.random.default_rng(1)
    embedding.lora_embeddings_b.assign(rng.normal(size=(2, 16)).astype("f4"))
    hidden = rng.normal(size=(1, 2, 16)).astype("f4")
    a = keras.ops.convert_to_numpy(embedding.lora_embeddings_a)
    b = keras.ops.convert_to_numpy(embedding.lora_embeddings_b)
    q = keras.ops.convert_to_numpy(embedding._embeddings).astype("f4")
    scale = keras.ops.convert_to_numpy(embedding.embeddings_scale)
    factor = embedding.lora_alpha / embedding.lora_rank
    expected = np.einsum("btd,vd->btv", hidden, q) / scale + factor * np.einsum(
        "btd,vd->btv", hidden, a @ b
    )
    logits = keras.ops.convert_to_numpy(layer(hidden, reverse=True))
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)


def test_quantize_model_skips_layers_already_quantized():
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)]
    )
    model.layers[0].quantize("int8")
    assert quantize_model(model) == 1
    assert [layer.kernel.dtype for layer in model.layers] == ["int8", "int8"]
    with pytest.raises(ValueError, match="int4"):
        quantize_model(model, "int4")


@pytest.fixture(scope="module")
def quantized_dirs(tmp_path_factory):
    """{task: (float directory, int8 directory)}."""
    from tests.inference.model_dirs import build_model_dirs

    root = tmp_path_factory.mktemp("quantization")
    dirs = build_model_dirs(root)
    return {
        task: (path, pathlib.Path(quantize_model_dir(path, root / f"{task}8")))
        for task, path in dirs.items()
    }


def _inputs(model):
    rng = np.random.default_rng(0)
    return {
        name: rng.integers(
            1, 2 if "segment" in name or "mask" in name else 20, size=(2, 6)
        ).astype("int32")
        for name in (t.name.split(":")[0] for t in model.inputs)
    }


@pytest.mark.parametrize("task", ["translation", "gpt", "classifier"])
def test_quantized_directory_round_trips(quantized_dirs, task):
    float_dir, int8_dir = quantized_dirs[task]
    float_model = model_dir_lib.load_model(float_dir)
    in_memory = model_dir_lib.load_model(float_dir)
    quantize_model(in_memory)
    reloaded = model_dir_lib.load_model(int8_dir)
    inputs = _inputs(float_model)
    expected = keras.ops.convert_to_numpy(in_memory(inputs))
    got = keras.ops.convert_to_numpy(reloaded(inputs))
    np.testing.assert_array_equal(got, expected)
    reference = keras.ops.convert_to_numpy(float_model(inputs))
    assert np.abs(got - reference).max() < 0.1 * np.abs(reference).max()
    # Most parameters are int8 (norms, biases, scales, positions are not).
    sizes = {}
    for weight in reloaded.weights:
        sizes[weight.dtype] = sizes.get(weight.dtype, 0) + int(
            np.prod(weight.shape)
        )
    assert sizes.get("int8", 0) > 0.8 * sum(sizes.values()), sizes
    metadata = model_dir_lib.read_metadata(int8_dir)
    assert metadata["inference"]["quantization"] == "int8"
    assert metadata["parent"] == str(float_dir)
    # The original is untouched.
    assert (
        model_dir_lib.read_metadata(float_dir)["inference"].get("quantization")
        is None
    )


def test_quantized_directories_serve_through_load(quantized_dirs):
    translator = keras_transformer.load(quantized_dirs["translation"][1])
    generator = keras_transformer.load(quantized_dirs["gpt"][1])
    classifier = keras_transformer.load(quantized_dirs["classifier"][1])
    assert isinstance(translator.translate(["hello world"])[0], str)
    assert isinstance(generator.generate(["hello"], max_new_tokens=3)[0], str)
    probabilities = np.asarray(classifier.predict_proba(["hello world"]))
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)


def test_quantizing_twice_or_in_place_is_refused(quantized_dirs, tmp_path):
    float_dir, int8_dir = quantized_dirs["gpt"]
    with pytest.raises(ValueError, match="already quantized"):
        quantize_model_dir(int8_dir, tmp_path / "again")
    with pytest.raises(ValueError, match="must differ"):
        quantize_model_dir(float_dir, float_dir)
    with pytest.raises(FileExistsError):
        quantize_model_dir(float_dir, int8_dir)


def test_cli_quantize_writes_a_directory(quantized_dirs, tmp_path, capsys):
    from keras_transformer.cli import main

    float_dir = quantized_dirs["classifier"][0]
    out = tmp_path / "cls8"
    code = main(["quantize", "--model", str(float_dir), "--output", str(out)])
    assert code == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert model_dir_lib.read_metadata(out)["inference"]["quantization"] == (
        "int8"
    )


_SERVE = """
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the SentencePiece op)
texts = json.loads(sys.argv[1])
answers = {}
for path in sys.argv[2:]:  # one process for every SavedModel: one TF start
    serve = tf.saved_model.load(path).signatures["serving_default"]
    (name,) = serve.structured_input_signature[1]
    out = serve(**{name: tf.constant(texts)})
    answers[path] = {k: v.numpy().tolist() if v.dtype != tf.string
                     else [s.decode() for s in v.numpy().ravel()]
                     for k, v in out.items()}
print(json.dumps({
    "keras_transformer": "keras_transformer" in sys.modules,
    "outputs": answers,
}))
"""


def test_quantized_savedmodels_run_in_a_fresh_tensorflow_process(
    quantized_dirs, tmp_path
):
    from keras_transformer.export import export_model

    texts = ["hello world", "a b c"]
    paths = {
        task: str(export_model(str(int8_dir), str(tmp_path / task / "1")))
        for task, (_, int8_dir) in quantized_dirs.items()
    }
    result = subprocess.run(
        [sys.executable, "-c", _SERVE, json.dumps(texts), *paths.values()],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert not served["keras_transformer"]
    for task, (_, int8_dir) in quantized_dirs.items():
        outputs = served["outputs"][paths[task]]
        if task == "classifier":
            api = keras_transformer.load(int8_dir).predict_proba(texts)
            (probabilities,) = [
                np.asarray(v)
                for v in outputs.values()
                if np.asarray(v).shape == np.asarray(api).shape
                and np.asarray(v).dtype.kind == "f"
            ]
            np.testing.assert_allclose(probabilities, api, atol=1e-4)
        elif task == "translation":
            api = keras_transformer.load(int8_dir).translate(texts)
            strings = [v for v in outputs.values() if isinstance(v[0], str)]
            assert api in strings, (api, outputs)
        else:
            strings = [v for v in outputs.values() if isinstance(v[0], str)]
            assert strings and len(strings[0]) == len(texts)
