"""Counter-based stateless random numbers written with `keras.ops` only.

`keras.random.*` draws its seed through a `SeedGenerator` or a Python int on
the TensorFlow backend and does not accept a seed tensor there, so a seed
that is a traced tensor (inside `tf.function(jit_compile=True)` or
`jax.jit`, or an argument of an exported serving signature) cannot be used
with it. This module hashes `(seed, counter)` pairs with the 32-bit MurmurHash3
finalizer instead. It uses only int32 add, multiply, xor, and and shift, which
wrap the same way on TensorFlow (eager and XLA), JAX and PyTorch, so the same
seed gives the same numbers on every backend.

A seed is an int32 tensor of shape `[2]`. `make_seed` builds one from a Python
int, a scalar tensor or a `[2]` tensor; `fold_in` derives an independent
seed for a step index; `uniform` and `gumbel` draw arrays of any static
shape.
"""

import random as py_random

from keras import ops

# MurmurHash3 fmix32 constants 0x85EBCA6B and 0xC2B2AE35, and the golden
# ratio constant 0x9E3779B9, written as signed int32 values.
_MIX_1 = 0x85EBCA6B - (1 << 32)
_MIX_2 = 0xC2B2AE35 - (1 << 32)
_GOLDEN = 0x9E3779B9 - (1 << 32)


def _shift_right(x, bits):
    """Logical right shift of the 32 bits of an int32 tensor."""
    x = ops.right_shift(x, bits)
    return ops.bitwise_and(x, (1 << (32 - bits)) - 1)


def _mix(x):
    """MurmurHash3 32-bit finalizer on int32 tensors (wrapping arithmetic)."""
    x = ops.bitwise_xor(x, _shift_right(x, 16))
    x = ops.multiply(x, _MIX_1)
    x = ops.bitwise_xor(x, _shift_right(x, 13))
    x = ops.multiply(x, _MIX_2)
    return ops.bitwise_xor(x, _shift_right(x, 16))


def make_seed(seed=None):
    """Converts a seed argument to an int32 seed tensor of shape `[2]`.

    Args:
        seed: None, int, scalar int tensor or int tensor of shape `[2]`,
            default None. With None a fresh seed is drawn from the
            operating system; this happens in Python, so inside a traced
            function it is frozen at trace time: pass a seed tensor there.

    Returns:
        An int32 tensor of shape `[2]`.

    Example:
    >>> import keras
    >>> import keras_transformer
    >>> seed = keras_transformer.generation.stateless_random.make_seed(42)
    >>> keras.ops.convert_to_numpy(seed).tolist()
    [42, 0]
    """
    if seed is None:
        seed = py_random.SystemRandom().randrange(1 << 31)
    if isinstance(seed, bool):
        raise ValueError(
            f"Argument `seed` must be an integer or a tensor. Received: "
            f"seed={seed}"
        )
    if isinstance(seed, int):
        # Keep the low 31 bits so the value fits an int32.
        return ops.convert_to_tensor([seed & 0x7FFFFFFF, 0], dtype="int32")
    if not hasattr(seed, "shape") or not hasattr(seed, "dtype"):
        raise ValueError(
            "Argument `seed` must be None, an integer or an integer tensor. "
            f"Received: seed={seed}"
        )
    seed = ops.cast(ops.convert_to_tensor(seed), "int32")
    if len(seed.shape) == 0:
        return ops.stack([seed, ops.zeros_like(seed)])
    if tuple(seed.shape) != (2,):
        raise ValueError(
            "Argument `seed` must be a scalar or have shape [2]. "
            f"Received: seed={seed}"
        )
    return seed


def fold_in(seed, data):
    """Derives a new seed from `seed` and an integer `data` (e.g. a step).

    Args:
        seed: int32 tensor of shape `[2]`.
        data: int or scalar int32 tensor.

    Returns:
        An int32 tensor of shape `[2]`, independent of `seed` for sampling
        purposes.

    Example:
    >>> import keras
    >>> import keras_transformer
    >>> random = keras_transformer.generation.stateless_random
    >>> seed = random.make_seed(42)
    >>> step_3 = keras.ops.convert_to_numpy(random.fold_in(seed, 3))
    >>> step_4 = keras.ops.convert_to_numpy(random.fold_in(seed, 4))
    >>> step_3.tolist() != step_4.tolist()
    True
    >>> step_3.tolist() == keras.ops.convert_to_numpy(
    ...     random.fold_in(seed, 3)).tolist()
    True
    """
    data = ops.cast(data, "int32")
    first = _mix(ops.bitwise_xor(seed[0], _mix(data + _GOLDEN)))
    second = _mix(ops.add(seed[1], _mix(ops.bitwise_xor(data, _MIX_1))))
    return ops.stack([first, second])


def _bits(shape, seed):
    """Random int32 bits of `shape` from a `[2]` seed.

    The counter runs over the flattened shape, so the values drawn for an
    element depend only on the seed and the element's flat position.
    """
    size = 1
    for dim in shape:
        size = size * dim
    counter = ops.arange(size, dtype="int32")
    key_1 = _mix(seed[0])
    key_2 = _mix(ops.bitwise_xor(seed[1], _GOLDEN))
    bits = _mix(ops.multiply(counter, _GOLDEN) + key_1)
    bits = _mix(ops.bitwise_xor(bits, key_2))
    return ops.reshape(bits, shape)


def uniform(shape, seed, dtype="float32"):
    """Stateless uniform samples in the open interval (0, 1).

    Args:
        shape: tuple of ints; a dimension may also be a scalar int tensor
            where the backend allows dynamic shapes (TensorFlow graphs).
        seed: int32 tensor of shape `[2]` (see `make_seed`).
        dtype: str, default `"float32"`. Float dtype of the result.

    Returns:
        A tensor of `shape` with values in (0, 1) (never exactly 0 or 1).

    Example:
    >>> import keras
    >>> import keras_transformer
    >>> random = keras_transformer.generation.stateless_random
    >>> u = keras.ops.convert_to_numpy(
    ...     random.uniform((2, 3), random.make_seed(1)))
    >>> u.shape, bool(((0 < u) & (u < 1)).all())
    ((2, 3), True)
    """
    # 24 random bits give float32-exact values k / 2**24; the half step
    # offset keeps them away from 0 and 1.
    bits = _shift_right(_bits(shape, seed), 8)
    values = ops.cast(bits, "float32") * (1.0 / (1 << 24)) + 0.5 / (1 << 24)
    return ops.cast(values, dtype)


def gumbel(shape, seed, dtype="float32"):
    """Stateless standard Gumbel samples, `-log(-log(U))`.

    Adding them to logits and taking the argmax draws one sample from
    `softmax(logits)` (the Gumbel-max trick).

    Args:
        shape: tuple of ints (see `uniform`).
        seed: int32 tensor of shape `[2]` (see `make_seed`).
        dtype: str, default `"float32"`. Float dtype of the result.

    Returns:
        A tensor of `shape`.

    Example:
    >>> import keras
    >>> import keras_transformer
    >>> random = keras_transformer.generation.stateless_random
    >>> noise = random.gumbel((1000,), random.make_seed(7))
    >>> round(float(keras.ops.mean(noise)), 1)  # Euler's constant, 0.577
    0.6

    References:
        - [Maddison et al., 2014](https://arxiv.org/abs/1411.0030),
          "A* Sampling" (the Gumbel-max trick, section 2).
    """
    u = uniform(shape, seed, "float32")
    return ops.cast(-ops.log(-ops.log(u)), dtype)


__all__ = ["fold_in", "gumbel", "make_seed", "uniform"]
