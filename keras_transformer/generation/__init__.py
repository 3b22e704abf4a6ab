"""Text generation: one cached decode loop and the samplers that drive it.

`decode` runs a `keras.ops.while_loop` over a static-shape token buffer and a
model cache; a sampler chooses each next token from the step logits (greedy,
random with temperature, top-k, top-p) or `BeamSampler` runs beam search over
the same loop. `repetition` holds the run-time controls against loops
(`no_repeat_ngram_size`, `repetition_penalty`) that `decode` applies to the
step logits. `compile_decode` compiles the loop once per input shape. See
`keras_transformer.generation.decode` for the `step_fn` contract.
"""

from keras_transformer.generation import repetition, stateless_random
from keras_transformer.generation.beam_search import BeamSampler
from keras_transformer.generation.decoding import compile_decode, decode
from keras_transformer.generation.samplers import (
    GreedySampler,
    RandomSampler,
    Sampler,
    TopKSampler,
    TopPSampler,
)
from keras_transformer.generation.serialization import get, serialize

__all__ = [
    "BeamSampler",
    "GreedySampler",
    "RandomSampler",
    "Sampler",
    "TopKSampler",
    "TopPSampler",
    "compile_decode",
    "decode",
    "get",
    "repetition",
    "serialize",
    "stateless_random",
]
