"""Subword tokenization with SentencePiece, usable in tf.data and SavedModels.

`train_sentencepiece` learns a SentencePiece model in memory and returns its
serialized proto; `SubwordTokenizer` wraps that proto in TensorFlow Text ops,
so the same tokenizer runs eagerly, in `tf.data` pipelines, inside
`tf.function` and inside an exported SavedModel (which then needs only
`tensorflow` and `tensorflow_text` to load).

Special ids are fixed for every model trained here: `0` is padding (`<pad>`;
layers mask id 0), `1` unknown (`<unk>`), `2` start (`<s>`), `3` end
(`</s>`), then the `user_defined_symbols` (for example `[MASK]`, `[CLS]`,
`[SEP]`) in the order given, then the learned pieces.

Odd input never raises: the empty string gives no ids; a character never
seen in training (an emoji, say) and invalid UTF-8 bytes map to the unknown
id `1` (or to byte pieces, with `byte_fallback=True`). The unknown id
detokenizes to `" ⁇ "`, so only text made of known characters round-trips.
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


def _texts_as_list(texts):
    """Materialize str/bytes items of a list, generator or tf.data.Dataset."""
    if isinstance(texts, (str, bytes)):
        raise ValueError(
            "`texts` must be an iterable of strings, not a single string. "
            f"Received: texts={texts[:50]!r}"
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
        text = text.strip()
        if text:
            result.append(text)
    return result


def train_sentencepiece(
    texts,
    vocabulary_size,
    *,
    model_type="unigram",
    user_defined_symbols=(),
    character_coverage=1.0,
    byte_fallback=False,
    normalization="nmt_nfkc",
    max_sentences=200_000,
    seed=0,
    num_threads=2,
):
    """Train a SentencePiece model in memory and return its proto.

    Training is deterministic: the same texts and arguments give the same
    bytes. When there are more than `max_sentences` non-empty texts, a
    sample of that size (drawn with `seed`) is used, which keeps training to
    a few seconds.

    Args:
        texts: iterable of str or bytes (a list, a generator or a
            `tf.data.Dataset` of scalar strings); blank items are skipped.
        vocabulary_size: int, the number of pieces, special ones included.
        model_type: `"unigram"` (default), `"bpe"`, `"char"` or `"word"`.
        user_defined_symbols: strings kept whole and given the ids right
            after the four special ones, e.g. `("[MASK]", "[CLS]", "[SEP]")`
            get ids 4, 5 and 6.
        character_coverage: float in (0, 1], share of characters covered by
            the vocabulary; rarer characters become `<unk>`.
        byte_fallback: bool, add 256 byte pieces so that unseen characters
            are spelled as UTF-8 bytes instead of `<unk>`.
        normalization: SentencePiece normalization rule: `"nmt_nfkc"`
            (default: NFKC and whitespace clean-up), `"nfkc"`,
            `"nmt_nfkc_cf"` (also case-folds) or `"identity"`.
        max_sentences: int, the most texts used for training.
        seed: int, seed of the sample drawn when there are too many texts.
        num_threads: int, training threads.

    Returns:
        The serialized SentencePiece `ModelProto`, as bytes.

    Raises:
        ValueError: bad arguments, no text, or a `vocabulary_size` larger
            than the corpus supports (the message gives the maximum).

    Example:

    >>> proto = keras_transformer.tokenizers.train_sentencepiece(
    ...     ["the cat sat on the mat", "the dog ran to the cat"] * 50,
    ...     vocabulary_size=20)
    >>> tokenizer = keras_transformer.tokenizers.SubwordTokenizer(proto)
    """
    import sentencepiece

    if not isinstance(vocabulary_size, int) or isinstance(
        vocabulary_size, bool
    ):
        raise ValueError(
            "`vocabulary_size` must be an int. "
            f"Received: vocabulary_size={vocabulary_size!r}"
        )
    if model_type not in _MODEL_TYPES:
        raise ValueError(
            f"`model_type` must be one of {_MODEL_TYPES}. "
            f"Received: model_type={model_type!r}"
        )
    if isinstance(user_defined_symbols, str):
        raise ValueError(
            "`user_defined_symbols` must be a list of strings. "
            f"Received: user_defined_symbols={user_defined_symbols!r}"
        )
    user_defined_symbols = list(user_defined_symbols)
    for symbol in user_defined_symbols:
        if not isinstance(symbol, str) or not symbol or symbol.isspace():
            raise ValueError(
                "Each user-defined symbol must be a non-blank string. "
                f"Received: user_defined_symbols={user_defined_symbols!r}"
            )
        if symbol in _SPECIAL_TOKENS:
            raise ValueError(
                f"{symbol!r} is already a special token. "
                f"Received: user_defined_symbols={user_defined_symbols!r}"
            )
    if len(set(user_defined_symbols)) != len(user_defined_symbols):
        raise ValueError(
            "`user_defined_symbols` must not repeat a symbol. "
            f"Received: user_defined_symbols={user_defined_symbols!r}"
        )
    minimum = len(_SPECIAL_TOKENS) + len(user_defined_symbols) + 1
    if vocabulary_size < minimum:
        raise ValueError(
            f"`vocabulary_size` must be at least {minimum} (4 special "
            "tokens, the user-defined symbols and one learned piece). "
            f"Received: vocabulary_size={vocabulary_size}"
        )
    if byte_fallback and vocabulary_size < minimum + 256:
        raise ValueError(
            "With `byte_fallback=True`, `vocabulary_size` must be at least "
            f"{minimum + 256} (256 byte pieces). "
            f"Received: vocabulary_size={vocabulary_size}"
        )
    if not 0.0 < character_coverage <= 1.0:
        raise ValueError(
            "`character_coverage` must be in (0, 1]. "
            f"Received: character_coverage={character_coverage}"
        )
    if max_sentences < 1:
        raise ValueError(
            "`max_sentences` must be at least 1. "
            f"Received: max_sentences={max_sentences}"
        )
    if num_threads < 1:
        raise ValueError(
            f"`num_threads` must be at least 1. Received: num_threads="
            f"{num_threads}"
        )

    texts = _texts_as_list(texts)
    if not texts:
        raise ValueError(
            "`texts` holds no non-blank text to train on. Received: texts "
            "with 0 non-blank items"
        )
    if len(texts) > max_sentences:
        indices = sorted(
            random.Random(seed).sample(range(len(texts)), k=max_sentences)
        )
        texts = [texts[i] for i in indices]
        logger.info(
            "Training SentencePiece on a sample of %d texts.", len(texts)
        )

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
            user_defined_symbols=user_defined_symbols,
            pad_id=0,
            unk_id=1,
            bos_id=2,
            eos_id=3,
            pad_piece=PAD_TOKEN,
            unk_piece=UNK_TOKEN,
            bos_piece=START_TOKEN,
            eos_piece=END_TOKEN,
            input_sentence_size=max_sentences,
            shuffle_input_sentence=False,
            num_threads=num_threads,
            minloglevel=2,
        )
    except RuntimeError as error:
        match = re.search(r"value <= (\d+)", str(error))
        if match:
            raise ValueError(
                "`vocabulary_size` is too large for this corpus: at most "
                f"{match.group(1)} pieces can be learned from it. Use a "
                "smaller vocabulary or more text. "
                f"Received: vocabulary_size={vocabulary_size}"
            ) from error
        raise ValueError(
            f"SentencePiece training failed: {error}. "
            f"Received: vocabulary_size={vocabulary_size}, "
            f"model_type={model_type!r}, normalization={normalization!r}"
        ) from error
    return model.getvalue()


class SubwordTokenizer(tf.Module):
    """A SentencePiece tokenizer built on TensorFlow Text ops.

    Works eagerly, in `tf.data.Dataset.map`, inside `tf.function`, and in a
    SavedModel: assign it to an attribute of a `tf.Module` (or a Keras
    model) and `tf.saved_model.save` stores the SentencePiece model with the
    graph; loading needs only `tensorflow` and `import tensorflow_text`.

    The proto must use id 0 for padding, since the layers mask id 0; every
    model made by `train_sentencepiece` does.

    Args:
        proto: bytes, a serialized SentencePiece `ModelProto` (as returned
            by `train_sentencepiece` or read from a `.model` file).
        name: optional name of the `tf.Module`.

    Example:

    >>> proto = keras_transformer.tokenizers.train_sentencepiece(
    ...     ["the cat sat on the mat", "the dog ran to the cat"] * 50,
    ...     vocabulary_size=20)
    >>> tokenizer = keras_transformer.tokenizers.SubwordTokenizer(proto)
    >>> ids = tokenizer.tokenize(["the cat", "the dog ran"])  # ragged
    >>> tokenizer.detokenize(ids).numpy().tolist()
    [b'the cat', b'the dog ran']
    """

    def __init__(self, proto, name=None):
        super().__init__(name=name)
        if isinstance(proto, bytearray):
            proto = bytes(proto)
        if not isinstance(proto, bytes) or not proto:
            raise ValueError(
                "`proto` must be the non-empty bytes of a serialized "
                "SentencePiece model. Received: proto of type "
                f"{type(proto).__name__}"
            )
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
            raise ValueError(
                "The SentencePiece model must use id 0 for padding (the "
                "layers mask id 0); train it with `train_sentencepiece`. "
                f"Received: pad_id={processor.pad_id()}"
            )
        self._proto = proto
        self._vocabulary = [
            processor.IdToPiece(i) for i in range(processor.GetPieceSize())
        ]
        self._token_ids = {token: i for i, token in enumerate(self._vocabulary)}
        self._unk_id = processor.unk_id()
        self._start_id = processor.bos_id()
        self._end_id = processor.eos_id()
        self._sentencepiece = self._make_ops()

    def _make_ops(self):
        return tf_text.SentencepieceTokenizer(
            model=self._proto, out_type=tf.int32
        )

    def _call_op(self, method, inputs):
        """Run a TF Text method, re-creating a freed model resource.

        `keras.backend.clear_session()` clears TensorFlow's kernel cache,
        which frees the kernel-owned SentencePiece resource. It is made again
        on the next eager call or trace (functions traced before the clear
        must be traced again).
        """
        if tf.executing_eagerly():
            try:
                return getattr(self._sentencepiece, method)(inputs)
            except tf.errors.NotFoundError:
                self._sentencepiece = self._make_ops()
                return getattr(self._sentencepiece, method)(inputs)
        with tf.init_scope():
            if tf.executing_eagerly():
                try:
                    self._sentencepiece.vocab_size()
                except tf.errors.NotFoundError:
                    self._sentencepiece = self._make_ops()
        return getattr(self._sentencepiece, method)(inputs)

    @property
    def proto(self):
        """The serialized SentencePiece model, bytes."""
        return self._proto

    @property
    def vocabulary_size(self):
        """The number of ids, special ones included."""
        return len(self._vocabulary)

    @property
    def pad_id(self):
        """The padding id, always 0."""
        return 0

    @property
    def unk_id(self):
        """The id of unknown characters."""
        return self._unk_id

    @property
    def start_id(self):
        """The start-of-sequence id (`<s>`), -1 if the model has none."""
        return self._start_id

    @property
    def end_id(self):
        """The end-of-sequence id (`</s>`), -1 if the model has none."""
        return self._end_id

    def get_vocabulary(self):
        """Return the list of pieces, indexed by id.

        Returns:
            A list of str of length `vocabulary_size`.

        Example:

        >>> tokenizer.get_vocabulary()[:4]  # doctest: +SKIP
        ['<pad>', '<unk>', '<s>', '</s>']
        """
        return list(self._vocabulary)

    def token_to_id(self, token):
        """Return the id of a piece, such as `"[MASK]"`.

        Args:
            token: str, a piece of the vocabulary.

        Returns:
            The int id.

        Raises:
            ValueError: the piece is not in the vocabulary.

        Example:

        >>> tokenizer.token_to_id("<pad>")  # doctest: +SKIP
        0
        """
        if token not in self._token_ids:
            raise ValueError(
                f"Token not in the vocabulary. Received: token={token!r}"
            )
        return self._token_ids[token]

    def id_to_token(self, token_id):
        """Return the piece of an id.

        Args:
            token_id: int in `[0, vocabulary_size)`.

        Returns:
            The str piece.

        Example:

        >>> tokenizer.id_to_token(0)  # doctest: +SKIP
        '<pad>'
        """
        if not 0 <= int(token_id) < len(self._vocabulary):
            raise ValueError(
                f"`token_id` must be in [0, {len(self._vocabulary)}). "
                f"Received: token_id={token_id}"
            )
        return self._vocabulary[int(token_id)]

    def tokenize(self, strings, add_start=False, add_end=False):
        """Turn UTF-8 strings into subword ids.

        Args:
            strings: a str, a list of str, or a string tensor (scalar or
                batch; symbolic tensors work in graphs).
            add_start: bool, prepend `start_id` to each sequence.
            add_end: bool, append `end_id` to each sequence.

        Returns:
            For a batch of shape `[B]`, a `tf.RaggedTensor` of int32 ids of
            shape `[B, None]`; for a scalar string, a 1-D int32 tensor.

        Example:

        >>> tokenizer.tokenize(["in the beginning", ""])  # doctest: +SKIP
        <tf.RaggedTensor [[45, 8, 312], []]>
        """
        strings = tf.convert_to_tensor(strings, dtype=tf.string)
        ids = self._call_op("tokenize", strings)
        if add_start or add_end:
            if add_start and self._start_id < 0:
                raise ValueError(
                    "The model has no start token. Received: add_start=True"
                )
            if add_end and self._end_id < 0:
                raise ValueError(
                    "The model has no end token. Received: add_end=True"
                )
            ids = self._add_markers(ids, add_start, add_end)
        return ids

    def _add_markers(self, ids, add_start, add_end):
        if isinstance(ids, tf.RaggedTensor):
            # ids: [B, None]; markers: [B, 1].
            rows = ids.nrows(out_type=tf.int64)
            parts = [ids]
            if add_start:
                start = tf.fill(
                    [rows, 1], tf.constant(self._start_id, tf.int32)
                )
                parts.insert(0, tf.RaggedTensor.from_tensor(start))
            if add_end:
                end = tf.fill([rows, 1], tf.constant(self._end_id, tf.int32))
                parts.append(tf.RaggedTensor.from_tensor(end))
            return tf.concat(parts, axis=1)
        parts = [ids]
        if add_start:
            parts.insert(0, tf.constant([self._start_id], tf.int32))
        if add_end:
            parts.append(tf.constant([self._end_id], tf.int32))
        return tf.concat(parts, axis=0)

    def detokenize(self, ids):
        """Turn ids back into UTF-8 strings.

        Padding, start and end ids are dropped first, so padded model
        outputs can be passed as they are. The unknown id reads `" ⁇ "`.

        Args:
            ids: int ids, `[B, None]` (a `tf.RaggedTensor`, a padded dense
                tensor or a list of lists) or one sequence `[T]`.

        Returns:
            A `tf.string` tensor: shape `[B]` for a batch, a scalar for one
            sequence.

        Raises:
            tf.errors.OpError: an id is outside `[0, vocabulary_size)`.

        Example:

        >>> tokenizer.detokenize([[45, 8, 312, 3, 0, 0]])  # doctest: +SKIP
        <tf.Tensor: shape=(1,), dtype=string, numpy=array([b'in the ...'])>
        """
        if not isinstance(ids, (tf.Tensor, tf.RaggedTensor)):
            ids = tf.ragged.constant(ids, dtype=tf.int32)
            if not isinstance(ids, tf.RaggedTensor):
                ids = tf.convert_to_tensor(ids, tf.int32)
        if ids.dtype != tf.int32:
            ids = tf.cast(ids, tf.int32)
        if isinstance(ids, tf.Tensor) and ids.shape.rank == 2:
            ids = tf.RaggedTensor.from_tensor(ids)  # [B, T] -> [B, None]
        keep = tf.logical_and(
            tf.not_equal(ids, self.pad_id),
            tf.logical_and(
                tf.not_equal(ids, self._start_id),
                tf.not_equal(ids, self._end_id),
            ),
        )
        if isinstance(ids, tf.RaggedTensor):
            ids = tf.ragged.boolean_mask(ids, keep)
        else:
            ids = tf.boolean_mask(ids, keep)
        return self._call_op("detokenize", ids)

    def __call__(self, strings):
        return self.tokenize(strings)

    def save(self, path):
        """Write the SentencePiece model to a file, atomically.

        The bytes go to a temporary file in the same folder, which then
        replaces `path`, so a crash never leaves a half-written model.

        Args:
            path: destination path, conventionally ending in `.model`.

        Returns:
            The path written, as a str.

        Example:

        >>> tokenizer.save("/tmp/vocab.model")  # doctest: +SKIP
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
            path: a file written by `save` (or any SentencePiece `.model`
                file with padding id 0).
            name: optional name of the `tf.Module`.

        Returns:
            A `SubwordTokenizer`.

        Example:

        >>> tokenizer = keras_transformer.tokenizers.SubwordTokenizer.load(
        ...     "/tmp/vocab.model")  # doctest: +SKIP
        """
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No tokenizer model file: {path!r}")
        with open(path, "rb") as f:
            return cls(f.read(), name=name)

    def to_keras_hub(self, sequence_length=None):
        """Return the equivalent `keras_hub.tokenizers.SentencePieceTokenizer`.

        Args:
            sequence_length: optional int; if set, the KerasHub tokenizer
                pads or truncates its outputs to this length.

        Returns:
            A `keras_hub.tokenizers.SentencePieceTokenizer` holding the same
            proto (same ids for the same text).

        Example:

        >>> hub_tokenizer = tokenizer.to_keras_hub()  # doctest: +SKIP
        """
        import keras_hub

        return keras_hub.tokenizers.SentencePieceTokenizer(
            proto=self._proto, sequence_length=sequence_length
        )
