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

from keras_transformer.layers import (
    TokenAndPositionEmbedding,
    TransformerEncoder,
)
from keras_transformer.layers._utils import check_positive_int

BACKBONE_INPUTS = ("token_ids", "padding_mask", "segment_ids")
EMBEDDING_LAYER = "token_and_position_embedding"


def _check_dropout(dropout):
    if not 0.0 <= dropout < 1.0:
        raise ValueError(
            f"`dropout` must be in [0, 1). Received: dropout={dropout}"
        )


def _check_head(num_classes, dropout):
    """Checks a classification head's `num_classes` (int >= 2), `dropout`."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int):
        raise ValueError(
            "`num_classes` must be an int. "
            f"Received: num_classes={num_classes!r}"
        )
    if num_classes < 2:
        raise ValueError(
            "`num_classes` must be at least 2. "
            f"Received: num_classes={num_classes}"
        )
    _check_dropout(dropout)


def _model_inputs():
    """A fresh dict of the backbone's int32 inputs [B, T], by name."""
    return {
        key: keras.Input(shape=(None,), dtype="int32", name=key)
        for key in BACKBONE_INPUTS
    }


def _initializer():
    # BERT initializes every weight matrix from N(0, 0.02), truncated.
    return keras.initializers.TruncatedNormal(stddev=0.02)


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
        vocabulary_size: number of token ids V (id 0 is padding).
        num_layers: number of encoder blocks.
        hidden_dim: model size D.
        num_heads: attention heads; must divide `hidden_dim`.
        intermediate_dim: feed-forward hidden size.
        max_sequence_length: the longest input supported (positions).
        num_segments: number of segment (sentence A/B) ids.
        dropout: dropout rate of the embeddings and the blocks.
        layer_norm_epsilon: epsilon of the layer normalizations.
        name: the model name.

    Returns:
        A functional `keras.Model` with dict inputs `token_ids` int [B, T],
        `padding_mask` int or bool [B, T] (1/True for real tokens) and
        `segment_ids` int [B, T], and dict outputs `sequence_output`
        [B, T, D] and `pooled_output` [B, D].

    Example:
    >>> import numpy as np
    >>> from keras_transformer.applications.bert import bert_backbone
    >>> backbone = bert_backbone(vocabulary_size=50, num_layers=2,
    ...     hidden_dim=16, num_heads=2, intermediate_dim=32,
    ...     max_sequence_length=8)
    >>> ids = np.array([[2, 9, 7, 3, 0]])
    >>> outputs = backbone({"token_ids": ids, "padding_mask": ids != 0,
    ...                     "segment_ids": np.zeros_like(ids)})
    >>> outputs["sequence_output"].shape, outputs["pooled_output"].shape
    ((1, 5, 16), (1, 16))

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
    _check_dropout(dropout)

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
        embeddings_initializer=_initializer(),
        position_initializer=_initializer(),
        name=EMBEDDING_LAYER,
    )
    segment_embedding = keras.layers.Embedding(
        num_segments,
        hidden_dim,
        embeddings_initializer=_initializer(),
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
            kernel_initializer=_initializer(),
            name=f"transformer_layer_{i}",
        )(x, padding_mask=mask)
    first_token = x[:, 0, :]  # [B, T, D] -> [B, D]
    pooled = keras.layers.Dense(
        hidden_dim,
        activation="tanh",
        kernel_initializer=_initializer(),
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
        backbone_or_kwargs: a model made by `bert_backbone` (its layers are
            shared, not copied) or a dict of `bert_backbone` keyword
            arguments (e.g. a preset).
        layer_norm_epsilon: epsilon of the head's layer normalization.
        name: the model name (default "bert_masked_lm").

    Returns:
        A functional `keras.Model` with the backbone's dict inputs plus
        `mask_positions` int [B, P] (indices into T), returning MLM logits
        [B, P, V] (float32).

    Example:
    >>> import numpy as np
    >>> from keras_transformer.applications.bert import bert_masked_lm
    >>> model = bert_masked_lm(dict(vocabulary_size=50, num_layers=2,
    ...     hidden_dim=16, num_heads=2, intermediate_dim=32,
    ...     max_sequence_length=8))
    >>> ids = np.array([[2, 9, 4, 3, 0]])
    >>> model({"token_ids": ids, "padding_mask": ids != 0,
    ...        "segment_ids": np.zeros_like(ids),
    ...        "mask_positions": np.array([[2]])}).shape
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
        kernel_initializer=_initializer(),
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
    """Raises a clear error unless `pooling` is one of `POOLING_MODES`."""
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
        backbone_or_kwargs: a model made by `bert_backbone` (its layers are
            shared) or a dict of `bert_backbone` keyword arguments.
        num_classes: number of classes C (at least 2).
        dropout: dropout rate applied to the pooled output.
        pooling: `"first"` (BERT: the backbone's `tanh` pooler on the
            [CLS] position) or `"mean"` (the mean of the final hidden
            states over the real tokens, padding excluded; learns faster
            from scratch on small data, where the [CLS] position must
            first learn to gather the sequence).
        name: the model name (default "bert_classifier").

    Returns:
        A functional `keras.Model` with the backbone's dict inputs returning
        class logits [B, C] (float32).

    Example:
    >>> import numpy as np
    >>> from keras_transformer.applications.bert import bert_classifier
    >>> model = bert_classifier(dict(vocabulary_size=50, num_layers=2,
    ...     hidden_dim=16, num_heads=2, intermediate_dim=32,
    ...     max_sequence_length=8), num_classes=3)
    >>> ids = np.array([[2, 9, 7, 3]])
    >>> model({"token_ids": ids, "padding_mask": ids != 0,
    ...        "segment_ids": np.zeros_like(ids)}).shape
    (1, 3)
    """
    _check_head(num_classes, dropout)
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
        kernel_initializer=_initializer(),
        dtype="float32",
        name="logits",
    )(x)

    # Outputs.
    return keras.Model(
        inputs=inputs, outputs=logits, name=name or "bert_classifier"
    )


def load_backbone_weights(target, source):
    """Copies encoder weights from one BERT model into another, by name.

    Every layer of `target` that also exists in `source` with the same name
    and weight shapes receives `source`'s values: the embeddings and the
    encoder blocks of a pretrained `bert_masked_lm` go into a new
    `bert_classifier`, for instance. Layers only one side has (the MLM
    head, the pooler or the classification layer) are left as they are.

    Args:
        target: the model to update (made by a function of this module).
        source: the model to copy from.

    Returns:
        The sorted list of the layer names copied.

    Example:
    >>> from keras_transformer.applications import bert
    >>> kwargs = dict(vocabulary_size=50, num_layers=2, hidden_dim=16,
    ...               num_heads=2, intermediate_dim=32)
    >>> pretrained = bert.bert_masked_lm(kwargs)
    >>> classifier = bert.bert_classifier(kwargs, num_classes=3)
    >>> "transformer_layer_0" in bert.load_backbone_weights(
    ...     classifier, pretrained)
    True
    """
    source_layers = {layer.name: layer for layer in source.layers}
    copied = []
    for layer in target.layers:
        other = source_layers.get(layer.name)
        if other is None or not layer.weights:
            continue
        values = other.get_weights()
        shapes = [tuple(w.shape) for w in layer.weights]
        if [tuple(v.shape) for v in values] != shapes:
            raise ValueError(
                f"Layer {layer.name!r} has weights of shapes {shapes} but "
                "the source model's have "
                f"{[tuple(v.shape) for v in values]}; build both models "
                "with the same backbone arguments. "
                f"Received: source={source.name!r}"
            )
        layer.set_weights(values)
        copied.append(layer.name)
    if EMBEDDING_LAYER not in copied:
        raise ValueError(
            "The source model holds no BERT encoder weights (no "
            f"{EMBEDDING_LAYER!r} layer). Received: source={source.name!r}"
        )
    return sorted(copied)


EMBEDDING_LAYERS = (EMBEDDING_LAYER, "segment_embedding", "embeddings_norm")
_BLOCK_PREFIX = "transformer_layer_"


def check_layer_decay(decay, name="layer_decay"):
    """Raises a clear error unless `decay` is a number in (0, 1]."""
    if isinstance(decay, bool) or not (
        isinstance(decay, (int, float)) and 0.0 < decay <= 1.0
    ):
        raise ValueError(
            f"`{name}` must be a number in (0, 1]. Received: {name}={decay!r}"
        )


def layer_rate_multipliers(model, decay):
    """Learning-rate factors for layer-wise rate decay when fine-tuning.

    The layers above the last encoder block (pooler, classification or
    MLM head) get factor 1, encoder block i of L gets `decay ** (L - i)`
    and the embeddings `decay ** (L + 1)`: lower layers, which hold more
    general pretrained features, move less (as in ELECTRA and in Sun et
    al., "How to Fine-Tune BERT for Text Classification?", 2019).

    Args:
        model: a model made by a function of this module.
        decay: the factor per layer, in (0, 1].

    Returns:
        A dict of variable path to factor, for every trainable variable
        (pass it to `optimizers.bert_adamw(rate_multipliers=...)`).

    Example:
    >>> from keras_transformer.applications import bert
    >>> model = bert.bert_classifier(dict(vocabulary_size=50, num_layers=2,
    ...     hidden_dim=16, num_heads=2, intermediate_dim=32), num_classes=3)
    >>> factors = bert.layer_rate_multipliers(model, 0.5)
    >>> factors["logits/kernel"], factors["embeddings_norm/gamma"]
    (1.0, 0.125)
    """
    check_layer_decay(decay, "decay")
    blocks = [
        layer.name
        for layer in model.layers
        if layer.name.startswith(_BLOCK_PREFIX)
    ]
    if not blocks:
        raise ValueError(
            "The model has no BERT encoder blocks (layers named "
            f"'{_BLOCK_PREFIX}<i>'). Received: model={model.name!r}"
        )
    num_layers = len(blocks)
    factors = {}
    for layer in model.layers:
        if layer.name in EMBEDDING_LAYERS:
            depth = 0
        elif layer.name.startswith(_BLOCK_PREFIX):
            depth = int(layer.name[len(_BLOCK_PREFIX) :]) + 1
        else:
            depth = num_layers + 1
        for variable in layer.trainable_variables:
            factors[variable.path] = float(decay ** (num_layers + 1 - depth))
    return factors


def bert_ensemble(classifiers, name="bert_ensemble"):
    """One model that averages the class probabilities of classifiers.

    The members keep their own weights (nested as `member_0`, ...) and may
    differ in size; they must take the same inputs, i.e. share a tokenizer
    and a class list (the caller's concern). The output is logits whose
    softmax is the members' mean probability (see `ProbabilityAverage`),
    so the ensemble trains, saves, loads, evaluates and exports like one
    `bert_classifier`.

    Args:
        classifiers: two or more models made by `bert_classifier` (or
            loaded from their `.keras` files).
        name: the model name.

    Returns:
        A functional `keras.Model` with the backbone's dict inputs
        returning float32 logits [B, C].

    Example:
    >>> from keras_transformer.applications import bert
    >>> kwargs = dict(vocabulary_size=50, num_layers=1, hidden_dim=16,
    ...               num_heads=2, intermediate_dim=32)
    >>> members = [bert.bert_classifier(kwargs, 3) for _ in range(2)]
    >>> bert.bert_ensemble(members).output.shape
    (None, 3)
    """
    from keras_transformer.layers import ProbabilityAverage

    classifiers = list(classifiers)
    if len(classifiers) < 2:
        raise ValueError(
            "An ensemble needs at least two classifiers. "
            f"Received: {len(classifiers)}"
        )
    widths = {int(model.output.shape[-1]) for model in classifiers}
    if len(widths) != 1:
        raise ValueError(
            "The classifiers must have the same number of classes. "
            f"Received: {sorted(widths)}"
        )
    inputs = _model_inputs()
    logits = []
    for i, model in enumerate(classifiers):
        # A fresh functional wrapper, so members with equal layer and model
        # names can sit side by side.
        member = keras.Model(model.input, model.output, name=f"member_{i}")
        logits.append(member(inputs))  # [B, C]
    outputs = ProbabilityAverage(name="probability_average")(logits)
    return keras.Model(inputs=inputs, outputs=outputs, name=name)


def ngram_classifier(
    vocabulary_size,
    num_classes,
    orders=(1, 2),
    buckets=2**18,
    embedding_dim=64,
    dropout=0.0,
    name=None,
):
    """A bag-of-n-grams classifier that takes the BERT inputs.

    fastText-style (Joulin et al., 2016): every token id and every hashed
    n-gram of ids (`HashedNgrams`) has an embedding; their sum over the
    real n-grams, divided by the square root of their number, goes through
    a dense layer to class logits. It trains in about a minute on a CPU
    and makes errors unlike the encoder's, so averaging its probabilities
    with a fine-tuned `bert_classifier` (`bert_ensemble`) helps more than a
    second encoder does. Its inputs are `bert_backbone`'s (it ignores
    `segment_ids`), so the same tokenizer, pipelines and export serve it.

    Args:
        vocabulary_size: number of token ids.
        num_classes: number of classes C (at least 2).
        orders: n-gram orders (1: single ids).
        buckets: hash buckets per order above 1.
        embedding_dim: size of the n-gram embeddings.
        dropout: dropout on the pooled vector.
        name: the model name (default "ngram_classifier").

    Returns:
        A functional `keras.Model` with inputs `token_ids`, `padding_mask`,
        `segment_ids` returning float32 logits [B, C].

    Example:
    >>> import numpy as np
    >>> from keras_transformer.applications.bert import ngram_classifier
    >>> model = ngram_classifier(50, 3, buckets=64, embedding_dim=8)
    >>> ids = np.array([[2, 9, 7, 3]])
    >>> model({"token_ids": ids, "padding_mask": ids != 0,
    ...        "segment_ids": np.zeros_like(ids)}).shape
    (1, 3)
    """
    from keras_transformer.layers import HashedNgrams

    _check_head(num_classes, dropout)
    check_positive_int("embedding_dim", embedding_dim)

    # Inputs.
    inputs = _model_inputs()

    # Layers.
    ngrams = HashedNgrams(vocabulary_size, orders, buckets, name="ngrams")
    # [B, T] -> features, mask [B, F]
    features, mask = ngrams(inputs["token_ids"], inputs["padding_mask"])
    vectors = keras.layers.Embedding(
        ngrams.num_features,
        embedding_dim,
        embeddings_initializer=keras.initializers.RandomUniform(
            -(embedding_dim**-0.5), embedding_dim**-0.5
        ),
        name="ngram_embedding",
    )(features)  # [B, F, E]
    weights = ops.expand_dims(ops.cast(mask, vectors.dtype), -1)  # [B, F, 1]
    total = ops.sum(vectors * weights, axis=1)  # [B, E]
    count = ops.maximum(ops.sum(weights, axis=1), 1.0)  # [B, 1]
    pooled = total / ops.sqrt(count)
    x = keras.layers.Dropout(dropout, name="classifier_dropout")(pooled)
    logits = keras.layers.Dense(num_classes, dtype="float32", name="logits")(x)

    # Outputs.
    return keras.Model(
        inputs=inputs, outputs=logits, name=name or "ngram_classifier"
    )
