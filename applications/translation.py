"""The encoder-decoder Transformer of "Attention Is All You Need".

`transformer_seq2seq` returns a functional `keras.Model` mapping
`encoder_token_ids` [B, S] and `decoder_token_ids` [B, T] to next-token
logits [B, T, V]; `Seq2SeqDecoder` runs cached incremental decoding with the
same layers (encoder once, cross-attention keys/values once, one static-shape
self-attention cache per decoder block) through
`keras_transformer.generation.decode`. Written with `keras` and `keras.ops`
only, so it runs on the TensorFlow, JAX and PyTorch backends.
"""

import math

import keras
from keras import ops

from keras_transformer.generation import decode
from keras_transformer.layers import (
    TokenAndPositionEmbedding,
    TransformerDecoder,
    TransformerEncoder,
    empty_self_attention_cache,
)
from keras_transformer.layers._utils import check_positive_int

PAD_ID = 0
START_ID = 2
END_ID = 3


def _padding_mask(token_ids):
    # [B, S] int -> [B, S] bool, True on real tokens (id 0 is padding).
    return ops.not_equal(token_ids, PAD_ID)


def transformer_seq2seq(
    vocabulary_size,
    num_encoder_layers,
    num_decoder_layers,
    hidden_dim,
    num_heads,
    intermediate_dim,
    max_sequence_length,
    dropout=0.1,
    position="sinusoidal",
    tie_embeddings=True,
    share_embeddings=True,
    normalize_first=False,
    activation="relu",
    layer_norm_epsilon=1e-5,
    name="transformer_seq2seq",
):
    """Builds the encoder-decoder Transformer for sequence-to-sequence tasks.

    Token id 0 is padding: the encoder and decoder padding masks are derived
    from it, and cross-attention uses the encoder's. Token embeddings are
    scaled by `sqrt(hidden_dim)` and summed with positions, as in the paper.
    The logits are float32 even under a mixed-precision policy.

    Args:
        vocabulary_size: number of token ids V (shared by source and target
            when `share_embeddings`).
        num_encoder_layers: number of encoder blocks.
        num_decoder_layers: number of decoder blocks.
        hidden_dim: model size D.
        num_heads: attention heads N; must divide `hidden_dim`.
        intermediate_dim: hidden size of the feed-forward networks.
        max_sequence_length: the longest source or target sequence.
        dropout: dropout rate of embeddings, attention and sublayers.
        position: `"sinusoidal"` (the paper) or `"learned"` positions.
        tie_embeddings: project decoder states to logits with the (decoder)
            token embedding matrix instead of a separate dense layer.
        share_embeddings: one embedding table for source and target (a
            shared subword vocabulary).
        normalize_first: pre-LN blocks (with a final layer normalization of
            encoder and decoder outputs) if True; post-LN (the paper) if
            False.
        activation: feed-forward activation.
        layer_norm_epsilon: epsilon of the layer normalizations.
        name: name of the model.

    Returns:
        A `keras.Model` with dict inputs `encoder_token_ids` [B, S] and
        `decoder_token_ids` [B, T] (int32) and float32 logits [B, T, V].

    Example:
    >>> import numpy as np
    >>> from keras_transformer.applications.translation import (
    ...     transformer_seq2seq)
    >>> model = transformer_seq2seq(
    ...     vocabulary_size=50, num_encoder_layers=2, num_decoder_layers=2,
    ...     hidden_dim=16, num_heads=2, intermediate_dim=32,
    ...     max_sequence_length=32)
    >>> logits = model({"encoder_token_ids": np.array([[5, 6, 3, 0]]),
    ...                 "decoder_token_ids": np.array([[2, 7, 8]])})
    >>> logits.shape
    (1, 3, 50)

    References:
        Vaswani et al., "Attention Is All You Need", 2017.
        Xiong et al., "On Layer Normalization in the Transformer
        Architecture", 2020 (pre-LN).
    """
    for arg_name, value in (
        ("vocabulary_size", vocabulary_size),
        ("num_encoder_layers", num_encoder_layers),
        ("num_decoder_layers", num_decoder_layers),
        ("hidden_dim", hidden_dim),
        ("num_heads", num_heads),
        ("intermediate_dim", intermediate_dim),
        ("max_sequence_length", max_sequence_length),
    ):
        check_positive_int(arg_name, value)
    if hidden_dim % num_heads:
        raise ValueError(
            f"`num_heads` must divide `hidden_dim` ({hidden_dim}). "
            f"Received: num_heads={num_heads}"
        )

    # Inputs.
    encoder_token_ids = keras.Input(
        shape=(None,), dtype="int32", name="encoder_token_ids"
    )
    decoder_token_ids = keras.Input(
        shape=(None,), dtype="int32", name="decoder_token_ids"
    )

    # Layers.
    def embedding(layer_name):
        return TokenAndPositionEmbedding(
            vocabulary_size=vocabulary_size,
            sequence_length=max_sequence_length,
            embedding_dim=hidden_dim,
            position=position,
            mask_zero=True,
            scale_embeddings=True,
            dropout=dropout,
            embeddings_initializer=keras.initializers.RandomNormal(
                stddev=1.0 / math.sqrt(hidden_dim)
            ),
            name=layer_name,
        )

    if share_embeddings:
        encoder_embedding = decoder_embedding = embedding("token_embedding")
    else:
        encoder_embedding = embedding("encoder_token_embedding")
        decoder_embedding = embedding("decoder_token_embedding")
    block_kwargs = dict(
        intermediate_dim=intermediate_dim,
        num_heads=num_heads,
        dropout=dropout,
        activation=activation,
        layer_norm_epsilon=layer_norm_epsilon,
        normalize_first=normalize_first,
    )
    encoder_blocks = [
        TransformerEncoder(name=f"encoder_layer_{i}", **block_kwargs)
        for i in range(num_encoder_layers)
    ]
    decoder_blocks = [
        TransformerDecoder(name=f"decoder_layer_{i}", **block_kwargs)
        for i in range(num_decoder_layers)
    ]
    encoder_norm = decoder_norm = None
    if normalize_first:
        encoder_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, name="encoder_output_norm"
        )
        decoder_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, name="decoder_output_norm"
        )
    output_projection = None
    if not tie_embeddings:
        output_projection = keras.layers.Dense(
            vocabulary_size, name="output_projection"
        )

    encoder_padding_mask = _padding_mask(encoder_token_ids)  # [B, S]
    decoder_padding_mask = _padding_mask(decoder_token_ids)  # [B, T]
    x = encoder_embedding(encoder_token_ids)  # [B, S, D]
    for block in encoder_blocks:
        x = block(x, padding_mask=encoder_padding_mask)
    if encoder_norm is not None:
        x = encoder_norm(x)
    encoder_output = x
    y = decoder_embedding(decoder_token_ids)  # [B, T, D]
    for block in decoder_blocks:
        # `encoder_sequence` by keyword: the block's symbolic output spec
        # takes its second positional argument for a cache.
        y = block(
            y,
            encoder_sequence=encoder_output,
            decoder_padding_mask=decoder_padding_mask,
            encoder_padding_mask=encoder_padding_mask,
        )
    if decoder_norm is not None:
        y = decoder_norm(y)

    # Outputs.
    if output_projection is None:
        logits = decoder_embedding(y, reverse=True)  # [B, T, V]
    else:
        logits = output_projection(y)  # [B, T, V]
    logits = keras.layers.Activation("linear", dtype="float32", name="logits")(
        logits
    )
    return keras.Model(
        inputs={
            "encoder_token_ids": encoder_token_ids,
            "decoder_token_ids": decoder_token_ids,
        },
        outputs=logits,
        name=name,
    )


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
        model: a model returned by `transformer_seq2seq` (trained or not,
            possibly reloaded from a `.keras` file).

    Example:
    >>> import numpy as np
    >>> from keras_transformer.applications.translation import (
    ...     Seq2SeqDecoder, transformer_seq2seq)
    >>> model = transformer_seq2seq(50, 2, 2, 16, 2, 32, 32)
    >>> decoder = Seq2SeqDecoder(model)
    >>> decoder.generate(np.array([[5, 6, 3]]), max_length=8).shape
    (1, 8)
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
        """The model variables the decoding functions read."""
        return self.model.variables

    def encode(self, encoder_token_ids):
        """Runs the encoder.

        Args:
            encoder_token_ids: int [B, S], 0 for padding.

        Returns:
            `(encoder_output [B, S, D], encoder_padding_mask [B, S] bool)`.
        """
        encoder_token_ids = ops.cast(encoder_token_ids, "int32")
        mask = _padding_mask(encoder_token_ids)  # [B, S]
        x = self.encoder_embedding(encoder_token_ids, training=False)
        for block in self.encoder_blocks:
            x = block(x, padding_mask=mask, training=False)
        if self.encoder_norm is not None:
            x = self.encoder_norm(x)
        return x, mask

    def initial_cache(self, encoder_token_ids, max_length):
        """Encodes the source and returns the decoding cache.

        Args:
            encoder_token_ids: int [B, S], 0 for padding.
            max_length: L, the length of the target buffer.

        Returns:
            A dict with `self_attention` (a tuple of [B, 2, L, N, H], one per
            decoder block, zeros), `cross_attention` (a tuple of
            [B, 2, S, N, H]) and `encoder_padding_mask` ([B, S] int32).
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
            token_ids: int [B], the tokens at position `index`.
            index: scalar int, their position.
            cache: the dict from `initial_cache` (possibly beam-expanded).

        Returns:
            `(logits [B, V] float32 for position index + 1, updated cache)`.
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
            encoder_token_ids: int [B, S], 0 for padding.
            max_length: L, the target buffer length (start token included).
            sampler: a sampler or its name (e.g. `"greedy"` or
                `keras_transformer.generation.BeamSampler(4)`).
            start_id: the start token written at position 0.
            end_id: the end token that finishes a row.
            seed: optional seed for random samplers.

        Returns:
            int32 [B, L]: the start token, the generated tokens, the end
            token, then padding.
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
