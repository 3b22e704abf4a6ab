"""Compiling a function with the backend's XLA compiler, for the tests."""

import keras
import pytest

BACKEND = keras.backend.backend()


def jit(fn):
    """`fn` compiled by XLA; skips the test on a backend without one."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=True)
    if BACKEND == "jax":
        import jax

        return jax.jit(fn)
    pytest.skip(f"no XLA compiler for the {BACKEND} backend")
