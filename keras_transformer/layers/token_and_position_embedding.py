"""Token embedding plus position embedding, with an optional tied output."""

import math

import keras
from keras import ops

from keras_transformer.layers._utils import (
    check_positive_int,
    check_rate,
    check_required,
    renamed_argument,
)
from keras_transformer.layers.position_embedding import PositionEmbedding
from keras_transformer.layers.sinusoidal_position_encoding import (
    SinusoidalPositionEncoding,
)

_POSITION_KINDS = ("learned", "sinusoidal")


@keras.saving.register_keras_serializable(package="keras_transformer")
class TokenAndPositionEmbedding(keras.layers.Layer):
    """Sums a token embedding and a (learned or sinusoidal) position signal.

    Token id 0 is padding: with `mask_zero=True` the layer attaches the Keras
    mask `token_ids != 0` to its output, so the blocks that follow ignore
    padded positions without being passed a mask. The token embedding matrix
    is exposed as `token_embeddings` [V, D]; calling the layer with
    `reverse=True` on hidden states projects them onto the vocabulary with
    that same matrix (tied input/output embeddings).

    Args:
        vocabulary_size: int, the number of token ids V.
        sequence_length: int, the longest sequence (positions) supported.
        hidden_dim: int, the model size D (required).
        position: str, default `"learned"`. `"learned"` (a trainable
            table) or `"sinusoidal"` (the fixed sin/cos encoding of the
            paper).
        mask_zero: bool, default True. Whether id 0 is padding and
            produces a mask.
        scale_embeddings: bool, default False. Multiply the token
            embeddings by `sqrt(D)` before adding positions, as in the
            paper.
        dropout: float, default 0.0. Dropout rate applied to the sum.
        embeddings_initializer: str or `keras.initializers.Initializer`,
            default `"uniform"`. Initializer of the token embedding table.
        max_wavelength: float, default 10000. For `position="sinusoidal"`,
            the longest wavelength.
        position_initializer: str or `keras.initializers.Initializer`,
            default `"glorot_uniform"`. For `position="learned"`, the
            initializer of the [sequence_length, D] position table. Its
            scale relative to the token table's matters early in training
            (GPT-2 and BERT draw both from normals of about 0.02).
        embedding_dim: int or None, default None. Deprecated name of
            `hidden_dim` (keyword only); it warns with a
            `DeprecationWarning`, also when an old config or `.keras` file
            is loaded. `get_config()` writes `hidden_dim`.
        **kwargs: standard `keras.layers.Layer` arguments (`name`,
            `dtype`, ...).

    Call arguments:
        inputs: int tensor [B, T] of token ids, or float hidden states
            [B, T, D] when `reverse=True`.
        start_index: int or scalar int tensor, default 0. Position of the
            first token (for cached decoding).
        reverse: bool, default False. If True, return the logits
            `inputs @ token_embeddings^T`.
        training: bool or None, default None. Whether dropout is active.

    Returns:
        Embeddings [B, T, D] (with a Keras mask when `mask_zero`), or logits
        [B, T, V] when `reverse=True`.

    Example:
    >>> import numpy as np
    >>> import keras_transformer
    >>> embed = keras_transformer.layers.TokenAndPositionEmbedding(
    ...     vocabulary_size=50, sequence_length=16, hidden_dim=8)
    >>> hidden = embed(np.array([[5, 6, 0]]))
    >>> tuple(hidden.shape), tuple(embed(hidden, reverse=True).shape)
    ((1, 3, 8), (1, 3, 50))
    """

    def __init__(
        self,
        vocabulary_size,
        sequence_length,
        hidden_dim=None,
        position="learned",
        mask_zero=True,
        scale_embeddings=False,
        dropout=0.0,
        embeddings_initializer="uniform",
        max_wavelength=10000,
        position_initializer="glorot_uniform",
        *,
        embedding_dim=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        hidden_dim = renamed_argument(
            "TokenAndPositionEmbedding",
            "hidden_dim",
            hidden_dim,
            "embedding_dim",
            embedding_dim,
        )
        check_positive_int("vocabulary_size", vocabulary_size)
        check_positive_int("sequence_length", sequence_length)
        check_required("hidden_dim", hidden_dim)
        check_positive_int("hidden_dim", hidden_dim)
        check_rate("dropout", dropout)
        if position not in _POSITION_KINDS:
            raise ValueError(
                f"`position` must be one of {_POSITION_KINDS}. "
                f"Received: position={position!r}"
            )
        self.vocabulary_size = vocabulary_size
        self.sequence_length = sequence_length
        self.hidden_dim = hidden_dim
        self.position = position
        self.mask_zero = mask_zero
        self.scale_embeddings = scale_embeddings
        self.dropout = dropout
        self.embeddings_initializer = keras.initializers.get(
            embeddings_initializer
        )
        self.max_wavelength = max_wavelength
        self.position_initializer = keras.initializers.get(position_initializer)
        self.supports_masking = mask_zero

        self.token_embedding = keras.layers.Embedding(
            vocabulary_size,
            hidden_dim,
            embeddings_initializer=self.embeddings_initializer,
            dtype=self.dtype_policy,
            name="token_embedding",
        )
        if position == "learned":
            self.position_embedding = PositionEmbedding(
                sequence_length,
                initializer=self.position_initializer,
                dtype=self.dtype_policy,
                name="position",
            )
        else:
            self.position_embedding = SinusoidalPositionEncoding(
                max_wavelength, dtype=self.dtype_policy, name="position"
            )
        self.dropout_layer = keras.layers.Dropout(
            dropout, dtype=self.dtype_policy, name="dropout"
        )

    def build(self, inputs_shape):
        self.token_embedding.build(inputs_shape)
        self.position_embedding.build(tuple(inputs_shape) + (self.hidden_dim,))
        self.built = True

    @property
    def token_embeddings(self):
        """The token embedding matrix, shared by `reverse=True`.

        Returns:
            The `keras.Variable` [V, D] of the token embedding table.

        Example:
        >>> import keras_transformer
        >>> embed = keras_transformer.layers.TokenAndPositionEmbedding(
        ...     vocabulary_size=50, sequence_length=16, hidden_dim=8)
        >>> embed.build((None, None))
        >>> tuple(embed.token_embeddings.shape)
        (50, 8)
        """
        return self.token_embedding.embeddings

    def call(self, inputs, start_index=0, reverse=False, training=None):
        if reverse:
            return self._project_to_vocabulary(inputs)
        if isinstance(inputs, dict):
            raise ValueError(
                "`TokenAndPositionEmbedding` expects a tensor of token ids. "
                f"Received: inputs={type(inputs).__name__}"
            )
        tokens = self.token_embedding(inputs)
        if self.scale_embeddings:
            tokens = tokens * ops.cast(
                math.sqrt(self.hidden_dim), self.compute_dtype
            )
        positions = self.position_embedding(tokens, start_index=start_index)
        return self.dropout_layer(tokens + positions, training=training)

    def _project_to_vocabulary(self, hidden):
        """Logits [B, T, V] of hidden states [B, T, D] on the tied table.

        After `model.quantize("int8")` the table holds int8 rows and one
        scale per row (row ~= int8 / scale), so the logits are the int8
        product divided by each row's scale; a LoRA update (rank r,
        `lora_embeddings_a` [V, r] x `lora_embeddings_b` [r, D]) is added
        without forming the [V, D] product.
        """
        embedding = self.token_embedding
        mode = embedding.quantization_mode
        if mode is None:
            table = ops.cast(self.token_embeddings, self.compute_dtype)
            # [B, T, D] x [V, D] -> [B, T, V]
            return ops.einsum("btd,vd->btv", hidden, table)
        if mode != "int8":
            raise NotImplementedError(
                "The tied output projection of `TokenAndPositionEmbedding` "
                "supports int8 quantization only. Received: "
                f"quantization_mode={mode!r}"
            )
        table = ops.cast(embedding._embeddings, self.compute_dtype)
        scale = ops.cast(embedding.embeddings_scale, self.compute_dtype)
        logits = ops.einsum("btd,vd->btv", hidden, table) / scale
        if embedding.lora_enabled:
            factor = embedding.lora_alpha / embedding.lora_rank
            low = ops.einsum(
                "btd,rd->btr",
                hidden,
                ops.cast(embedding.lora_embeddings_b, self.compute_dtype),
            )
            logits = logits + factor * ops.einsum(
                "btr,vr->btv",
                low,
                ops.cast(embedding.lora_embeddings_a, self.compute_dtype),
            )
        return logits

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        if "int" not in keras.backend.standardize_dtype(inputs.dtype):
            # Reverse (output projection) mode: logits carry no mask.
            return None
        return ops.not_equal(inputs, 0)

    def compute_output_shape(self, inputs_shape):
        return tuple(inputs_shape) + (self.hidden_dim,)

    def compute_output_spec(self, inputs, reverse=False, **kwargs):
        if reverse:
            shape = tuple(inputs.shape[:-1]) + (self.vocabulary_size,)
        else:
            shape = self.compute_output_shape(inputs.shape)
        return keras.KerasTensor(shape, dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "sequence_length": self.sequence_length,
                "hidden_dim": self.hidden_dim,
                "position": self.position,
                "mask_zero": self.mask_zero,
                "scale_embeddings": self.scale_embeddings,
                "dropout": self.dropout,
                "embeddings_initializer": keras.initializers.serialize(
                    self.embeddings_initializer
                ),
                "max_wavelength": self.max_wavelength,
                "position_initializer": keras.initializers.serialize(
                    self.position_initializer
                ),
            }
        )
        return config
