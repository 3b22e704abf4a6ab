"""Cached decoding for `transformer_seq2seq` models (private; the public
home is `keras_transformer.applications.translation.Seq2SeqDecoder`).

Shape legend: B batch, S source length, L target buffer length, N heads,
H head size, D model size, V vocabulary.
"""

from keras import ops

from keras_transformer.generation import decode
from keras_transformer.layers import empty_self_attention_cache
from keras_transformer.layers._utils import check_positive_int

# Special token ids of the translation models (0 is padding).
PAD_ID = 0
START_ID = 2
END_ID = 3


def padding_mask(token_ids):
    """Returns the padding mask of token ids (id `PAD_ID` = 0 is padding).

    Args:
        token_ids: int tensor [B, S].

    Returns:
        bool tensor [B, S], True on real tokens.

    Example:
    >>> import keras
    >>> import keras_transformer
    >>> translation = keras_transformer.applications.translation
    >>> mask = translation.padding_mask(keras.ops.array([[5, 3, 0]]))
    >>> keras.ops.convert_to_numpy(mask).tolist()
    [[True, True, False]]
    """
    return ops.not_equal(token_ids, PAD_ID)


class Seq2SeqDecoder:
    """Cached incremental decoding with the layers of a `transformer_seq2seq`.

    The encoder runs once per batch; each decoder block gets its
    cross-attention keys/values computed once from the encoder output and a
    static-shape self-attention cache [B, 2, L, N, H]. `step_fn` follows the
    contract of `keras_transformer.generation.decode`, so every sampler
    (greedy, beam, top-k, ...) drives the same cached loop. Uses `keras.ops`
    only: it runs eagerly, under `tf.function` (with or without XLA) and
    under `jax.jit`.

    Args:
        model: a `keras.Model` returned by `transformer_seq2seq` (trained or
            not, possibly reloaded from a `.keras` file).

    Example:
    >>> import numpy as np
    >>> import keras_transformer
    >>> translation = keras_transformer.applications.translation
    >>> model = translation.transformer_seq2seq(50, 2, 2, 16, 2, 32, 32)
    >>> decoder = translation.Seq2SeqDecoder(model)
    >>> output = decoder.generate(np.array([[5, 6, 3]]), max_length=8)
    >>> tuple(output.shape), int(output[0, 0])  # the start token first
    ((1, 8), 2)
    """

    def __init__(self, model):
        self.model = model
        names = {layer.name for layer in model.layers}
        if "token_embedding" in names:
            self.encoder_embedding = model.get_layer("token_embedding")
            self.decoder_embedding = self.encoder_embedding
        elif "encoder_token_embedding" in names:
            self.encoder_embedding = model.get_layer("encoder_token_embedding")
            self.decoder_embedding = model.get_layer("decoder_token_embedding")
        else:
            raise ValueError(
                "`model` must be built by `transformer_seq2seq`. Received: "
                f"model with layers {sorted(names)}"
            )
        self.encoder_blocks = _numbered(model, names, "encoder_layer_")
        self.decoder_blocks = _numbered(model, names, "decoder_layer_")
        self.encoder_norm = (
            model.get_layer("encoder_output_norm")
            if "encoder_output_norm" in names
            else None
        )
        self.decoder_norm = (
            model.get_layer("decoder_output_norm")
            if "decoder_output_norm" in names
            else None
        )
        self.output_projection = (
            model.get_layer("output_projection")
            if "output_projection" in names
            else None
        )
        first = self.decoder_blocks[0]
        self.num_heads = first.num_heads
        self.head_dim = first.head_dim
        self.max_sequence_length = self.decoder_embedding.sequence_length

    @property
    def variables(self):
        """The model variables the decoding functions read.

        Returns:
            list of `keras.Variable`; pass it as
            `compile_decode(..., variables=decoder.variables)`.

        Example:
        >>> import keras_transformer
        >>> translation = keras_transformer.applications.translation
        >>> model = translation.transformer_seq2seq(50, 1, 1, 8, 2, 16, 8)
        >>> len(translation.Seq2SeqDecoder(model).variables) == len(
        ...     model.variables)
        True
        """
        return self.model.variables

    def encode(self, encoder_token_ids):
        """Runs the encoder.

        Args:
            encoder_token_ids: int tensor [B, S], 0 for padding.

        Returns:
            `(encoder_output [B, S, D], encoder_padding_mask [B, S] bool)`.

        Example:
        >>> import numpy as np
        >>> import keras_transformer
        >>> translation = keras_transformer.applications.translation
        >>> decoder = translation.Seq2SeqDecoder(
        ...     translation.transformer_seq2seq(50, 1, 1, 16, 2, 32, 32))
        >>> output, mask = decoder.encode(np.array([[5, 6, 3, 0]]))
        >>> tuple(output.shape), np.asarray(mask).tolist()
        ((1, 4, 16), [[True, True, True, False]])
        """
        encoder_token_ids = ops.cast(encoder_token_ids, "int32")
        mask = padding_mask(encoder_token_ids)  # [B, S]
        x = self.encoder_embedding(encoder_token_ids, training=False)
        for block in self.encoder_blocks:
            x = block(x, padding_mask=mask, training=False)
        if self.encoder_norm is not None:
            x = self.encoder_norm(x)
        return x, mask

    def initial_cache(self, encoder_token_ids, max_length):
        """Encodes the source and returns the decoding cache.

        Args:
            encoder_token_ids: int tensor [B, S], 0 for padding.
            max_length: int, L, the length of the target buffer.

        Returns:
            A dict with `self_attention` (a tuple of [B, 2, L, N, H], one per
            decoder block, zeros), `cross_attention` (a tuple of
            [B, 2, S, N, H]) and `encoder_padding_mask` ([B, S] int32).

        Example:
        >>> import numpy as np
        >>> import keras_transformer
        >>> translation = keras_transformer.applications.translation
        >>> decoder = translation.Seq2SeqDecoder(
        ...     translation.transformer_seq2seq(50, 1, 1, 16, 2, 32, 32))
        >>> cache = decoder.initial_cache(np.array([[5, 6, 3]]), 8)
        >>> tuple(cache["self_attention"][0].shape)
        (1, 2, 8, 2, 8)
        >>> tuple(cache["cross_attention"][0].shape)
        (1, 2, 3, 2, 8)
        """
        encoder_output, mask = self.encode(encoder_token_ids)
        batch_size = ops.shape(encoder_output)[0]
        dtype = self.decoder_blocks[0].compute_dtype
        self_caches = tuple(
            empty_self_attention_cache(
                batch_size, max_length, self.num_heads, self.head_dim, dtype
            )
            for _ in self.decoder_blocks
        )
        cross_caches = tuple(
            block.compute_cross_attention_cache(encoder_output)
            for block in self.decoder_blocks
        )
        return {
            "self_attention": self_caches,
            "cross_attention": cross_caches,
            "encoder_padding_mask": ops.cast(mask, "int32"),
        }

    def step_fn(self, token_ids, index, cache):
        """One decoding step, the `step_fn` of `generation.decode`.

        Args:
            token_ids: int tensor [B], the tokens at position `index`.
            index: int or scalar int tensor, their position.
            cache: dict, from `initial_cache` (possibly beam-expanded).

        Returns:
            `(logits [B, V] float32 for position index + 1, updated cache)`.

        Example:
        >>> import keras
        >>> import numpy as np
        >>> import keras_transformer
        >>> translation = keras_transformer.applications.translation
        >>> model = translation.transformer_seq2seq(50, 1, 1, 16, 2, 32, 32)
        >>> decoder = translation.Seq2SeqDecoder(model)
        >>> source = np.array([[5, 6, 3]])
        >>> cache = decoder.initial_cache(source, 4)
        >>> _, cache = decoder.step_fn(keras.ops.array([2]), 0, cache)
        >>> logits, cache = decoder.step_fn(keras.ops.array([7]), 1, cache)
        >>> full = model({"encoder_token_ids": source,
        ...               "decoder_token_ids": np.array([[2, 7]])})
        >>> bool(np.allclose(logits, full[:, 1], atol=1e-5))
        True
        """
        token_ids = ops.cast(token_ids, "int32")[:, None]  # [B] -> [B, 1]
        x = self.decoder_embedding(
            token_ids, start_index=index, training=False
        )  # [B, 1, D]
        mask = ops.cast(cache["encoder_padding_mask"], "bool")  # [B, S]
        new_self_caches = []
        for block, self_cache, cross_cache in zip(
            self.decoder_blocks,
            cache["self_attention"],
            cache["cross_attention"],
        ):
            x, self_cache = block(
                x,
                encoder_padding_mask=mask,
                self_attention_cache=self_cache,
                self_attention_cache_update_index=index,
                cross_attention_cache=cross_cache,
                training=False,
            )
            new_self_caches.append(self_cache)
        if self.decoder_norm is not None:
            x = self.decoder_norm(x)
        if self.output_projection is None:
            logits = self.decoder_embedding(x, reverse=True)  # [B, 1, V]
        else:
            logits = self.output_projection(x)  # [B, 1, V]
        cache = dict(cache, self_attention=tuple(new_self_caches))
        return ops.cast(logits[:, 0, :], "float32"), cache

    def generate(
        self,
        encoder_token_ids,
        max_length,
        sampler="greedy",
        start_id=START_ID,
        end_id=END_ID,
        seed=None,
    ):
        """Decodes target sequences (uncompiled; see `compile_decode`).

        Args:
            encoder_token_ids: int tensor [B, S], 0 for padding.
            max_length: int, L, the target buffer length (start token
                included), at most the model's `max_sequence_length`.
            sampler: a `keras_transformer.generation.Sampler` or a str,
                default `"greedy"` (e.g. `"greedy"` or
                `keras_transformer.generation.BeamSampler(4)`).
            start_id: int, default 2. The start token written at
                position 0.
            end_id: int, default 3. The end token that finishes a row.
            seed: None or int, default None. The seed of random samplers.

        Returns:
            int32 tensor [B, L]: the start token, the generated tokens, the
            end token, then padding.

        Example:
        >>> import numpy as np
        >>> import keras_transformer
        >>> translation = keras_transformer.applications.translation
        >>> decoder = translation.Seq2SeqDecoder(
        ...     translation.transformer_seq2seq(50, 1, 1, 16, 2, 32, 32))
        >>> sampler = keras_transformer.generation.BeamSampler(num_beams=3)
        >>> output = decoder.generate(np.array([[5, 6, 3], [7, 3, 0]]), 6,
        ...                           sampler=sampler)
        >>> tuple(output.shape)
        (2, 6)
        """
        token_ids, cache = self.prepare(encoder_token_ids, max_length, start_id)
        return decode(
            self.step_fn,
            token_ids,
            None,
            cache,
            sampler,
            start_index=1,
            stop_token_ids=[end_id],
            pad_token_id=PAD_ID,
            seed=seed,
        )

    def prepare(self, encoder_token_ids, max_length, start_id=START_ID):
        """Returns the `(token_ids [B, L], cache)` that `decode` starts from.

        `token_ids` holds `start_id` at position 0 and padding elsewhere.

        Args:
            encoder_token_ids: int tensor [B, S], 0 for padding.
            max_length: int, L, at most the model's `max_sequence_length`.
            start_id: int, default 2. The start token.

        Returns:
            `(token_ids int32 [B, L], cache)`, the cache of `initial_cache`.

        Example:
        >>> import numpy as np
        >>> import keras_transformer
        >>> translation = keras_transformer.applications.translation
        >>> decoder = translation.Seq2SeqDecoder(
        ...     translation.transformer_seq2seq(50, 1, 1, 16, 2, 32, 32))
        >>> token_ids, cache = decoder.prepare(np.array([[5, 6, 3]]), 4)
        >>> np.asarray(token_ids).tolist()
        [[2, 0, 0, 0]]
        >>> sorted(cache)
        ['cross_attention', 'encoder_padding_mask', 'self_attention']
        """
        check_positive_int("max_length", max_length)
        if max_length > self.max_sequence_length:
            raise ValueError(
                "`max_length` must be at most the model's "
                f"max_sequence_length ({self.max_sequence_length}). "
                f"Received: max_length={max_length}"
            )
        cache = self.initial_cache(encoder_token_ids, max_length)
        batch_size = ops.shape(encoder_token_ids)[0]
        first = ops.arange(max_length, dtype="int32") == 0  # [L]
        token_ids = ops.where(first, start_id, PAD_ID)
        token_ids = ops.broadcast_to(
            ops.cast(token_ids, "int32")[None, :], (batch_size, max_length)
        )
        return token_ids, cache


def _numbered(model, names, prefix):
    blocks = []
    while f"{prefix}{len(blocks)}" in names:
        blocks.append(model.get_layer(f"{prefix}{len(blocks)}"))
    if not blocks:
        raise ValueError(
            "`model` must be built by `transformer_seq2seq`. Received: "
            f"model without layers named {prefix}0, {prefix}1, ..."
        )
    return blocks
