"""GPT-style decoder-only language model and its cached generator.

`gpt_lm` builds the model: a stack of pre-LN `TransformerDecoder` blocks
without cross-attention, learned positions, a final layer normalization and
an output projection tied to the token embeddings. `GPTGenerator` runs fast
cached generation over it with the one decode loop of
`keras_transformer.generation` (compiled once per input shape).

Everything here uses `keras` and `keras.ops` only, so it runs on the
TensorFlow, JAX and PyTorch backends.
"""

import keras
from keras import ops

from keras_transformer import generation
from keras_transformer.layers import (
    TokenAndPositionEmbedding,
    TransformerDecoder,
)
from keras_transformer.layers._utils import check_positive_int

EMBEDDING_LAYER = "embeddings"
FINAL_NORM_LAYER = "final_norm"
BLOCK_PREFIX = "decoder_block_"

# Constructor arguments used when a sampler is given by name only.
_SAMPLER_DEFAULTS = {
    "top_k": {"k": 40},
    "top_p": {"p": 0.9},
    "beam": {"num_beams": 4},
}


def gpt_lm(
    vocabulary_size,
    num_layers,
    hidden_dim,
    num_heads,
    intermediate_dim,
    max_sequence_length,
    dropout=0.0,
    activation="gelu",
    layer_norm_epsilon=1e-5,
    initializer_range=0.02,
    name="gpt_lm",
    dtype=None,
):
    """A GPT-style causal language model (decoder-only Transformer).

    Token embeddings plus learned positions, `num_layers` pre-LN decoder
    blocks with causal self-attention and a GELU feed-forward network, a
    final layer normalization, and logits computed with the transposed
    token embedding matrix (tied input/output embeddings). Token id 0 is
    padding.

    Args:
        vocabulary_size: number of token ids V.
        num_layers: number of decoder blocks.
        hidden_dim: model size D; `num_heads` must divide it.
        num_heads: attention heads per block.
        intermediate_dim: hidden size of the feed-forward networks.
        max_sequence_length: number of learned positions (longest input,
            prompt plus generated tokens).
        dropout: dropout rate of embeddings, attention and residuals.
        activation: feed-forward activation.
        layer_norm_epsilon: epsilon of every layer normalization.
        initializer_range: standard deviation of the normal initializers of
            the embeddings and dense kernels.
        name: model name.
        dtype: dtype policy of the layers (e.g. `"mixed_float16"`); the
            global policy when None. Logits are always float32.

    Returns:
        A functional `keras.Model` with inputs `{"token_ids": int [B, T],
        "padding_mask": bool [B, T]}` and output logits float32 [B, T, V]
        for the token at each next position.

    Example:
    >>> import numpy as np
    >>> from keras_transformer.applications.gpt import gpt_lm
    >>> model = gpt_lm(vocabulary_size=50, num_layers=2, hidden_dim=16,
    ...                num_heads=2, intermediate_dim=32,
    ...                max_sequence_length=32)
    >>> logits = model({"token_ids": np.array([[2, 7, 9]]),
    ...                 "padding_mask": np.array([[True, True, True]])})
    >>> tuple(logits.shape)
    (1, 3, 50)

    References:
        Radford et al., "Language Models are Unsupervised Multitask
        Learners", 2019 (GPT-2: pre-LN, tied embeddings).
    """
    for arg in (
        "vocabulary_size",
        "num_layers",
        "hidden_dim",
        "num_heads",
        "intermediate_dim",
        "max_sequence_length",
    ):
        check_positive_int(arg, locals()[arg])
    if hidden_dim % num_heads:
        raise ValueError(
            f"`num_heads` must divide `hidden_dim` ({hidden_dim}). "
            f"Received: num_heads={num_heads}"
        )
    initializer = keras.initializers.RandomNormal(stddev=initializer_range)

    # Inputs.
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    padding_mask = keras.Input((None,), dtype="bool", name="padding_mask")

    # Layers.
    embedding = TokenAndPositionEmbedding(
        vocabulary_size,
        max_sequence_length,
        hidden_dim,
        position="learned",
        mask_zero=True,
        dropout=dropout,
        embeddings_initializer=initializer,
        position_initializer=initializer,
        dtype=dtype,
        name=EMBEDDING_LAYER,
    )
    x = embedding(token_ids)  # [B, T, D]
    for index in range(num_layers):
        x = TransformerDecoder(
            intermediate_dim,
            num_heads,
            dropout=dropout,
            activation=activation,
            layer_norm_epsilon=layer_norm_epsilon,
            normalize_first=True,
            kernel_initializer=initializer,
            dtype=dtype,
            name=f"{BLOCK_PREFIX}{index}",
        )(x, decoder_padding_mask=padding_mask)  # [B, T, D]
    x = keras.layers.LayerNormalization(
        epsilon=layer_norm_epsilon, dtype=dtype, name=FINAL_NORM_LAYER
    )(x)
    logits = embedding(x, reverse=True)  # [B, T, V]

    # Outputs.
    logits = keras.layers.Activation("linear", dtype="float32", name="logits")(
        logits
    )
    return keras.Model(
        inputs={"token_ids": token_ids, "padding_mask": padding_mask},
        outputs=logits,
        name=name,
    )


