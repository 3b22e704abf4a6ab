"""Subword tokenization with SentencePiece, usable in tf.data and SavedModels.

`train_sentencepiece` returns a serialized SentencePiece model (proto);
`SubwordTokenizer` runs it with TensorFlow Text ops, so an exported
SavedModel loads with only `tensorflow` and `tensorflow_text`.

Special ids are fixed for every model trained here: `0` padding (`<pad>`;
layers mask id 0), `1` unknown (`<unk>`), `2` start (`<s>`), `3` end
(`</s>`), then the `user_defined_symbols` (e.g. `[MASK]`) in the order
given, then the learned pieces. Odd input never raises: the empty string
gives no ids; unseen characters and invalid UTF-8 give the unknown id
(which reads `" ⁇ "`), or byte pieces with `byte_fallback=True`.

By default the text is normalized (NFKC; runs of spaces, tabs and line
breaks become one space; leading and trailing spaces go), which suits
translation and classification. `train_sentencepiece(...,
preserve_whitespace=True)` (the GPT models) keeps every character instead,
so `detokenize(tokenize(text)) == text` exactly for source code, poetry,
CRLF text or leading spaces: no normalization, no dummy space before the
text, line breaks (`"\\n"`) and tabs as pieces of their own, and runs of
spaces as pieces. The choice is stored in the SentencePiece model itself,
so a reloaded or exported tokenizer behaves the same
(`SubwordTokenizer.preserve_whitespace` reads it back).

Why not KerasHub's (keras-hub 0.32; tests/test_tokenizers.py pins each
reason with a `test_keras_hub_*` test that fails once it no longer holds):
`keras_hub.tokenizers.compute_sentence_piece_proto` cannot reserve `[MASK]`
(BERT needs it) nor set `byte_fallback` or `character_coverage`, whose fixed
0.9995 loses rare characters (75 of the 1,408 bundled validation verses no
longer round-trip with 600 pieces; none here); and
`keras_hub.tokenizers.SentencePieceTokenizer` runs pure Python outside
`tf.function`: eager calls return lists, invalid UTF-8 raises, and its TF
Text resource is not made again after `keras.backend.clear_session()`.
"""

import logging
import os
import tempfile

import tensorflow as tf
import tensorflow_text as tf_text

from keras_transformer._sentencepiece_training import (  # noqa: F401
    END_TOKEN,
    PAD_TOKEN,
    START_TOKEN,
    UNK_TOKEN,
    WHITESPACE_SYMBOLS,
    _error,
    _keeps_whitespace,
    train_sentencepiece,
)

logger = logging.getLogger(__name__)


