"""A bag-of-n-grams classifier on the BERT inputs (private; the public
home is `keras_transformer.applications.bert.ngram_classifier`).
"""

import keras
from keras import ops
from keras_transformer.applications._bert_common import (
    check_head,
    model_inputs,
)

from keras_transformer.layers import HashedNgrams
from keras_transformer.layers._utils import check_positive_int


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
        vocabulary_size: int, the number of token ids.
        num_classes: int, the number of classes C (at least 2).
        orders: tuple of ints, default `(1, 2)`. The n-gram orders (1:
            single ids).
        buckets: int, default `2**18`. Hash buckets per order above 1.
        embedding_dim: int, default 64. The size E of the n-gram embedding
            table's rows (the rows of a `keras.layers.Embedding`; this
            model has no Transformer width `hidden_dim`).
        dropout: float, default 0.0. Dropout on the pooled vector.
        name: str or None, default None (then `"ngram_classifier"`). The
            model name.

    Returns:
        A functional `keras.Model` with inputs `token_ids`, `padding_mask`,
        `segment_ids` returning float32 logits [B, C].

    Example:
    >>> import numpy as np
    >>> import keras_transformer
    >>> model = keras_transformer.applications.bert.ngram_classifier(
    ...     50, 3, buckets=64, embedding_dim=8)
    >>> ids = np.array([[2, 9, 7, 3]])
    >>> logits = model({"token_ids": ids, "padding_mask": ids != 0,
    ...                 "segment_ids": np.zeros_like(ids)})
    >>> tuple(logits.shape)
    (1, 3)
    """
    check_head(num_classes, dropout)
    check_positive_int("embedding_dim", embedding_dim)

    # Inputs.
    inputs = model_inputs()

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
