"""Fine-tuning helpers of the BERT models (private; the public home is
`keras_transformer.applications.bert`): weight transfer by layer name,
layer-wise learning-rate decay, and probability-averaging ensembles.
"""

import keras
from keras_transformer.applications._bert_common import (
    BLOCK_PREFIX,
    EMBEDDING_LAYER,
    EMBEDDING_LAYERS,
    model_inputs,
)

from keras_transformer.layers import ProbabilityAverage


def load_backbone_weights(target, source):
    """Copies encoder weights from one BERT model into another, by name.

    Every layer of `target` that also exists in `source` with the same name
    and weight shapes receives `source`'s values: the embeddings and the
    encoder blocks of a pretrained `bert_masked_lm` go into a new
    `bert_classifier`, for instance. Layers only one side has (the MLM
    head, the pooler or the classification layer) are left as they are.

    Args:
        target: `keras.Model`, the model to update (made by a function of
            this module).
        source: `keras.Model`, the model to copy from.

    Returns:
        The sorted list of the layer names copied.

    Example:
    >>> import keras_transformer
    >>> bert = keras_transformer.applications.bert
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


def check_layer_decay(decay, name="layer_decay"):
    """Raises a clear error unless `decay` is a number in (0, 1].

    Args:
        decay: the value to check.
        name: str, default `"layer_decay"`. The argument name for the
            message.

    Returns:
        None; raises `ValueError` naming `name` otherwise.

    Example:
    >>> import keras_transformer
    >>> keras_transformer.applications.bert.check_layer_decay(0.8)
    >>> try:
    ...     keras_transformer.applications.bert.check_layer_decay(0)
    ... except ValueError as error:
    ...     print(error)
    `layer_decay` must be a number in (0, 1]. Received: layer_decay=0
    """
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
        model: `keras.Model`, made by a function of this module.
        decay: float in (0, 1], the factor per layer.

    Returns:
        A dict of variable path to factor, for every trainable variable
        (pass it to `optimizers.bert_adamw(rate_multipliers=...)`).

    Example:
    >>> import keras_transformer
    >>> bert = keras_transformer.applications.bert
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
        if layer.name.startswith(BLOCK_PREFIX)
    ]
    if not blocks:
        raise ValueError(
            "The model has no BERT encoder blocks (layers named "
            f"'{BLOCK_PREFIX}<i>'). Received: model={model.name!r}"
        )
    num_layers = len(blocks)
    factors = {}
    for layer in model.layers:
        if layer.name in EMBEDDING_LAYERS:
            depth = 0
        elif layer.name.startswith(BLOCK_PREFIX):
            depth = int(layer.name[len(BLOCK_PREFIX) :]) + 1
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
        classifiers: list of two or more `keras.Model`s made by
            `bert_classifier` or `ngram_classifier` (or loaded from their
            `.keras` files), with the same number of classes.
        name: str, default `"bert_ensemble"`. The model name.

    Returns:
        A functional `keras.Model` with the backbone's dict inputs
        returning float32 logits [B, C].

    Example:
    >>> import keras_transformer
    >>> bert = keras_transformer.applications.bert
    >>> kwargs = dict(vocabulary_size=50, num_layers=1, hidden_dim=16,
    ...               num_heads=2, intermediate_dim=32)
    >>> members = [bert.bert_classifier(kwargs, 3),
    ...            bert.ngram_classifier(50, 3, buckets=64, embedding_dim=8)]
    >>> tuple(bert.bert_ensemble(members).output.shape)
    (None, 3)
    """
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
    inputs = model_inputs()
    logits = []
    for i, model in enumerate(classifiers):
        # A fresh functional wrapper, so members with equal layer and model
        # names can sit side by side.
        member = keras.Model(model.input, model.output, name=f"member_{i}")
        logits.append(member(inputs))  # [B, C]
    outputs = ProbabilityAverage(name="probability_average")(logits)
    return keras.Model(inputs=inputs, outputs=outputs, name=name)
