"""Samplers: each one only chooses the next token from next-token logits.

The decode loop (`keras_transformer.generation.decode`) calls a sampler's
`choose(logits, seed)` once per step. Beam search keeps state across steps,
so it lives in `beam_search.py` (`BeamSampler`, whose object only carries
its settings, and the search that `decode` runs for it).

Knobs that a serving signature may want to change at run time (`temperature`,
`k`, `p`, `length_penalty`) accept Python numbers or scalar tensors. Python
numbers are validated in the constructor; tensors are used as they are (they
may be symbolic). `get_config()` needs Python numbers.
"""

import keras
from keras import ops

from keras_transformer.generation import stateless_random

_NEG_INF = float("-inf")


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_temperature(temperature):
    if _is_number(temperature) and not temperature > 0:
        raise ValueError(
            "Argument `temperature` must be a positive number. "
            f"Received: temperature={temperature}"
        )
    if not _is_number(temperature) and not hasattr(temperature, "shape"):
        raise ValueError(
            "Argument `temperature` must be a positive number or a scalar "
            f"tensor. Received: temperature={temperature}"
        )


def _check_k(k, allow_none=False):
    if k is None and allow_none:
        return
    if isinstance(k, bool) or isinstance(k, float):
        raise ValueError(
            f"Argument `k` must be a positive integer. Received: k={k}"
        )
    if isinstance(k, int):
        if k <= 0:
            raise ValueError(
                f"Argument `k` must be a positive integer. Received: k={k}"
            )
        return
    if not hasattr(k, "shape"):
        raise ValueError(
            "Argument `k` must be a positive integer or a scalar tensor. "
            f"Received: k={k}"
        )


def _scale(logits, temperature):
    """Casts logits to float32 and divides them by the temperature."""
    logits = ops.cast(logits, "float32")
    if _is_number(temperature) and temperature == 1.0:
        return logits
    return logits / ops.cast(temperature, "float32")


def _sample_gumbel_max(logits, seed):
    """Index of one sample from softmax(logits) per row, via Gumbel-max."""
    if seed is None:
        seed = stateless_random.make_seed(None)
    noise = stateless_random.gumbel(ops.shape(logits), seed)
    return ops.cast(ops.argmax(logits + noise, axis=-1), "int32")


def _sorted_top(logits, k):
    """Top-k values and token ids, sorted in descending order.

    With a Python int `k` only the `k` best entries are kept (cheap). With a
    tensor `k` the whole vocabulary is sorted (static shapes) and entries of
    rank `>= k` are set to -inf.

    Returns:
        `(values [B, k or V], token_ids [B, k or V])`.
    """
    vocab_size = logits.shape[-1]
    if k is None:
        return ops.top_k(logits, vocab_size)
    if isinstance(k, int):
        return ops.top_k(logits, min(k, vocab_size))
    values, token_ids = ops.top_k(logits, vocab_size)
    rank = ops.arange(vocab_size, dtype="int32")[None, :]
    keep = rank < ops.cast(k, "int32")
    return ops.where(keep, values, _NEG_INF), token_ids


class Sampler:
    """Base class of the samplers: chooses next tokens from logits.

    Subclasses implement `choose(logits, seed)` and `get_config()`, and are
    registered with `keras.saving.register_keras_serializable`, so
    `keras_transformer.generation.serialize` and `get` round-trip them.
    Calling a sampler is calling `choose`.

    Call arguments (of `choose`):
        logits: float tensor `[B, V]`, next-token logits.
        seed: int32 tensor `[2]` or None, default None (see
            `keras_transformer.generation.stateless_random.make_seed`).
            `decode` folds the step index into it at each step.

    Returns (of `choose`):
        int32 tensor `[B]` of chosen token ids.

    Example:
    >>> import keras
    >>> import keras_transformer
    >>> class LastTokenSampler(keras_transformer.generation.Sampler):
    ...     def choose(self, logits, seed=None):
    ...         batch, vocab = keras.ops.shape(logits)
    ...         return keras.ops.full((batch,), vocab - 1, "int32")
    >>> sampler = LastTokenSampler()
    >>> keras.ops.convert_to_numpy(sampler(keras.ops.zeros((2, 5)))).tolist()
    [4, 4]
    """

    def choose(self, logits, seed=None):
        raise NotImplementedError

    def __call__(self, logits, seed=None):
        return self.choose(logits, seed)

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


