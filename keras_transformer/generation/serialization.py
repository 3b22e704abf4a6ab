"""Samplers by name or config: `get` and `serialize`."""

import keras

from keras_transformer.generation.beam_search import BeamSampler
from keras_transformer.generation.samplers import (
    GreedySampler,
    RandomSampler,
    Sampler,
    TopKSampler,
    TopPSampler,
)

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
        sampler: a `keras_transformer.generation.Sampler` instance.

    Returns:
        A JSON-friendly dict accepted by `keras_transformer.generation.get`.

    Example:
    >>> import json
    >>> import keras_transformer
    >>> sampler = keras_transformer.generation.BeamSampler(num_beams=3)
    >>> config = keras_transformer.generation.serialize(sampler)
    >>> keras_transformer.generation.get(json.loads(json.dumps(config)))
    BeamSampler(num_beams=3, length_penalty=0.0, return_all_beams=False)
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
    >>> import keras_transformer
    >>> keras_transformer.generation.get("top_p", p=0.9)
    TopPSampler(p=0.9, temperature=1.0, k=None)
    >>> keras_transformer.generation.get(
    ...     {"class_name": "beam", "config": {"num_beams": 4}})
    BeamSampler(num_beams=4, length_penalty=0.0, return_all_beams=False)
    >>> sampler = keras_transformer.generation.TopKSampler(k=5)
    >>> config = keras_transformer.generation.serialize(sampler)
    >>> keras_transformer.generation.get(config, temperature=0.7)
    TopKSampler(k=5, temperature=0.7)
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


def runtime_knobs(sampler):
    """Splits a sampler's settings into what a compiled loop is keyed by
    and the run-time knobs `compile_decode`'s function takes.

    Returns:
        `(key, knobs)`: a hashable key (the sampler's kind and its settings
        that shape the program, e.g. top-k's `k`) and a dict of its
        `temperature`, `p` and `length_penalty`.

    Example:
    >>> from keras_transformer import generation
    >>> generation.serialization.runtime_knobs(
    ...     generation.TopKSampler(k=5, temperature=0.7))
    (('TopKSampler', (('k', 5),)), {'temperature': 0.7})
    """
    sampler = get(sampler)
    config = sampler.get_config()
    knobs = {
        name: config.pop(name)
        for name in ("temperature", "p", "length_penalty")
        if name in config
    }
    return (type(sampler).__name__, tuple(sorted(config.items()))), knobs
