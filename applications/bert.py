"""BERT-style encoder: backbone, masked-LM pretraining model and classifier.

All three functions return functional `keras.Model`s built from the same
named layers, so weights move between them by layer name: pretrain with
`bert_masked_lm`, then start `bert_classifier` from the pretrained encoder
with `load_backbone_weights`.

The models are "flat": `bert_masked_lm` and `bert_classifier` extend the
backbone's graph instead of nesting the backbone as one layer. This keeps the
tied MLM output projection (which reuses the token embedding layer) a single
variable after a `.keras` save and reload.
"""

import keras
from keras import ops
from keras_transformer.applications._bert_common import (
    BACKBONE_INPUTS,
    BLOCK_PREFIX,
    EMBEDDING_LAYER,
    EMBEDDING_LAYERS,
    check_dropout,
    check_head,
    initializer,
)
from keras_transformer.applications._bert_fine_tuning import (
    bert_ensemble,
    check_layer_decay,
    layer_rate_multipliers,
    load_backbone_weights,
)
from keras_transformer.applications._ngram import ngram_classifier

from keras_transformer.layers import (
    TokenAndPositionEmbedding,
    TransformerEncoder,
)
from keras_transformer.layers._utils import check_positive_int


def bert_backbone(
    vocabulary_size,
    num_layers,
    hidden_dim,
    num_heads,
    intermediate_dim,
    max_sequence_length=512,
    num_segments=2,
    dropout=0.1,
    layer_norm_epsilon=1e-12,
    name="bert_backbone",
):
    """A BERT-style Transformer encoder with a pooled first-token output.

    Token, segment and learned position embeddings are summed, normalized
    and passed through `num_layers` post-LN encoder blocks with GELU
    feed-forward networks. The pooled output is `tanh(dense(h[:, 0]))`, the
    hidden state of the first ([CLS]) token.

    Args:
        vocabulary_size: int, the number of token ids V (id 0 is padding).
        num_layers: int, the number of encoder blocks.
        hidden_dim: int, the model size D.
        num_heads: int, attention heads; must divide `hidden_dim`.
        intermediate_dim: int, the feed-forward hidden size.
        max_sequence_length: int, default 512. The longest input supported
            (positions).
        num_segments: int, default 2. The number of segment (sentence A/B)
            ids.
        dropout: float, default 0.1. Dropout rate of the embeddings and the
            blocks.
        layer_norm_epsilon: float, default 1e-12. Epsilon of the layer
            normalizations.
        name: str, default `"bert_backbone"`. The model name.

    Returns:
        A functional `keras.Model` with dict inputs `token_ids` int [B, T],
        `padding_mask` int or bool [B, T] (1/True for real tokens) and
        `segment_ids` int [B, T], and dict outputs `sequence_output`
        [B, T, D] and `pooled_output` [B, D].

    Example:
    >>> import numpy as np
    >>> import keras_transformer
    >>> bert = keras_transformer.applications.bert
    >>> backbone = bert.bert_backbone(vocabulary_size=50, num_layers=2,
    ...     hidden_dim=16, num_heads=2, intermediate_dim=32,
    ...     max_sequence_length=8)
    >>> ids = np.array([[2, 9, 7, 3, 0]])
    >>> outputs = backbone({"token_ids": ids, "padding_mask": ids != 0,
    ...                     "segment_ids": np.zeros_like(ids)})
    >>> [tuple(outputs[key].shape) for key in sorted(outputs)]
    [(1, 16), (1, 5, 16)]

    References:
        Devlin et al., "BERT: Pre-training of Deep Bidirectional
        Transformers for Language Understanding", 2019.
    """
    for arg, value in (
        ("vocabulary_size", vocabulary_size),
        ("num_layers", num_layers),
        ("hidden_dim", hidden_dim),
        ("num_heads", num_heads),
        ("intermediate_dim", intermediate_dim),
        ("max_sequence_length", max_sequence_length),
        ("num_segments", num_segments),
    ):
        check_positive_int(arg, value)
    if hidden_dim % num_heads:
        raise ValueError(
            f"`num_heads` must divide `hidden_dim` ({hidden_dim}). "
            f"Received: num_heads={num_heads}"
        )
    check_dropout(dropout)

    # Inputs.
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    padding_mask = keras.Input(
        shape=(None,), dtype="int32", name="padding_mask"
    )
    segment_ids = keras.Input(shape=(None,), dtype="int32", name="segment_ids")

    # Layers.
    # The explicit `padding_mask` is the only mask: the embedding attaches
    # none, so a caller's mask is never second-guessed from the ids.
    embedding = TokenAndPositionEmbedding(
        vocabulary_size,
        max_sequence_length,
        hidden_dim,
        position="learned",
        mask_zero=False,
        embeddings_initializer=initializer(),
        position_initializer=initializer(),
        name=EMBEDDING_LAYER,
    )
    segment_embedding = keras.layers.Embedding(
        num_segments,
        hidden_dim,
        embeddings_initializer=initializer(),
        name="segment_embedding",
    )
    x = embedding(token_ids)  # [B, T, D]
    x = keras.layers.Add(name="embeddings_add")(
        [x, segment_embedding(segment_ids)]
    )
    x = keras.layers.LayerNormalization(
        epsilon=layer_norm_epsilon, name="embeddings_norm"
    )(x)
    x = keras.layers.Dropout(dropout, name="embeddings_dropout")(x)
    mask = ops.cast(padding_mask, "bool")  # [B, T]
    for i in range(num_layers):
        x = TransformerEncoder(
            intermediate_dim,
            num_heads,
            dropout=dropout,
            activation="gelu",
            layer_norm_epsilon=layer_norm_epsilon,
            normalize_first=False,
            kernel_initializer=initializer(),
            name=f"{BLOCK_PREFIX}{i}",
        )(x, padding_mask=mask)
    first_token = x[:, 0, :]  # [B, T, D] -> [B, D]
    pooled = keras.layers.Dense(
        hidden_dim,
        activation="tanh",
        kernel_initializer=initializer(),
        name="pooled_dense",
    )(first_token)

    # Outputs.
    return keras.Model(
        inputs={
            "token_ids": token_ids,
            "padding_mask": padding_mask,
            "segment_ids": segment_ids,
        },
        outputs={"sequence_output": x, "pooled_output": pooled},
        name=name,
    )


