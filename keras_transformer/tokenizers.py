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

import io
import logging
import os
import random
import re
import tempfile

import tensorflow as tf
import tensorflow_text as tf_text

logger = logging.getLogger(__name__)

PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"
START_TOKEN = "<s>"
END_TOKEN = "</s>"
_SPECIAL_TOKENS = (PAD_TOKEN, UNK_TOKEN, START_TOKEN, END_TOKEN)
_MODEL_TYPES = ("unigram", "bpe", "char", "word")
# Pieces of their own in a whitespace-preserving model, after the
# user-defined symbols: a prompt ending in a line break tokenizes as the
# same text does in the middle of a passage.
WHITESPACE_SYMBOLS = ("\n", "\t")
# Whitespace-preserving training reads chunks of whole lines of about this
# many bytes; a longer sentence (a single longer line) is skipped.
_CHUNK_BYTES = 2048
_MAX_SENTENCE_BYTES = 1 << 16
# SentencePiece names the four special ids pad, unk, bos and eos.
_SPECIAL_OPTIONS = {
    **{f"{role}_id": i for i, role in enumerate(("pad", "unk", "bos", "eos"))},
    **{
        f"{role}_piece": token
        for role, token in zip(("pad", "unk", "bos", "eos"), _SPECIAL_TOKENS)
    },
}


def _error(message, **received):
    """Return a ValueError ending `Received: name=value` (private)."""
    ((name, value),) = received.items()
    return ValueError(f"{message} Received: {name}={value!r}")


def _texts_as_list(texts, keep_whitespace=False):
    """Return the non-blank str items of a list, generator or Dataset.

    Items are stripped, or with `keep_whitespace` cut into chunks of whole
    lines (see `_line_chunks`).
    """
    if isinstance(texts, (str, bytes)):
        raise _error(
            "`texts` must be an iterable of strings, not a single string.",
            texts=texts[:50],
        )
    if isinstance(texts, tf.data.Dataset):
        texts = texts.as_numpy_iterator()
    result = []
    for text in texts:
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        elif not isinstance(text, str):
            raise ValueError(
                "`texts` must hold str or bytes items. "
                f"Received: item of type {type(text).__name__}"
            )
        if not text.strip():
            continue
        if keep_whitespace:
            result.extend(_line_chunks(text))
        else:
            result.append(text.strip())
    return result


def _line_chunks(text):
    """Cut a text into chunks of whole lines, line ends kept (private).

    A chunk ends after the line that takes it to `_CHUNK_BYTES` UTF-8
    bytes, so long documents stay under the trainer's sentence limit. The
    trainer drops whitespace at the end of each sentence (a CRLF line end
    would lose its `"\\r"`), so lines are not given one by one.
    """
    chunks, chunk, size = [], [], 0
    for line in text.splitlines(keepends=True):
        chunk.append(line)
        size += len(line.encode("utf-8"))
        if size >= _CHUNK_BYTES:
            chunks.append("".join(chunk))
            chunk, size = [], 0
    if chunk:
        chunks.append("".join(chunk))
    return chunks


