"""`saved_model_cli run` (a TF1 session restoring the variables, the way
TF Serving's C++ loader loads a model) gives the same outputs as
`tf.saved_model.load`, for every exported model."""

import numpy as np
import pytest
import tensorflow as tf

from tests.serving.paths import CLI_RUN_INPUTS


@pytest.mark.parametrize("kind", sorted(CLI_RUN_INPUTS))
def test_saved_model_cli_run_matches_the_tf2_loader(
    fresh_processes, exports, serving_root, kind
):
    out = fresh_processes[("saved_model_cli_run", kind)]
    assert "Result for output key" in out
    outdir = serving_root / "saved_model_cli_run" / kind
    key, texts = CLI_RUN_INPUTS[kind]
    serve = tf.saved_model.load(str(exports[kind])).signatures[
        "serving_default"
    ]
    expected = {
        name: value.numpy() for name, value in serve(**{key: texts}).items()
    }
    written = {path.stem for path in outdir.glob("*.npy")}
    assert written == set(expected)
    for name, value in expected.items():
        got = np.load(outdir / f"{name}.npy", allow_pickle=True)
        assert got.shape == value.shape, name
        if value.dtype == object:  # strings
            assert got.tolist() == value.tolist(), name
        else:
            np.testing.assert_allclose(got, value, atol=1e-5, err_msg=name)
