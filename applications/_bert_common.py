"""Names, inputs and checks shared by the BERT-input models (private).

The public home of everything here is `keras_transformer.applications.bert`.
"""

import keras

BACKBONE_INPUTS = ("token_ids", "padding_mask", "segment_ids")
EMBEDDING_LAYER = "token_and_position_embedding"
# The layers below the first encoder block, and the blocks' name prefix.
EMBEDDING_LAYERS = (EMBEDDING_LAYER, "segment_embedding", "embeddings_norm")
BLOCK_PREFIX = "transformer_layer_"


def check_dropout(dropout):
    """Raises ValueError unless `dropout` is in [0, 1)."""
    if not 0.0 <= dropout < 1.0:
        raise ValueError(
            f"`dropout` must be in [0, 1). Received: dropout={dropout}"
        )


def check_head(num_classes, dropout):
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
    check_dropout(dropout)


def model_inputs():
    """A fresh dict of the backbone's int32 inputs [B, T], by name."""
    return {
        key: keras.Input(shape=(None,), dtype="int32", name=key)
        for key in BACKBONE_INPUTS
    }


def initializer():
    """BERT's initializer of every weight matrix."""
    # BERT initializes every weight matrix from N(0, 0.02), truncated.
    return keras.initializers.TruncatedNormal(stddev=0.02)