def _as_backbone(backbone_or_kwargs):
    if isinstance(backbone_or_kwargs, keras.Model):
        backbone = backbone_or_kwargs
        if not isinstance(backbone.output, dict) or set(backbone.output) != {
            "sequence_output",
            "pooled_output",
        }:
            raise ValueError(
                "`backbone` must be a model made by `bert_backbone`. "
                f"Received: backbone={backbone.name!r}"
            )
        return backbone
    if isinstance(backbone_or_kwargs, dict):
        return bert_backbone(**backbone_or_kwargs)
    raise ValueError(
        "Expected a `bert_backbone` model or a dict of its keyword "
        "arguments. Received: backbone_or_kwargs of type "
        f"{type(backbone_or_kwargs).__name__}"
    )


def bert_masked_lm(backbone_or_kwargs, layer_norm_epsilon=1e-12, name=None):
    """A BERT encoder with a masked-language-modeling head.

    The hidden states at `mask_positions` go through a dense+GELU layer and
    a layer normalization, then are projected onto the vocabulary with the
    token embedding matrix itself (tied weights, no separate output matrix).

    Args:
        backbone_or_kwargs: `keras.Model` or dict. A model made by
            `bert_backbone` (its layers are shared, not copied) or a dict of
            `bert_backbone` keyword arguments (e.g. a preset).
        layer_norm_epsilon: float, default 1e-12. Epsilon of the head's
            layer normalization.
        name: str or None, default None (then `"bert_masked_lm"`). The
            model name.

    Returns:
        A functional `keras.Model` with the backbone's dict inputs plus
        `mask_positions` int [B, P] (indices into T), returning MLM logits
        [B, P, V] (float32).

    Example:
    >>> import numpy as np
    >>> import keras_transformer
    >>> bert = keras_transformer.applications.bert
    >>> model = bert.bert_masked_lm(dict(vocabulary_size=50, num_layers=2,
    ...     hidden_dim=16, num_heads=2, intermediate_dim=32,
    ...     max_sequence_length=8))
    >>> ids = np.array([[2, 9, 4, 3, 0]])
    >>> logits = model({"token_ids": ids, "padding_mask": ids != 0,
    ...                 "segment_ids": np.zeros_like(ids),
    ...                 "mask_positions": np.array([[2]])})
    >>> tuple(logits.shape)
    (1, 1, 50)

    References:
        Devlin et al., "BERT: Pre-training of Deep Bidirectional
        Transformers for Language Understanding", 2019, section 3.1.
    """
    backbone = _as_backbone(backbone_or_kwargs)
    hidden_dim = backbone.output["pooled_output"].shape[-1]
    embedding = backbone.get_layer(EMBEDDING_LAYER)

    # Inputs.
    inputs = dict(backbone.input)
    mask_positions = keras.Input(
        shape=(None,), dtype="int32", name="mask_positions"
    )
    inputs["mask_positions"] = mask_positions

    # Layers.
    sequence = backbone.output["sequence_output"]  # [B, T, D]
    # [B, P] -> [B, P, 1] indices into T; gathered -> [B, P, D]
    index = ops.expand_dims(mask_positions, -1)
    x = ops.take_along_axis(sequence, index, axis=1)
    x = keras.layers.Dense(
        hidden_dim,
        activation="gelu",
        kernel_initializer=initializer(),
        name="mlm_dense",
    )(x)
    x = keras.layers.LayerNormalization(
        epsilon=layer_norm_epsilon, name="mlm_norm"
    )(x)
    # [B, P, D] x [V, D] -> [B, P, V], with the token embedding matrix.
    logits = embedding(x, reverse=True)
    logits = keras.layers.Activation(
        "linear", dtype="float32", name="mlm_logits"
    )(logits)

    # Outputs.
    return keras.Model(
        inputs=inputs, outputs=logits, name=name or "bert_masked_lm"
    )