@keras.saving.register_keras_serializable(package="keras_transformer")
class GreedySampler(Sampler):
    """Chooses the most likely next token (argmax of the logits).

    Deterministic: the seed is ignored. Ties go to the lowest token id.
    Takes no arguments.

    Call arguments:
        logits: float tensor `[B, V]`.
        seed: ignored, default None.

    Returns:
        int32 tensor `[B]`.

    Example:
    >>> import keras
    >>> import keras_transformer
    >>> sampler = keras_transformer.generation.GreedySampler()
    >>> logits = keras.ops.convert_to_tensor([[0.1, 2.0, 0.3]])
    >>> keras.ops.convert_to_numpy(sampler.choose(logits)).tolist()
    [1]
    """

    def choose(self, logits, seed=None):
        return ops.cast(ops.argmax(logits, axis=-1), "int32")


@keras.saving.register_keras_serializable(package="keras_transformer")
class RandomSampler(Sampler):
    """Samples the next token from `softmax(logits / temperature)`.

    Sampling uses the Gumbel-max trick on stateless, counter-based noise, so
    the same seed gives the same tokens, eagerly and under XLA / `jax.jit`.

    Args:
        temperature: positive float or scalar float tensor, default 1.0.
            Below 1 sharpens the distribution (towards greedy), above 1
            flattens it.

    Call arguments:
        logits: float tensor `[B, V]`.
        seed: int32 tensor `[2]` or None, default None (a fresh random
            seed).

    Returns:
        int32 tensor `[B]`.

    Example:
    >>> import keras
    >>> import keras_transformer
    >>> logits = keras.ops.convert_to_tensor([[1.0, 3.0, 2.0]])
    >>> seed = keras_transformer.generation.stateless_random.make_seed(1)
    >>> sampler = keras_transformer.generation.RandomSampler(temperature=0.7)
    >>> token = keras.ops.convert_to_numpy(sampler.choose(logits, seed))
    >>> token.shape, int(token[0]) in (0, 1, 2)
    ((1,), True)
    >>> again = keras.ops.convert_to_numpy(sampler.choose(logits, seed))
    >>> again.tolist() == token.tolist()  # the same seed, the same token
    True

    References:
        - [Ackley et al., 1985](https://doi.org/10.1207/s15516709cog0901_7),
          "A learning algorithm for Boltzmann machines" (temperature).
    """

    def __init__(self, temperature=1.0):
        _check_temperature(temperature)
        self.temperature = temperature

    def choose(self, logits, seed=None):
        return _sample_gumbel_max(_scale(logits, self.temperature), seed)

    def get_config(self):
        return {"temperature": self.temperature}


@keras.saving.register_keras_serializable(package="keras_transformer")
class TopKSampler(Sampler):
    """Samples the next token among the `k` most likely ones.

    Args:
        k: positive int or scalar int tensor. A Python int keeps only `k`
            logits per row (`keras.ops.top_k`); a tensor sorts the whole
            vocabulary so `k` can change at run time without retracing.
        temperature: positive float or scalar float tensor, default 1.0.
            Applied before sampling.

    Call arguments:
        logits: float tensor `[B, V]`.
        seed: int32 tensor `[2]` or None, default None.

    Returns:
        int32 tensor `[B]`, always one of the row's `k` highest logits
        (ties broken by the lower token id).

    Example:
    >>> import keras
    >>> import keras_transformer
    >>> logits = keras.ops.convert_to_tensor([[1.0, 3.0, 2.0, 0.5]])
    >>> sampler = keras_transformer.generation.TopKSampler(k=2)
    >>> tokens = set()
    >>> for seed in range(20):
    ...     seed = keras_transformer.generation.stateless_random.make_seed(seed)
    ...     tokens.add(int(sampler.choose(logits, seed)[0]))
    >>> sorted(tokens)  # only the two highest logits
    [1, 2]

    References:
        - [Fan et al., 2018](https://arxiv.org/abs/1805.04833),
          "Hierarchical Neural Story Generation".
    """

    def __init__(self, k, temperature=1.0):
        _check_k(k)
        _check_temperature(temperature)
        self.k = k
        self.temperature = temperature

    def choose(self, logits, seed=None):
        logits = _scale(logits, self.temperature)
        values, token_ids = _sorted_top(logits, self.k)
        position = _sample_gumbel_max(values, seed)
        chosen = ops.take_along_axis(token_ids, position[:, None], axis=1)
        return ops.cast(chosen[:, 0], "int32")

    def get_config(self):
        return {"k": self.k, "temperature": self.temperature}


