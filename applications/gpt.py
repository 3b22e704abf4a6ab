"""GPT-style decoder-only language model and its cached decoder.

`gpt_lm` builds the model: a stack of pre-LN `TransformerDecoder` blocks
without cross-attention, learned positions, a final layer normalization and
an output projection tied to the token embeddings. `GPTDecoder` (the
counterpart of `translation.Seq2SeqDecoder`) runs fast cached generation
over it with the one decode loop of `keras_transformer.generation`
(compiled once per input shape). `GPTGenerator` is its deprecated old name.

Everything here uses `keras` and `keras.ops` only, so it runs on the
TensorFlow, JAX and PyTorch backends.
"""

import keras
from keras_transformer.applications._gpt_decoder import (
    BLOCK_PREFIX,
    EMBEDDING_LAYER,
    FINAL_NORM_LAYER,
    GPTDecoder,
    GPTGenerator,
)

from keras_transformer.layers import (
    TokenAndPositionEmbedding,
    TransformerDecoder,
)
from keras_transformer.layers._utils import check_positive_int


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
        vocabulary_size: int, the number of token ids V.
        num_layers: int, the number of decoder blocks.
        hidden_dim: int, the model size D; `num_heads` must divide it.
        num_heads: int, attention heads per block.
        intermediate_dim: int, hidden size of the feed-forward networks.
        max_sequence_length: int, the number of learned positions (longest
            input, prompt plus generated tokens).
        dropout: float, default 0.0. Dropout rate of embeddings, attention
            and residuals.
        activation: str or callable, default `"gelu"`. Feed-forward
            activation.
        layer_norm_epsilon: float, default 1e-5. Epsilon of every layer
            normalization.
        initializer_range: float, default 0.02. Standard deviation of the
            normal initializers of the embeddings and dense kernels.
        name: str, default `"gpt_lm"`. The model name.
        dtype: str, `keras.DTypePolicy` or None, default None (the global
            policy). Dtype policy of the layers (e.g. `"mixed_float16"`).
            Logits are always float32.

    Returns:
        A functional `keras.Model` with inputs `{"token_ids": int [B, T],
        "padding_mask": bool [B, T]}` and output logits float32 [B, T, V]
        for the token at each next position.

    Example:
    >>> import numpy as np
    >>> import keras_transformer
    >>> model = keras_transformer.applications.gpt.gpt_lm(
    ...     vocabulary_size=50, num_layers=2, hidden_dim=16, num_heads=2,
    ...     intermediate_dim=32, max_sequence_length=32)
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


__all__ = [
    "BLOCK_PREFIX",
    "EMBEDDING_LAYER",
    "FINAL_NORM_LAYER",
    "GPTDecoder",
    "GPTGenerator",
    "gpt_lm",
]
