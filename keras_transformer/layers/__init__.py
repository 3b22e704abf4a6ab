"""Reusable Transformer layers (backend-agnostic: keras and keras.ops only)."""

from keras_transformer.layers import masks
from keras_transformer.layers.hashed_ngrams import HashedNgrams
from keras_transformer.layers.multi_head_attention import MultiHeadAttention
from keras_transformer.layers.position_embedding import PositionEmbedding
from keras_transformer.layers.probability_average import ProbabilityAverage
from keras_transformer.layers.sinusoidal_position_encoding import (
    SinusoidalPositionEncoding,
)
from keras_transformer.layers.token_and_position_embedding import (
    TokenAndPositionEmbedding,
)
from keras_transformer.layers.transformer_decoder import (
    TransformerDecoder,
    empty_self_attention_cache,
)
from keras_transformer.layers.transformer_encoder import TransformerEncoder

__all__ = [
    "HashedNgrams",
    "MultiHeadAttention",
    "PositionEmbedding",
    "ProbabilityAverage",
    "SinusoidalPositionEncoding",
    "TokenAndPositionEmbedding",
    "TransformerDecoder",
    "TransformerEncoder",
    "empty_self_attention_cache",
    "masks",
]
