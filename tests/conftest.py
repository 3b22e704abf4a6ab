"""Shared pytest set-up: quiet TensorFlow, fixed seeds, clean dtype policy."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# JAX multiplies float32 matrices in reduced precision (TF32) on Ampere and
# later GPUs by default; the tests compare against float32 references (on
# an H200, 4 of them failed by up to 2.4e-4 without this).
os.environ.setdefault("JAX_DEFAULT_MATMUL_PRECISION", "highest")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _isolate_keras_state():
    keras.utils.set_random_seed(1234)
    policy = keras.config.dtype_policy()
    yield
    keras.config.set_dtype_policy(policy)