class SubwordTokenizer(tf.Module):
    """A SentencePiece tokenizer built on TensorFlow Text ops.

    Works eagerly, in `tf.data`, in `tf.function` and in a SavedModel: set
    it as an attribute of a `tf.Module` (or Keras model) and
    `tf.saved_model.save` stores the SentencePiece model with the graph.

    Args:
        proto: bytes, a serialized SentencePiece `ModelProto` (as returned
            by `train_sentencepiece` or read from a `.model` file). It must
            use id 0 for padding, since the layers mask id 0.
        name: str or None, default None. Name of the `tf.Module`.

    Example:

    >>> proto = keras_transformer.tokenizers.train_sentencepiece(
    ...     ["the cat sat on the mat", "the dog ran to the cat"] * 50,
    ...     vocabulary_size=20)
    >>> tokenizer = keras_transformer.tokenizers.SubwordTokenizer(proto)
    >>> ids = tokenizer.tokenize(["the cat", "the dog ran"], add_end=True)
    >>> ids.shape.as_list(), ids.to_tensor()[:, -1].numpy().tolist()
    ([2, None], [0, 3])
    >>> tokenizer.detokenize(ids.to_tensor()).numpy().tolist()  # padded
    [b'the cat', b'the dog ran']
    >>> tokenizer.id_to_token(tokenizer.end_id)
    '</s>'
    >>> path = tokenizer.save("tokenizer.model")
    >>> keras_transformer.tokenizers.SubwordTokenizer.load(path).proto == proto
    True
    """

    def __init__(self, proto, name=None):
        super().__init__(name=name)
        if not isinstance(proto, (bytes, bytearray)) or not proto:
            raise ValueError(
                "`proto` must be the non-empty bytes of a serialized "
                "SentencePiece model. Received: proto of type "
                f"{type(proto).__name__}"
            )
        proto = bytes(proto)
        import sentencepiece

        processor = sentencepiece.SentencePieceProcessor()
        try:
            processor.LoadFromSerializedProto(proto)
        except (RuntimeError, OSError) as error:
            raise ValueError(
                "`proto` is not a valid SentencePiece model. "
                f"Received: proto of {len(proto)} bytes"
            ) from error
        if processor.pad_id() != 0:
            raise _error(
                "The SentencePiece model must use id 0 for padding (the "
                "layers mask id 0); train it with `train_sentencepiece`.",
                pad_id=processor.pad_id(),
            )
        self._proto = proto
        self._vocabulary = [
            processor.IdToPiece(i) for i in range(processor.GetPieceSize())
        ]
        self._token_ids = {token: i for i, token in enumerate(self._vocabulary)}
        self._unk_id = processor.unk_id()
        self._start_id = processor.bos_id()
        self._end_id = processor.eos_id()
        self._preserve_whitespace = _keeps_whitespace(proto)
        self._sentencepiece = self._make_ops()

    def _make_ops(self):
        return tf_text.SentencepieceTokenizer(self._proto, out_type=tf.int32)

    def _ops(self):
        """Return the TF Text tokenizer, made again if its resource was freed.

        `keras.backend.clear_session()` frees the kernel-owned resource; it
        is made again on the next eager call or trace.
        """
        with tf.init_scope():
            if tf.executing_eagerly():
                try:
                    self._sentencepiece.vocab_size()
                except tf.errors.NotFoundError:
                    self._sentencepiece = self._make_ops()
        return self._sentencepiece

    proto = property(lambda self: self._proto, doc="The model, bytes.")
    vocabulary_size = property(
        lambda self: len(self._vocabulary),
        doc="The number of ids, special ones included.",
    )
    pad_id = property(lambda self: 0, doc="The padding id, always 0.")
    unk_id = property(lambda self: self._unk_id, doc="The unknown id.")
    start_id = property(
        lambda self: self._start_id, doc="The `<s>` id, -1 if none."
    )
    end_id = property(
        lambda self: self._end_id, doc="The `</s>` id, -1 if none."
    )
    preserve_whitespace = property(
        lambda self: self._preserve_whitespace,
        doc="True if `detokenize(tokenize(text)) == text` keeps spaces, "
        "tabs and line breaks (a model trained with "
        "`preserve_whitespace=True`).",
    )

    def get_vocabulary(self):
        """Return the pieces (a list of str), indexed by id."""
        return list(self._vocabulary)

    def token_to_id(self, token):
        """Return the int id of a piece, such as `"[MASK]"`.

        A piece not in the vocabulary raises `ValueError` (KerasHub answers
        the unknown id), so a missing `[MASK]` is noticed.

        Args:
            token: str, a piece of the vocabulary.
        """
        if token not in self._token_ids:
            raise _error("Token not in the vocabulary.", token=token)
        return self._token_ids[token]

    def id_to_token(self, token_id):
        """Return the str piece of an id; `ValueError` if out of range.

        Args:
            token_id: int in `[0, vocabulary_size)`.
        """
        if not 0 <= int(token_id) < len(self._vocabulary):
            raise _error(
                f"`token_id` must be in [0, {len(self._vocabulary)}).",
                token_id=token_id,
            )
        return self._vocabulary[int(token_id)]

    def tokenize(self, strings, add_start=False, add_end=False):
        """Turn UTF-8 strings into subword ids.

        Args:
            strings: a str, a list of str, or a string tensor (scalar or
                `[B]`; symbolic tensors work in graphs).
            add_start: bool, default False. Prepend `start_id`.
            add_end: bool, default False. Append `end_id`.

        Returns:
            int32 ids: a `tf.RaggedTensor` `[B, None]` for strings `[B]`, a
            1-D tensor for a scalar string.
        """
        if (add_start and self._start_id < 0) or (add_end and self._end_id < 0):
            raise ValueError(
                "The model has no start or end token. "
                f"Received: add_start={add_start}, add_end={add_end}"
            )
        strings = tf.convert_to_tensor(strings, dtype=tf.string)
        if not (add_start or add_end):
            return self._ops().tokenize(strings)
        scalar = strings.shape.rank == 0
        ids = self._ops().tokenize(strings[tf.newaxis] if scalar else strings)
        # ids: [B, None]; each marker column: [B, 1].
        column = tf.ones([ids.nrows(), 1], tf.int32)
        parts = [column * self._start_id] if add_start else []
        parts.append(ids)
        if add_end:
            parts.append(column * self._end_id)
        ids = tf.concat(parts, axis=1)
        return ids[0] if scalar else ids

    def detokenize(self, ids):
        """Turn ids back into UTF-8 strings.

        Padding, start and end ids read as nothing (SentencePiece control
        symbols), so padded outputs can be passed as they are; the unknown
        id reads `" ⁇ "`; an id out of range raises `tf.errors.OpError`.
        With a whitespace-preserving model (`preserve_whitespace`) nothing
        is stripped: the text of a row is the concatenation of its pieces,
        so the text of `ids[:k]` followed by that of `ids[k:]` is the text
        of `ids`.

        Args:
            ids: int ids, `[B, None]` (a `tf.RaggedTensor`, a padded dense
                tensor or a list of lists) or one sequence `[T]`.

        Returns:
            A `tf.string` tensor, `[B]` for a batch, scalar for a sequence.
        """
        if not isinstance(ids, (tf.Tensor, tf.RaggedTensor)):
            ids = tf.ragged.constant(ids, dtype=tf.int32)
        if ids.dtype != tf.int32:
            ids = tf.cast(ids, tf.int32)
        return self._ops().detokenize(ids)

    def __call__(self, strings):
        return self.tokenize(strings)

    def save(self, path):
        """Write the SentencePiece model to a file, atomically.

        A temporary file in the same folder replaces `path` when complete.

        Args:
            path: str or path-like, the destination (e.g. `tokenizer.model`).

        Returns:
            The path written, as a str.
        """
        path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        fd, temp_path = tempfile.mkstemp(dir=directory, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(self._proto)
            os.chmod(temp_path, 0o644)
            os.replace(temp_path, path)
        except BaseException:
            if os.path.exists(temp_path):
                os.remove(temp_path)
            raise
        return path

    @classmethod
    def load(cls, path, name=None):
        """Create a tokenizer from a SentencePiece model file.

        Args:
            path: str or path-like, a file written by `save` (or any
                SentencePiece `.model` file with padding id 0).
            name: str or None, default None. Name of the `tf.Module`.

        Returns:
            A `SubwordTokenizer`; `FileNotFoundError` if there is no file.
        """
        with open(path, "rb") as f:
            return cls(f.read(), name=name)

    def to_keras_hub(self, sequence_length=None):
        """Return the equivalent `keras_hub.tokenizers.SentencePieceTokenizer`.

        Args:
            sequence_length: int or None, default None. If set, the KerasHub
                tokenizer pads or truncates its outputs to this length.

        Returns:
            The KerasHub layer, holding the same proto (same ids).
        """
        import keras_hub

        return keras_hub.tokenizers.SentencePieceTokenizer(
            proto=self._proto, sequence_length=sequence_length
        )
