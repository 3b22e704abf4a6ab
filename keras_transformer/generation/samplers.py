"""Samplers: each one only chooses the next token from next-token logits.

The decode loop (`keras_transformer.generation.decode`) calls a sampler's
`choose(logits, seed)` once per step. Beam search (`BeamSampler`) keeps state
across steps, so `decode` runs it with its own loop body; the sampler object
only carries its settings.

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

    Subclasses implement `choose(logits, seed)` and `get_config()`.

    Call arguments (of `choose`):
        logits: float tensor `[B, V]`, next-token logits.
        seed: int32 tensor of shape `[2]` (see
            `keras_transformer.generation.stateless_random.make_seed`) or
            `None`. `decode` folds the step index into it at each step.

    Returns (of `choose`):
        int32 tensor `[B]` of chosen token ids.
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

    Call arguments:
        logits: float tensor `[B, V]`.
        seed: ignored.

    Returns:
        int32 tensor `[B]`.

    Example:

    >>> sampler = keras_transformer.generation.GreedySampler()
    >>> sampler.choose(keras.ops.array([[0.1, 2.0, 0.3]]))  # -> [1]
    """

    def choose(self, logits, seed=None):
        return ops.cast(ops.argmax(logits, axis=-1), "int32")


@keras.saving.register_keras_serializable(package="keras_transformer")
class RandomSampler(Sampler):
    """Samples the next token from `softmax(logits / temperature)`.

    Sampling uses the Gumbel-max trick on stateless, counter-based noise, so
    the same seed gives the same tokens, eagerly and under XLA / `jax.jit`.

    Args:
        temperature: positive float or scalar tensor. Below 1 sharpens the
            distribution (towards greedy), above 1 flattens it.

    Call arguments:
        logits: float tensor `[B, V]`.
        seed: int32 tensor `[2]` or `None` (a fresh random seed).

    Returns:
        int32 tensor `[B]`.

    Example:

    >>> logits = keras.ops.array([[1.0, 3.0, 2.0]])
    >>> seed = keras_transformer.generation.stateless_random.make_seed(1)
    >>> sampler = keras_transformer.generation.RandomSampler(temperature=0.7)
    >>> sampler.choose(logits, seed)  # int32 [1]

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
        temperature: positive float or scalar tensor applied before
            sampling.

    Call arguments:
        logits: float tensor `[B, V]`.
        seed: int32 tensor `[2]` or `None`.

    Returns:
        int32 tensor `[B]`, always one of the row's `k` highest logits
        (ties broken by the lower token id).

    Example:

    >>> logits = keras.ops.array([[1.0, 3.0, 2.0, 0.5]])
    >>> seed = keras_transformer.generation.stateless_random.make_seed(1)
    >>> sampler = keras_transformer.generation.TopKSampler(k=2)
    >>> sampler.choose(logits, seed)  # 1 or 2

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
        p: float in (0, 1] or scalar tensor.
        temperature: positive float or scalar tensor.
        k: `None`, positive int or scalar int tensor. A Python int limits the
            sort to the top `k` logits (much cheaper for large vocabularies).

    Call arguments:
        logits: float tensor `[B, V]`.
        seed: int32 tensor `[2]` or `None`.

    Returns:
        int32 tensor `[B]`.

    Example:

    >>> logits = keras.ops.log(keras.ops.array([[0.1, 0.6, 0.3]]))
    >>> seed = keras_transformer.generation.stateless_random.make_seed(1)
    >>> sampler = keras_transformer.generation.TopPSampler(p=0.7)
    >>> sampler.choose(logits, seed)  # 1 or 2 (0.6 < 0.7 <= 0.9)

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


@keras.saving.register_keras_serializable(package="keras_transformer")
class BeamSampler(Sampler):
    """Beam search settings; `decode` runs the search over the shared cache.

    Each row keeps `num_beams` hypotheses. At every step all `num_beams * V`
    one-token extensions are scored by their summed log-probability divided
    by the GNMT length penalty `((5 + length) / 6) ** length_penalty`
    (`length` counts generated tokens, stop token included); the best
    `num_beams` survive and the cache is reordered by their parent beam. A
    finished beam (it produced a stop token) only extends with the pad token
    at zero cost, so it competes with the live beams at its final score.

    Args:
        num_beams: int >= 1. `num_beams=1` is greedy search.
        length_penalty: float >= 0 or scalar tensor (GNMT alpha). 0 ranks
            by the summed log-probability; larger values favour longer
            outputs.
        return_all_beams: bool. If True, `decode` returns all beams and
            their scores, best first.

    Returns (from `decode`):
        int32 `[B, L]` best beams, or with `return_all_beams=True` a tuple
        `(token_ids [B, K, L], scores [B, K])`.

    Example:

    >>> sampler = keras_transformer.generation.BeamSampler(num_beams=4)
    >>> keras_transformer.generation.decode(
    ...     step_fn, token_ids, prompt_mask, cache, sampler, start_index=1
    ... )

    References:
        - [Wu et al., 2016](https://arxiv.org/abs/1609.08144), "Google's
          Neural Machine Translation System" (length penalty, section 7).
    """

    def __init__(self, num_beams, length_penalty=0.0, return_all_beams=False):
        if (
            isinstance(num_beams, bool)
            or not isinstance(num_beams, int)
            or num_beams < 1
        ):
            raise ValueError(
                "Argument `num_beams` must be an integer >= 1. "
                f"Received: num_beams={num_beams}"
            )
        if _is_number(length_penalty) and length_penalty < 0:
            raise ValueError(
                "Argument `length_penalty` must be >= 0. "
                f"Received: length_penalty={length_penalty}"
            )
        if not _is_number(length_penalty) and not hasattr(
            length_penalty, "shape"
        ):
            raise ValueError(
                "Argument `length_penalty` must be a number or a scalar "
                f"tensor. Received: length_penalty={length_penalty}"
            )
        if not isinstance(return_all_beams, bool):
            raise ValueError(
                "Argument `return_all_beams` must be a bool. "
                f"Received: return_all_beams={return_all_beams}"
            )
        self.num_beams = num_beams
        self.length_penalty = length_penalty
        self.return_all_beams = return_all_beams

    def choose(self, logits, seed=None):
        raise ValueError(
            "BeamSampler keeps state across steps and has no per-step "
            "`choose`; pass it to `keras_transformer.generation.decode`. "
            f"Received: sampler={self!r}"
        )

    def penalty(self, lengths):
        """GNMT length penalty `((5 + lengths) / 6) ** length_penalty`.

        Args:
            lengths: int or float tensor of generated lengths.

        Returns:
            float32 tensor of the shape of `lengths`.
        """
        lengths = ops.cast(lengths, "float32")
        alpha = self.length_penalty
        if _is_number(alpha) and alpha == 0:
            return ops.ones_like(lengths)
        return ops.power((5.0 + lengths) / 6.0, ops.cast(alpha, "float32"))

    def get_config(self):
        return {
            "num_beams": self.num_beams,
            "length_penalty": self.length_penalty,
            "return_all_beams": self.return_all_beams,
        }


_ALIASES = {
    "greedy": GreedySampler,
    "random": RandomSampler,
    "temperature": RandomSampler,
    "top_k": TopKSampler,
    "top_p": TopPSampler,
    "beam": BeamSampler,
}


def serialize(sampler):
    """Returns the Keras serialization dict of a sampler.

    Args:
        sampler: a `Sampler` instance.

    Returns:
        A JSON-friendly dict accepted by `keras_transformer.generation.get`.
    """
    return keras.saving.serialize_keras_object(sampler)


def get(identifier, **kwargs):
    """Returns a sampler from a name, a config dict or a sampler instance.

    Args:
        identifier: a `Sampler` (returned as is), one of the names
            `"greedy"`, `"random"` (alias `"temperature"`), `"top_k"`,
            `"top_p"`, `"beam"`, a dict made by
            `keras_transformer.generation.serialize`, or a plain dict
            `{"class_name": name, "config": {...}}` with one of the names.
        **kwargs: constructor arguments used with a name, e.g.
            `get("top_k", k=5)`.

    Returns:
        A `Sampler` instance.

    Example:

    >>> keras_transformer.generation.get("top_p", p=0.9)
    >>> keras_transformer.generation.get({"class_name": "beam",
    ...                                  "config": {"num_beams": 4}})
    """
    if isinstance(identifier, Sampler):
        if kwargs:
            raise ValueError(
                "Keyword arguments are only accepted with a sampler name. "
                f"Received: kwargs={kwargs}"
            )
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key not in _ALIASES:
            raise ValueError(
                f"Unknown sampler name. Expected one of {sorted(_ALIASES)}. "
                f"Received: identifier={identifier}"
            )
        return _ALIASES[key](**kwargs)
    if isinstance(identifier, dict):
        name = identifier.get("class_name")
        if isinstance(name, str) and name.lower() in _ALIASES:
            config = dict(identifier.get("config") or {})
            config.update(kwargs)
            return _ALIASES[name.lower()](**config)
        sampler = keras.saving.deserialize_keras_object(identifier)
        if not isinstance(sampler, Sampler):
            raise ValueError(
                "The config does not describe a sampler. "
                f"Received: identifier={identifier}"
            )
        if kwargs:
            config = {**sampler.get_config(), **kwargs}
            sampler = type(sampler).from_config(config)
        return sampler
    raise ValueError(
        "Argument `identifier` must be a sampler, a name or a config dict. "
        f"Received: identifier={identifier}"
    )
