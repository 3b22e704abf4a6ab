"""Reduced-precision export: `cast_model` against the float32 model
(weights are its rounded values, the output layer stays float32, outputs
close), bad `dtype`s refused by name, the CLI flag, and bfloat16/float16
SavedModels of every task served in a fresh TF-only process: float32
probabilities equal to the cast model's in Python, translations equal to
it, and variables about half the float32 export's bytes."""

import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_transformer
from keras_transformer.export import ExportError, cast_model, export_model
from keras_transformer.quantization import quantize_model_dir

TEXTS = ["hello world", "and god said let there be light"]


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    from tests.inference.model_dirs import build_model_dirs

    return build_model_dirs(tmp_path_factory.mktemp("export_dtype"))


def _variable_bytes(saved_model):
    folder = pathlib.Path(saved_model) / "variables"
    return sum(f.stat().st_size for f in folder.iterdir())


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_cast_model_rounds_every_weight_and_keeps_the_logits_float32(
    dirs, dtype
):
    source = keras_transformer.load(dirs["classifier"])
    model = cast_model(source.model, dtype)
    original = {v.path: v for v in source.model.variables}
    for variable in model.variables:
        if "seed_generator" in variable.path:
            continue
        layer = variable.path.split("/")[-2]
        expected = "float32" if layer == "logits" else dtype
        assert variable.dtype == expected, variable.path
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(variable),
            keras.ops.convert_to_numpy(
                keras.ops.cast(original[variable.path], expected)
            ),
            err_msg=variable.path,
        )
    assert model.get_layer("logits").compute_dtype == "float32"
    rng = np.random.default_rng(0)
    features = {
        name: rng.integers(
            1, 2 if "segment" in name or "mask" in name else 100, size=(2, 24)
        ).astype("int32")
        for name in (t.name.split(":")[0] for t in model.inputs)
    }
    full = source.model(features, training=False)
    low = model(features, training=False)
    assert keras.ops.convert_to_numpy(low).dtype == np.float32
    full_p = keras.ops.convert_to_numpy(keras.ops.softmax(full))
    low_p = keras.ops.convert_to_numpy(keras.ops.softmax(low))
    np.testing.assert_allclose(low_p, full_p, atol=0.1)


def test_bad_dtype_or_an_int8_model_is_refused_by_name(dirs, tmp_path):
    with pytest.raises(ExportError, match="dtype.*float64"):
        export_model(dirs["gpt"], tmp_path / "a" / "1", dtype="float64")
    int8 = quantize_model_dir(dirs["classifier"], tmp_path / "cls8")
    with pytest.raises(ExportError, match="int8-quantized"):
        export_model(int8, tmp_path / "b" / "1", dtype="bfloat16")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_cli_export_dtype(dirs, tmp_path, capsys):
    from keras_transformer.cli import main

    out = tmp_path / "cls" / "1"
    argv = ["export", "--model", str(dirs["classifier"]), "--output"]
    assert main([*argv, str(out), "--dtype", "float16"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    import tensorflow as tf

    loaded = tf.saved_model.load(str(out))
    assert {v.dtype for v in loaded._serving_variables} == {
        tf.float16,
        tf.float32,  # the logits layer
    }


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
    answers[path] = {k: [v.dtype.name, v.numpy().tolist()
                         if v.dtype != tf.string
                         else [s.decode() for s in v.numpy().ravel()]]
                     for k, v in out.items()}
print(json.dumps({
    "keras_transformer": "keras_transformer" in sys.modules,
    "outputs": answers,
}))
"""

# Each task and each 16-bit type once by default; the other decoder pairs
# in the slow run.
_CASES = [
    ("classifier", "float32"),
    ("classifier", "bfloat16"),
    ("translation", "bfloat16"),
    ("gpt", "float16"),
]
_MORE_CASES = [("translation", "float16"), ("gpt", "bfloat16")]


@pytest.mark.parametrize(
    "cases",
    [
        pytest.param(_CASES, id="default"),
        pytest.param(_MORE_CASES, id="more", marks=pytest.mark.slow),
    ],
)
def test_reduced_precision_savedmodels_serve_in_a_fresh_process(
    dirs, tmp_path, cases
):
    paths = {
        (task, dtype): str(
            export_model(
                dirs[task], tmp_path / f"{task}-{dtype}" / "1", dtype=dtype
            )
        )
        for task, dtype in cases
    }
    result = subprocess.run(
        [sys.executable, "-c", _SERVE, json.dumps(TEXTS), *paths.values()],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert not served["keras_transformer"]
    if ("classifier", "float32") in paths:
        ratio = _variable_bytes(
            paths["classifier", "bfloat16"]
        ) / _variable_bytes(paths["classifier", "float32"])
        assert 0.4 < ratio < 0.6, ratio
    for (task, dtype), path in paths.items():
        outputs = served["outputs"][path]
        source = keras_transformer.load(dirs[task])
        if task == "classifier":
            (probabilities,) = [
                np.asarray(v)
                for kind, v in outputs.values()
                if kind == "float32" and np.ndim(v) == 2
            ]
            if dtype == "float32":
                expected = source.predict_proba(TEXTS)
            else:
                cast = type(source)(
                    cast_model(source.model, dtype),
                    source.tokenizer,
                    source.class_names,
                    source.sequence_length,
                    source.metadata,
                )
                expected = cast.predict_proba(TEXTS)
            np.testing.assert_allclose(probabilities, expected, atol=1e-3)
            np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
            continue
        strings = [v for kind, v in outputs.values() if kind == "string"]
        assert strings and len(strings[0]) == len(TEXTS)
        if task == "translation":
            cast = type(source)(
                cast_model(source.model, dtype),
                source.tokenizer,
                source.metadata,
            )
            assert cast.translate(TEXTS) in strings, (dtype, outputs)
