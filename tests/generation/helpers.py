"""Shared by the generation tests: XLA compiling, prompt buffers."""

import keras
import numpy as np
import pytest
from keras import ops

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


def to_numpy(x):
    return ops.convert_to_numpy(x)


def buffer(prompts, length, fill=0):
    """Left-aligned prompt buffer [B, L] and prompt mask [B, L]."""
    token_ids = np.full((len(prompts), length), fill, "int32")
    prompt_mask = np.zeros((len(prompts), length), bool)
    for row, prompt in enumerate(prompts):
        token_ids[row, : len(prompt)] = prompt
        prompt_mask[row, : len(prompt)] = True
    return token_ids, prompt_mask
