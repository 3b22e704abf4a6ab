"""Tests of the samplers in keras_transformer.generation (fake logits)."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from keras_transformer import generation
from keras_transformer.generation import stateless_random

NUM_SEEDS = 100


def _logits(batch=4, vocab=20, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, vocab)).astype("float32") * 2.0


def _choose(sampler, logits, seed):
    seed = stateless_random.make_seed(seed)
    return ops.convert_to_numpy(sampler.choose(ops.array(logits), seed))


def _draws(sampler, logits, num_seeds=NUM_SEEDS):
    """Tokens chosen for every seed in range(num_seeds): [num_seeds, B]."""
    return np.stack([_choose(sampler, logits, s) for s in range(num_seeds)])


def test_greedy_is_argmax():
    logits = _logits()
    chosen = _choose(generation.GreedySampler(), logits, 0)
    np.testing.assert_array_equal(chosen, logits.argmax(-1))
    assert chosen.dtype == np.int32


def test_greedy_breaks_ties_by_lowest_id():
    logits = np.array([[1.0, 3.0, 3.0, 0.0]], "float32")
    assert _choose(generation.GreedySampler(), logits, 0).tolist() == [1]


def test_random_sampler_matches_softmax_frequencies():
    # One call with 4000 identical rows: each row gets independent noise.
    probs = np.array([0.5, 0.3, 0.15, 0.05])
    logits = np.tile(np.log(probs).astype("float32"), (4000, 1))
    chosen = _choose(generation.RandomSampler(), logits, 7)
    freq = np.bincount(chosen, minlength=4) / len(chosen)
    np.testing.assert_allclose(freq, probs, atol=0.03)


def test_random_sampler_temperature_flattens():
    probs = np.array([0.7, 0.2, 0.1])
    logits = np.tile(np.log(probs).astype("float32"), (4000, 1))
    chosen = _choose(generation.RandomSampler(temperature=2.0), logits, 3)
    expected = np.sqrt(probs) / np.sqrt(probs).sum()
    freq = np.bincount(chosen, minlength=3) / len(chosen)
    np.testing.assert_allclose(freq, expected, atol=0.03)


@pytest.mark.parametrize(
    "sampler",
    [
        generation.RandomSampler(temperature=1e-4),
        generation.TopKSampler(k=5, temperature=1e-4),
        generation.TopPSampler(p=0.95, temperature=1e-4),
    ],
    ids=["random", "top_k", "top_p"],
)
def test_low_temperature_approaches_greedy(sampler):
    logits = _logits(batch=8)
    draws = _draws(sampler, logits, num_seeds=20)
    np.testing.assert_array_equal(draws, np.tile(logits.argmax(-1), (20, 1)))


@pytest.mark.parametrize(
    "sampler",
    [
        generation.RandomSampler(),
        generation.TopKSampler(k=8),
        generation.TopPSampler(p=0.9),
    ],
    ids=["random", "top_k", "top_p"],
)
def test_seed_reproducibility(sampler):
    logits = np.zeros((64, 50), "float32")
    first = _choose(sampler, logits, 123)
    np.testing.assert_array_equal(first, _choose(sampler, logits, 123))
    other = _choose(sampler, logits, 124)
    assert (first != other).mean() > 0.5
    # A [2] seed tensor works and differs from its folded-in step seeds.
    seed = stateless_random.make_seed(123)
    stepped = stateless_random.fold_in(seed, 1)
    assert (first != _choose(sampler, logits, stepped)).mean() > 0.5


def test_top_k_never_outside_top_k():
    logits = _logits(batch=4, vocab=20, seed=1)
    k = 4
    top = np.argsort(-logits, axis=-1)[:, :k]
    draws = _draws(generation.TopKSampler(k=k), logits)
    for row in range(logits.shape[0]):
        assert set(draws[:, row]) <= set(top[row])
    # With equal logits every one of the k tokens shows up.
    flat = np.zeros((1, 20), "float32")
    flat[0, [3, 7, 11, 15]] = 1.0
    draws = _draws(generation.TopKSampler(k=4), flat)
    assert set(draws[:, 0]) == {3, 7, 11, 15}


def test_top_k_with_tensor_k_and_temperature():
    logits = _logits(batch=4, vocab=20, seed=2)
    sampler = generation.TopKSampler(
        k=ops.convert_to_tensor(3, "int32"),
        temperature=ops.convert_to_tensor(2.0),
    )
    top = np.argsort(-logits, axis=-1)[:, :3]
    draws = _draws(sampler, logits)
    for row in range(logits.shape[0]):
        assert set(draws[:, row]) == set(top[row])


def test_top_k_larger_than_vocab_is_plain_sampling():
    logits = np.zeros((1, 5), "float32")
    draws = _draws(generation.TopKSampler(k=50), logits)
    assert set(draws[:, 0]) == set(range(5))


def test_top_p_never_outside_nucleus():
    # Sorted probabilities 0.5, 0.3, 0.15, 0.05 (shuffled ids): with p=0.7
    # the nucleus is the two most likely tokens (0.5 < 0.7 <= 0.8).
    probs = np.array([0.15, 0.5, 0.05, 0.3])
    logits = np.log(probs).astype("float32")[None, :]
    draws = _draws(generation.TopPSampler(p=0.7), logits)
    assert set(draws[:, 0]) == {1, 3}
    # p smaller than the top probability keeps only the top token.
    draws = _draws(generation.TopPSampler(p=0.3), logits, num_seeds=20)
    assert set(draws[:, 0]) == {1}
    # p=1 keeps everything.
    draws = _draws(generation.TopPSampler(p=1.0), logits, num_seeds=300)
    assert set(draws[:, 0]) == {0, 1, 2, 3}


def test_top_p_with_k_and_tensor_p():
    probs = np.array([0.15, 0.5, 0.05, 0.3])
    logits = np.log(probs).astype("float32")[None, :]
    # k=1 wins over a large p.
    draws = _draws(generation.TopPSampler(p=0.99, k=1), logits, num_seeds=20)
    assert set(draws[:, 0]) == {1}
    p = ops.convert_to_tensor(0.7)
    k = ops.convert_to_tensor(3, "int32")
    draws = _draws(generation.TopPSampler(p=p, k=k), logits)
    # Renormalised over the top 3: 0.53, 0.32, 0.16 -> nucleus {1, 3}.
    assert set(draws[:, 0]) == {1, 3}


def test_samplers_are_jit_compatible():
    logits = _logits(batch=4, vocab=20, seed=3)
    sampler = generation.TopPSampler(p=0.8, k=6)

    def fn(logits, seed):
        return sampler.choose(logits, seed)

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        compiled = tf.function(fn, jit_compile=True)
    elif keras.backend.backend() == "jax":
        import jax

        compiled = jax.jit(fn)
    else:
        pytest.skip("no compiler for this backend")
    seed = stateless_random.make_seed(5)
    np.testing.assert_array_equal(
        ops.convert_to_numpy(compiled(ops.array(logits), seed)),
        _choose(sampler, logits, seed),
    )


def test_stateless_uniform_range_and_mean():
    u = ops.convert_to_numpy(
        stateless_random.uniform((100, 100), stateless_random.make_seed(0))
    )
    assert u.min() > 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.01
    assert len(np.unique(u)) > 9900


@pytest.mark.parametrize(
    "sampler",
    [
        generation.GreedySampler(),
        generation.RandomSampler(temperature=0.7),
        generation.TopKSampler(k=5, temperature=0.9),
        generation.TopPSampler(p=0.9, temperature=1.1, k=40),
        generation.BeamSampler(
            num_beams=4, length_penalty=0.6, return_all_beams=True
        ),
    ],
    ids=lambda s: type(s).__name__,
)
def test_config_round_trip(sampler):
    config = sampler.get_config()
    restored = type(sampler).from_config(config)
    assert restored.get_config() == config
    # Registered: a serialized dict deserializes with no custom_objects.
    serialized = generation.serialize(sampler)
    again = keras.saving.deserialize_keras_object(serialized)
    assert type(again) is type(sampler)
    assert again.get_config() == config
    assert generation.get(serialized).get_config() == config


def test_get_factory():
    assert isinstance(generation.get("greedy"), generation.GreedySampler)
    assert isinstance(generation.get("random"), generation.RandomSampler)
    sampler = generation.get("temperature", temperature=0.5)
    assert isinstance(sampler, generation.RandomSampler)
    assert sampler.temperature == 0.5
    assert generation.get("top_k", k=3).k == 3
    assert generation.get("top_p", p=0.5).p == 0.5
    assert generation.get("beam", num_beams=2).num_beams == 2
    beam = generation.get({"class_name": "beam", "config": {"num_beams": 3}})
    assert beam.num_beams == 3
    same = generation.GreedySampler()
    assert generation.get(same) is same
    with pytest.raises(ValueError, match="identifier=nucleus"):
        generation.get("nucleus")
    with pytest.raises(ValueError, match="identifier"):
        generation.get(3)


@pytest.mark.parametrize(
    "build, name, value",
    [
        (lambda: generation.TopKSampler(k=0), "k", "0"),
        (lambda: generation.TopKSampler(k=-2), "k", "-2"),
        (lambda: generation.TopKSampler(k=2.5), "k", "2.5"),
        (lambda: generation.TopPSampler(p=0.0), "p", "0.0"),
        (lambda: generation.TopPSampler(p=1.5), "p", "1.5"),
        (lambda: generation.TopPSampler(p=0.5, k=0), "k", "0"),
        (
            lambda: generation.RandomSampler(temperature=0.0),
            "temperature",
            "0.0",
        ),
        (
            lambda: generation.TopKSampler(k=3, temperature=-1),
            "temperature",
            "-1",
        ),
        (lambda: generation.BeamSampler(num_beams=0), "num_beams", "0"),
        (lambda: generation.BeamSampler(num_beams=2.0), "num_beams", "2.0"),
        (
            lambda: generation.BeamSampler(num_beams=2, length_penalty=-1.0),
            "length_penalty",
            "-1.0",
        ),
    ],
)
def test_invalid_arguments(build, name, value):
    with pytest.raises(ValueError, match=f"Received: {name}={value}$"):
        build()


def test_beam_sampler_has_no_choose():
    with pytest.raises(ValueError, match="decode"):
        generation.BeamSampler(num_beams=2).choose(ops.zeros((1, 3)))


def test_length_penalty_values():
    sampler = generation.BeamSampler(num_beams=2, length_penalty=0.6)
    values = ops.convert_to_numpy(sampler.penalty(ops.array([0, 1, 10])))
    expected = [((5 + n) / 6) ** 0.6 for n in (0, 1, 10)]
    np.testing.assert_allclose(values, expected, rtol=1e-6)
    assert math.isclose(
        float(generation.BeamSampler(2).penalty(ops.array([7]))[0]), 1.0
    )