class GPTGenerator:
    """Cached text generation for a model made by `gpt_lm`.

    The model's layers are reused as they are (found by name, so a model
    reloaded from a `.keras` file works too). The self-attention keys and
    values of every block live in a static-shape cache [B, 2, L, N, H] per
    layer; the prompt is processed in one batched pass (prefill) and each
    new token costs one single-position step. `generate` runs the whole
    loop compiled (XLA on TensorFlow, `jax.jit` on JAX) and keeps one
    compiled function per sampler kind, reused for every call: a new input
    shape (batch size, prompt width, length) compiles once, later calls with
    the same shapes run the compiled program.

    The cache passed through `keras_transformer.generation.decode` is a dict
    `{"layers": tuple of [B, 2, L, N, H], "prompt": int32 [B, P],
    "pending": bool [B]}`: while `pending` is True the first step runs the
    prefill of `prompt` (inside the compiled loop, with `keras.ops.cond`).

    Args:
        model: a `keras.Model` built by `gpt_lm`.
        pad_token_id: the padding id written after a stop token.

    Example:
    >>> from keras_transformer.applications.gpt import GPTGenerator, gpt_lm
    >>> model = gpt_lm(50, 2, 16, 2, 32, max_sequence_length=32)
    >>> generator = GPTGenerator(model)
    >>> outputs = generator.generate([[2, 7], [2, 7, 9, 4]],
    ...                              max_new_tokens=5, seed=1)
    >>> [len(row) for row in outputs]
    [5, 5]
    """

    def __init__(self, model, pad_token_id=0):
        try:
            self.embedding = model.get_layer(EMBEDDING_LAYER)
            self.final_norm = model.get_layer(FINAL_NORM_LAYER)
        except ValueError:
            raise ValueError(
                "`model` must be a GPT model built by "
                "`keras_transformer.applications.gpt.gpt_lm` (layers "
                f"'{EMBEDDING_LAYER}', '{FINAL_NORM_LAYER}'). "
                f"Received: model={model.name!r}"
            ) from None
        self.blocks = [
            layer
            for layer in model.layers
            if layer.name.startswith(BLOCK_PREFIX)
        ]
        if not self.blocks:
            raise ValueError(
                "`model` has no decoder blocks named "
                f"'{BLOCK_PREFIX}<i>'. Received: model={model.name!r}"
            )
        self.model = model
        self.pad_token_id = pad_token_id
        self.max_sequence_length = self.embedding.sequence_length
        self.vocabulary_size = self.embedding.vocabulary_size
        attention = self.blocks[0].self_attention
        self.num_heads = attention.num_heads
        self.head_dim = attention.head_dim
        self.cache_dtype = self.embedding.compute_dtype
        self._compiled = {}
        # Number of times the decode loop was traced (for tests and logs).
        self.trace_count = 0

    # ------------------------------------------------------------------
    # Cache and step: the `step_fn` contract of `generation.decode`.
    # ------------------------------------------------------------------
    def empty_cache(self, prompt_token_ids, max_length):
        """Returns a cache whose first decode step runs the prefill.

        Args:
            prompt_token_ids: int [B, P] left-aligned prompts (0 = padding).
            max_length: the token buffer length L (at most
                `max_sequence_length`).

        Returns:
            The cache dict described in the class docstring.
        """
        prompt_token_ids = ops.cast(prompt_token_ids, "int32")
        batch_size = ops.shape(prompt_token_ids)[0]
        layers = tuple(
            ops.zeros(
                (batch_size, 2, max_length, self.num_heads, self.head_dim),
                dtype=self.cache_dtype,
            )
            for _ in self.blocks
        )
        return {
            "layers": layers,
            "prompt": prompt_token_ids,
            "pending": ops.ones((batch_size,), dtype="bool"),
        }

    def _prefill_layers(self, prompt_token_ids, layers):
        x = self.embedding(prompt_token_ids)  # [B, P, D]
        updated = []
        for block, layer_cache in zip(self.blocks, layers, strict=True):
            x, layer_cache = block(
                x,
                self_attention_cache=layer_cache,
                self_attention_cache_update_index=0,
            )
            updated.append(layer_cache)
        return tuple(updated)

    def prefill(self, cache):
        """Writes the prompt's keys and values into the cache.

        Causal attention makes every prompt position depend only on the
        tokens before it, so padding after a shorter prompt changes nothing
        for that prompt; the decode loop rewrites those positions.

        Args:
            cache: a cache from `empty_cache`.

        Returns:
            The cache with positions `0 .. P - 1` filled and `pending` False.
        """
        layers = self._prefill_layers(cache["prompt"], cache["layers"])
        return {
            "layers": layers,
            "prompt": cache["prompt"],
            "pending": ops.zeros_like(cache["pending"]),
        }

    def step_fn(self, token_ids, index, cache):
        """One cached decoding step (see `generation.decode`).

        Args:
            token_ids: int32 [B], the tokens at position `index`.
            index: scalar int, their position.
            cache: the cache dict.

        Returns:
            `(logits [B, V] float32, cache)`: next-token logits for
            position `index + 1` and the updated cache.
        """
        layers = ops.cond(
            cache["pending"][0],
            lambda: self._prefill_layers(cache["prompt"], cache["layers"]),
            lambda: tuple(cache["layers"]),
        )
        x = self.embedding(token_ids[:, None], start_index=index)  # [B, 1, D]
        updated = []
        for block, layer_cache in zip(self.blocks, layers, strict=True):
            x, layer_cache = block(
                x,
                self_attention_cache=layer_cache,
                self_attention_cache_update_index=index,
            )
            updated.append(layer_cache)
        x = self.final_norm(x)
        logits = self.embedding(x, reverse=True)[:, 0, :]  # [B, V]
        cache = {
            "layers": tuple(updated),
            "prompt": cache["prompt"],
            "pending": ops.zeros_like(cache["pending"]),
        }
        return ops.cast(logits, "float32"), cache

    # ------------------------------------------------------------------
    # Batched, compiled generation.
    # ------------------------------------------------------------------
    def prepare(self, prompts_token_ids, max_new_tokens):
        """Builds the left-aligned token buffer for a batch of prompts.

        Prompts too long to leave room for `max_new_tokens` within
        `max_sequence_length` keep their last tokens.

        Args:
            prompts_token_ids: list of B non-empty lists of int ids.
            max_new_tokens: int, tokens to generate per prompt.

        Returns:
            A tuple `(prompt [B, P], token_ids [B, L], prompt_mask [B, L],
            lengths)` of numpy-convertible lists, where P is the longest
            (clipped) prompt, L = P + max_new_tokens and `lengths` the
            clipped prompt lengths.
        """
        check_positive_int("max_new_tokens", max_new_tokens)
        if max_new_tokens >= self.max_sequence_length:
            raise ValueError(
                "`max_new_tokens` must leave room for at least one prompt "
                f"token within the model's {self.max_sequence_length} "
                f"positions. Received: max_new_tokens={max_new_tokens}"
            )
        if not prompts_token_ids:
            raise ValueError(
                "`prompts_token_ids` must hold at least one prompt. "
                "Received: prompts_token_ids=[]"
            )
        room = self.max_sequence_length - max_new_tokens
        prompts = []
        for index, row in enumerate(prompts_token_ids):
            row = [int(t) for t in row]
            if not row:
                raise ValueError(
                    "Every prompt needs at least one token (e.g. the start "
                    f"token). Received: an empty prompt, "
                    f"prompts_token_ids[{index}]=[]"
                )
            prompts.append(row[-room:])
        lengths = [len(row) for row in prompts]
        width = max(lengths)
        length = width + max_new_tokens
        prompt = [row + [0] * (width - len(row)) for row in prompts]
        token_ids = [row + [0] * (length - len(row)) for row in prompts]
        prompt_mask = [[i < n for i in range(length)] for n in lengths]
        return prompt, token_ids, prompt_mask, lengths

    def _decode_fn(self, sampler, stop_token_ids):
        if isinstance(sampler, str):
            sampler = generation.get(
                sampler, **_SAMPLER_DEFAULTS.get(sampler.lower(), {})
            )
        sampler = generation.get(sampler)
        config = sampler.get_config()
        knobs = {
            name: config.pop(name)
            for name in ("temperature", "p", "length_penalty")
            if name in config
        }
        stop_key = None
        if stop_token_ids is not None:
            stop_key = (
                (int(stop_token_ids),)
                if isinstance(stop_token_ids, int)
                else tuple(int(t) for t in stop_token_ids)
            )
        key = (type(sampler).__name__, tuple(sorted(config.items())), stop_key)
        if key not in self._compiled:

            def step_fn(token_ids, index, cache):
                self.trace_count += 1
                return self.step_fn(token_ids, index, cache)

            self._compiled[key] = generation.compile_decode(
                step_fn,
                sampler,
                stop_token_ids=list(stop_key) if stop_key else None,
                pad_token_id=self.pad_token_id,
                variables=self.model.variables,
            )
        return self._compiled[key], knobs

    def generate(
        self,
        prompts_token_ids,
        max_new_tokens=32,
        sampler="greedy",
        stop_token_ids=None,
        seed=None,
    ):
        """Generates continuations of a batch of prompts of any lengths.

        Args:
            prompts_token_ids: list of B non-empty lists of int token ids.
            max_new_tokens: int, the most tokens generated per prompt.
            sampler: a `keras_transformer.generation.Sampler` or a name
                (`"greedy"`, `"random"`, `"top_k"` (k=40), `"top_p"`
                (p=0.9), `"beam"` (4 beams)). Its `temperature`, `p` and
                `length_penalty` are passed at run time: changing them
                does not recompile.
            stop_token_ids: None, an int or a list of ints; a row ends after
                producing one (the stop token is kept).
            seed: None, or an int for reproducible sampling.

        Returns:
            A list of B lists of int: the new tokens of each row, at most
            `max_new_tokens`, ending at the first stop token.
        """
        prompt, token_ids, prompt_mask, lengths = self.prepare(
            prompts_token_ids, max_new_tokens
        )
        decode_fn, knobs = self._decode_fn(sampler, stop_token_ids)
        length = len(token_ids[0])
        cache = self.empty_cache(ops.convert_to_tensor(prompt, "int32"), length)
        output = decode_fn(
            token_ids,
            prompt_mask,
            cache,
            start_index=min(lengths),
            seed=seed,
            **knobs,
        )
        output = ops.convert_to_numpy(output).tolist()
        return self.completions(output, lengths, max_new_tokens, stop_token_ids)

    def completions(self, output, lengths, max_new_tokens, stop_token_ids):
        """Cuts each row of a decoded buffer to its new tokens.

        Args:
            output: [B, L] decoded buffer (nested lists).
            lengths: the B prompt lengths.
            max_new_tokens: the most new tokens per row.
            stop_token_ids: None, an int or a list of ints.

        Returns:
            A list of B lists of int.
        """
        if stop_token_ids is None:
            stops = set()
        elif isinstance(stop_token_ids, int):
            stops = {stop_token_ids}
        else:
            stops = set(int(t) for t in stop_token_ids)
        results = []
        for row, n in zip(output, lengths, strict=True):
            new = []
            for token in row[n : n + max_new_tokens]:
                new.append(int(token))
                if token in stops:
                    break
            results.append(new)
        return results