def train_sentencepiece(
    texts,
    vocabulary_size,
    *,
    model_type="unigram",
    user_defined_symbols=(),
    character_coverage=1.0,
    byte_fallback=False,
    normalization=None,
    preserve_whitespace=False,
    max_sentences=200_000,
    seed=0,
    num_threads=2,
):
    """Train a SentencePiece model in memory and return its proto.

    Deterministic: the same texts and arguments give the same bytes. Above
    `max_sentences` non-blank texts, a sample of that size (drawn with
    `seed`) is used. The module docstring says why this is not
    `keras_hub.tokenizers.compute_sentence_piece_proto`.

    Args:
        texts: iterable of str or bytes (a list, a generator or a
            `tf.data.Dataset` of scalar strings); blank items are skipped.
        vocabulary_size: int, the number of pieces, special ones included.
        model_type: str, `"unigram"` (default), `"bpe"`, `"char"`, `"word"`.
        user_defined_symbols: sequence of str, default `()`. Pieces kept
            whole and given the ids right after the four special ones, e.g.
            `("[MASK]", "[CLS]", "[SEP]")` get ids 4, 5 and 6.
        character_coverage: float in (0, 1], default 1.0. Share of
            characters covered by the vocabulary; rarer ones become `<unk>`.
        byte_fallback: bool, default False. Add 256 byte pieces so unseen
            characters are spelled as UTF-8 bytes instead of `<unk>`.
        normalization: str or None, SentencePiece normalization rule:
            `"nmt_nfkc"` (NFKC and whitespace clean-up; the default, None,
            unless `preserve_whitespace`), `"nfkc"`, `"nmt_nfkc_cf"` (also
            case-folds) or `"identity"` (the only one, and the default,
            with `preserve_whitespace`).
        preserve_whitespace: bool, default False. Keep every character, so
            that detokenizing the ids gives the text back exactly: no
            normalization, no whitespace clean-up, no dummy space before
            the text, `"\\n"` and `"\\t"` as pieces of their own (ids right
            after the user-defined symbols), whitespace-only pieces
            allowed. Texts are cut into lines (line ends kept) for the
            trainer. For language models of code and prose; pair it with
            `byte_fallback=True` so unseen characters survive too.
        max_sentences: int, default 200,000. The most texts used (with
            `preserve_whitespace`, the most lines).
        seed: int, default 0. Seed of the `max_sentences` sample.
        num_threads: int, default 2. Training threads.

    Returns:
        The serialized SentencePiece `ModelProto`, as bytes.

    Raises:
        ValueError: bad arguments, no text, or a `vocabulary_size` above
            what the corpus supports (the message gives the maximum).

    Example:

    >>> proto = keras_transformer.tokenizers.train_sentencepiece(
    ...     ["the cat sat on the mat", "the dog ran to the cat"] * 50,
    ...     vocabulary_size=20, user_defined_symbols=["[MASK]"])
    >>> tokenizer = keras_transformer.tokenizers.SubwordTokenizer(proto)
    >>> tokenizer.vocabulary_size, tokenizer.token_to_id("[MASK]")
    (20, 4)
    """
    import sentencepiece

    symbols = user_defined_symbols
    if not isinstance(symbols, str):
        symbols = list(symbols)
    if model_type not in _MODEL_TYPES:
        raise _error(
            f"`model_type` must be one of {_MODEL_TYPES}.",
            model_type=model_type,
        )
    if isinstance(symbols, str) or not all(
        isinstance(symbol, str) and symbol.strip() for symbol in symbols
    ):
        raise _error(
            "`user_defined_symbols` must be a list of non-blank strings.",
            user_defined_symbols=symbols,
        )
    clashes = [symbol for symbol in symbols if symbol in _SPECIAL_TOKENS]
    if clashes:
        raise _error(
            f"{clashes[0]!r} is already a special token.",
            user_defined_symbols=symbols,
        )
    if len(set(symbols)) != len(symbols):
        raise _error(
            "`user_defined_symbols` must not repeat a symbol.",
            user_defined_symbols=symbols,
        )
    if normalization is None:
        normalization = "identity" if preserve_whitespace else "nmt_nfkc"
    if preserve_whitespace and normalization != "identity":
        raise _error(
            "`preserve_whitespace=True` keeps the text as it is, so the "
            "normalization must be 'identity' (or None).",
            normalization=normalization,
        )
    if preserve_whitespace:
        symbols = symbols + list(WHITESPACE_SYMBOLS)
        whitespace_options = dict(
            remove_extra_whitespaces=False,
            add_dummy_prefix=False,
            allow_whitespace_only_pieces=True,
            split_by_whitespace=True,
            max_sentence_length=_MAX_SENTENCE_BYTES,
        )
    else:
        whitespace_options = {}
    least = len(_SPECIAL_TOKENS) + len(symbols) + 1
    if byte_fallback:
        least += 256
    if type(vocabulary_size) is not int or vocabulary_size < least:
        raise _error(
            f"`vocabulary_size` must be an int of at least {least}: 4 special"
            " tokens, the user-defined symbols, one learned piece (and 256 "
            "byte pieces with `byte_fallback=True`).",
            vocabulary_size=vocabulary_size,
        )
    if not 0.0 < character_coverage <= 1.0:
        raise _error(
            "`character_coverage` must be in (0, 1].",
            character_coverage=character_coverage,
        )
    if max_sentences < 1:
        raise _error(
            "`max_sentences` must be >= 1.", max_sentences=max_sentences
        )
    if num_threads < 1:
        raise _error("`num_threads` must be >= 1.", num_threads=num_threads)
    texts = _texts_as_list(texts, keep_whitespace=preserve_whitespace)
    if not texts:
        raise ValueError(
            "`texts` holds no non-blank text to train on. Received: texts "
            "with 0 non-blank items"
        )
    if len(texts) > max_sentences:
        rows = random.Random(seed).sample(range(len(texts)), k=max_sentences)
        texts = [texts[i] for i in sorted(rows)]
        logger.info("Training SentencePiece on %d sampled texts.", len(texts))

    model = io.BytesIO()
    try:
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(texts),
            model_writer=model,
            vocab_size=vocabulary_size,
            model_type=model_type,
            character_coverage=character_coverage,
            byte_fallback=byte_fallback,
            normalization_rule_name=normalization,
            user_defined_symbols=symbols,
            **whitespace_options,
            **_SPECIAL_OPTIONS,
            input_sentence_size=max_sentences,
            shuffle_input_sentence=False,
            num_threads=num_threads,
            minloglevel=2,
        )
    except RuntimeError as error:
        match = re.search(
            r"smaller than required_chars\. \d+ vs (\d+)", str(error)
        )
        if match:
            raise _error(
                f"`vocabulary_size` is too small for this corpus: it needs at "
                f"least {match.group(1)} pieces (the special ones, every "
                "character of the text and the byte pieces). Use a larger "
                "vocabulary or a lower `character_coverage`.",
                vocabulary_size=vocabulary_size,
            ) from error
        match = re.search(r"value <= (\d+)", str(error))
        if match:
            raise _error(
                "`vocabulary_size` is too large for this corpus: at most "
                f"{match.group(1)} pieces can be learned from it. Use a "
                "smaller vocabulary or more text.",
                vocabulary_size=vocabulary_size,
            ) from error
        raise ValueError(
            f"SentencePiece training failed: {error}. "
            f"Received: vocabulary_size={vocabulary_size}, "
            f"model_type={model_type!r}, normalization={normalization!r}, "
            f"preserve_whitespace={preserve_whitespace}"
        ) from error
    return model.getvalue()


def _keeps_whitespace(proto):
    """Whether a SentencePiece model keeps the text as it is (private)."""
    from sentencepiece import sentencepiece_model_pb2

    model = sentencepiece_model_pb2.ModelProto.FromString(proto)
    spec = model.normalizer_spec
    return (
        spec.name == "identity"
        and not spec.remove_extra_whitespaces
        and not spec.add_dummy_prefix
    )


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