@keras.saving.register_keras_serializable(package="keras_transformer")
class TopPSampler(Sampler):
    """Nucleus sampling: samples among the smallest set of most likely tokens
    whose probability reaches `p`.

    The distribution is `softmax(logits / temperature)` (restricted to the top
    `k` first when `k` is given); tokens are sorted by probability and kept
    while the probability mass of the tokens before them is below `p`, so the
    most likely token is always kept.

    Args:
        p: float in (0, 1] or scalar float tensor. The probability mass
            kept.
        temperature: positive float or scalar float tensor, default 1.0.
        k: None, positive int or scalar int tensor, default None (the whole
            vocabulary). A Python int limits the sort to the top `k` logits
            (much cheaper for large vocabularies).

    Call arguments:
        logits: float tensor `[B, V]`.
        seed: int32 tensor `[2]` or None, default None.

    Returns:
        int32 tensor `[B]`.

    Example:
    >>> import keras
    >>> import keras_transformer
    >>> logits = keras.ops.log(keras.ops.convert_to_tensor([[0.1, 0.6, 0.3]]))
    >>> sampler = keras_transformer.generation.TopPSampler(p=0.7)
    >>> tokens = set()
    >>> for seed in range(20):
    ...     seed = keras_transformer.generation.stateless_random.make_seed(seed)
    ...     tokens.add(int(sampler.choose(logits, seed)[0]))
    >>> sorted(tokens)  # 0.6 < 0.7 <= 0.6 + 0.3: tokens 1 and 2 only
    [1, 2]

    References:
        - [Holtzman et al., 2020](https://arxiv.org/abs/1904.09751),
          "The Curious Case of Neural Text Degeneration".
    """

    def __init__(self, p, temperature=1.0, k=None):
        if isinstance(p, bool) or (
            not _is_number(p) and not hasattr(p, "shape")
        ):
            raise ValueError(
                f"Argument `p` must be a float in (0, 1]. Received: p={p}"
            )
        if _is_number(p) and not 0 < p <= 1:
            raise ValueError(
                f"Argument `p` must be a float in (0, 1]. Received: p={p}"
            )
        _check_temperature(temperature)
        _check_k(k, allow_none=True)
        self.p = p
        self.temperature = temperature
        self.k = k

    def choose(self, logits, seed=None):
        logits = _scale(logits, self.temperature)
        values, token_ids = _sorted_top(logits, self.k)
        # Sorted, so column 0 holds the maximum (softmax without warning
        # about a size-1 axis when k=1).
        probs = ops.exp(values - values[:, :1])
        probs = probs / ops.sum(probs, axis=-1, keepdims=True)
        mass_before = ops.cumsum(probs, axis=-1) - probs
        keep = mass_before < ops.cast(self.p, "float32")
        values = ops.where(keep, values, _NEG_INF)
        position = _sample_gumbel_max(values, seed)
        chosen = ops.take_along_axis(token_ids, position[:, None], axis=1)
        return ops.cast(chosen[:, 0], "int32")

    def get_config(self):
        return {"p": self.p, "temperature": self.temperature, "k": self.k}
