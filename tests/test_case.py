"""The shared layer check every layer test starts with.

`check_layer` builds a layer from its class and keyword arguments and checks:
config round-trip, symbolic and eager output shapes, `.keras` save/load
equality with no `custom_objects`, one `fit` step with `jit_compile=True`
that changes the weights, and a call under `mixed_float16` and
`mixed_bfloat16` giving finite outputs in the half dtype.
"""

import keras
import numpy as np

INT_DTYPES = ("int32", "int64")


def _symbolic_inputs(inputs):
    return {
        name: keras.Input(
            shape=value.shape[1:], dtype=str(value.dtype), name=name
        )
        for name, value in inputs.items()
    }


def _first_output(outputs):
    return outputs[0] if isinstance(outputs, (tuple, list)) else outputs


def _wrap_in_model(layer, inputs, call_kwargs):
    symbolic = _symbolic_inputs(inputs)
    outputs = _first_output(layer(**symbolic, **call_kwargs))
    return keras.Model(symbolic, outputs)


def check_layer(
    layer_cls,
    init_kwargs,
    inputs,
    expected_output_shape,
    tmp_path,
    call_kwargs=None,
    run_training=True,
    run_mixed_precision=True,
):
    """Runs the shared checks; returns the float32 layer for more tests.

    Args:
        layer_cls: the layer class.
        init_kwargs: constructor keyword arguments.
        inputs: dict from call-argument name to a numpy array (batch first).
        expected_output_shape: shape of the (first) output for `inputs`.
        tmp_path: a pytest `tmp_path` for the `.keras` file.
        call_kwargs: extra non-tensor call arguments.
        run_training: run the `fit` step check.
        run_mixed_precision: run the mixed precision check.
    """
    call_kwargs = call_kwargs or {}
    expected_output_shape = tuple(expected_output_shape)

    # 1. Config round-trip.
    layer = layer_cls(**init_kwargs)
    config = layer.get_config()
    clone = layer_cls.from_config(config)
    assert clone.get_config() == config
    serialized = keras.saving.serialize_keras_object(layer)
    revived = keras.saving.deserialize_keras_object(serialized)
    assert type(revived) is layer_cls
    assert revived.get_config() == config

    # 2. Symbolic and eager shapes.
    symbolic = _symbolic_inputs(inputs)
    sym_out = _first_output(layer(**symbolic, **call_kwargs))
    assert tuple(sym_out.shape[1:]) == expected_output_shape[1:]
    eager_out = _first_output(layer(**inputs, **call_kwargs))
    assert tuple(eager_out.shape) == expected_output_shape
    eager_out = keras.ops.convert_to_numpy(eager_out)
    assert np.all(np.isfinite(eager_out))

    # 3. `.keras` save and reload, no custom_objects.
    model = _wrap_in_model(layer_cls(**init_kwargs), inputs, call_kwargs)
    expected = keras.ops.convert_to_numpy(model(inputs, training=False))
    path = str(tmp_path / f"{layer_cls.__name__}.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    actual = keras.ops.convert_to_numpy(reloaded(inputs, training=False))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)

    # 4. One fit step under XLA changes the trainable weights.
    if run_training and model.trainable_weights:
        model.compile(
            optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=True
        )
        before = [w.numpy().copy() for w in model.trainable_weights]
        target = np.random.RandomState(0).normal(size=expected.shape)
        history = model.fit(
            inputs,
            target.astype("float32"),
            epochs=1,
            batch_size=len(target),
            verbose=0,
        )
        assert np.isfinite(history.history["loss"][0])
        after = [w.numpy() for w in model.trainable_weights]
        assert any(not np.allclose(a, b) for a, b in zip(before, after)), (
            "a fit step left every weight unchanged"
        )

    # 5. Mixed precision: half-precision outputs, finite values.
    if run_mixed_precision:
        for policy, dtype in (
            ("mixed_float16", "float16"),
            ("mixed_bfloat16", "bfloat16"),
        ):
            half = layer_cls(**init_kwargs, dtype=policy)
            out = _first_output(half(**inputs, **call_kwargs))
            assert keras.backend.standardize_dtype(out.dtype) == dtype
            out = keras.ops.convert_to_numpy(keras.ops.cast(out, "float32"))
            assert np.all(np.isfinite(out))
            for weight in half.weights:
                assert weight.dtype == "float32", weight.path
    return layer