POOLING_MODES = ("first", "mean")


def check_pooling(pooling):
    """Raises a clear error unless `pooling` is one of `POOLING_MODES`.

    Args:
        pooling: the value to check.

    Returns:
        None; raises `ValueError` naming `pooling` otherwise.

    Example:
    >>> import keras_transformer
    >>> keras_transformer.applications.bert.check_pooling("mean")
    >>> try:
    ...     keras_transformer.applications.bert.check_pooling("max")
    ... except ValueError as error:
    ...     print(error)
    `pooling` must be one of ('first', 'mean'). Received: pooling='max'
    """
    if pooling not in POOLING_MODES:
        raise ValueError(
            f"`pooling` must be one of {POOLING_MODES}. "
            f"Received: pooling={pooling!r}"
        )


def bert_classifier(
    backbone_or_kwargs, num_classes, dropout=0.1, pooling="first", name=None
):
    """A sequence classifier on the BERT pooled output.

    Args:
        backbone_or_kwargs: `keras.Model` or dict. A model made by
            `bert_backbone` (its layers are shared) or a dict of
            `bert_backbone` keyword arguments.
        num_classes: int, the number of classes C (at least 2).
        dropout: float, default 0.1. Dropout rate applied to the pooled
            output.
        pooling: str, default `"first"`. `"first"` (BERT: the backbone's
            `tanh` pooler on the [CLS] position) or `"mean"` (the mean of
            the final hidden states over the real tokens, padding excluded;
            learns faster from scratch on small data, where the [CLS]
            position must first learn to gather the sequence).
        name: str or None, default None (then `"bert_classifier"`). The
            model name.

    Returns:
        A functional `keras.Model` with the backbone's dict inputs returning
        class logits [B, C] (float32).

    Example:
    >>> import numpy as np
    >>> import keras_transformer
    >>> bert = keras_transformer.applications.bert
    >>> model = bert.bert_classifier(dict(vocabulary_size=50, num_layers=2,
    ...     hidden_dim=16, num_heads=2, intermediate_dim=32,
    ...     max_sequence_length=8), num_classes=3, pooling="mean")
    >>> ids = np.array([[2, 9, 7, 3]])
    >>> logits = model({"token_ids": ids, "padding_mask": ids != 0,
    ...                 "segment_ids": np.zeros_like(ids)})
    >>> tuple(logits.shape)
    (1, 3)
    """
    check_head(num_classes, dropout)
    check_pooling(pooling)
    backbone = _as_backbone(backbone_or_kwargs)

    # Inputs.
    inputs = dict(backbone.input)

    # Layers.
    if pooling == "first":
        pooled = backbone.output["pooled_output"]  # [B, D]
    else:
        states = backbone.output["sequence_output"]  # [B, T, D]
        # [B, T] -> [B, T, 1]
        weights = ops.expand_dims(
            ops.cast(inputs["padding_mask"], states.dtype), -1
        )
        total = ops.sum(states * weights, axis=1)  # [B, D]
        count = ops.maximum(ops.sum(weights, axis=1), 1.0)  # [B, 1]
        pooled = total / count
    x = keras.layers.Dropout(dropout, name="classifier_dropout")(pooled)
    logits = keras.layers.Dense(
        num_classes,
        kernel_initializer=initializer(),
        dtype="float32",
        name="logits",
    )(x)

    # Outputs.
    return keras.Model(
        inputs=inputs, outputs=logits, name=name or "bert_classifier"
    )


__all__ = [
    "BACKBONE_INPUTS",
    "EMBEDDING_LAYER",
    "EMBEDDING_LAYERS",
    "POOLING_MODES",
    "bert_backbone",
    "bert_classifier",
    "bert_ensemble",
    "bert_masked_lm",
    "check_layer_decay",
    "check_pooling",
    "layer_rate_multipliers",
    "load_backbone_weights",
    "ngram_classifier",
]
