"""Training SentencePiece models for `keras_transformer.tokenizers` (private).

The fixed special ids, the options that give them, and whitespace-preserving
training (chunks of whole lines, pieces for line breaks and tabs) are
described in `keras_transformer.tokenizers`, which re-exports
`train_sentencepiece`.
"""

import io
import logging
import random
import re

import tensorflow as tf

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
