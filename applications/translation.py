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
from keras_transformer.applications._seq2seq_decoder import (
    END_ID,
    PAD_ID,
    START_ID,
    Seq2SeqDecoder,
    padding_mask,
)

from keras_transformer.layers import (
    TokenAndPositionEmbedding,
    TransformerDecoder,
    TransformerEncoder,
)
from keras_transformer.layers._utils import check_positive_int


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
        vocabulary_size: int, the number of token ids V (shared by source
            and target when `share_embeddings`).
        num_encoder_layers: int, the number of encoder blocks.
        num_decoder_layers: int, the number of decoder blocks.
        hidden_dim: int, the model size D.
        num_heads: int, attention heads N; must divide `hidden_dim`.
        intermediate_dim: int, hidden size of the feed-forward networks.
        max_sequence_length: int, the longest source or target sequence.
        dropout: float, default 0.1. Dropout rate of embeddings, attention
            and sublayers.
        position: str, default `"sinusoidal"` (the paper's), or
            `"learned"`. The kind of positions.
        tie_embeddings: bool, default True. Project decoder states to logits
            with the (decoder) token embedding matrix instead of a separate
            dense layer.
        share_embeddings: bool, default True. One embedding table for source
            and target (a shared subword vocabulary).
        normalize_first: bool, default False. Pre-LN blocks (with a final
            layer normalization of encoder and decoder outputs) if True;
            post-LN (the paper) if False.
        activation: str or callable, default `"relu"`. Feed-forward
            activation.
        layer_norm_epsilon: float, default 1e-5. Epsilon of the layer
            normalizations.
        name: str, default `"transformer_seq2seq"`. The model name.

    Returns:
        A `keras.Model` with dict inputs `encoder_token_ids` [B, S] and
        `decoder_token_ids` [B, T] (int32) and float32 logits [B, T, V].

    Example:
    >>> import numpy as np
    >>> import keras_transformer
    >>> translation = keras_transformer.applications.translation
    >>> model = translation.transformer_seq2seq(
    ...     vocabulary_size=50, num_encoder_layers=2, num_decoder_layers=2,
    ...     hidden_dim=16, num_heads=2, intermediate_dim=32,
    ...     max_sequence_length=32)
    >>> logits = model({"encoder_token_ids": np.array([[5, 6, 3, 0]]),
    ...                 "decoder_token_ids": np.array([[2, 7, 8]])})
    >>> tuple(logits.shape)
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
            hidden_dim=hidden_dim,
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

    encoder_padding_mask = padding_mask(encoder_token_ids)  # [B, S]
    decoder_padding_mask = padding_mask(decoder_token_ids)  # [B, T]
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


__all__ = [
    "END_ID",
    "PAD_ID",
    "START_ID",
    "Seq2SeqDecoder",
    "padding_mask",
    "transformer_seq2seq",
]
