"""Tests for SentencePiece training and `SubwordTokenizer`."""

import io
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import sentencepiece
import tensorflow as tf

from keras_transformer.data import load_bundled_lm_text
from keras_transformer.tokenizers import SubwordTokenizer, train_sentencepiece

SYMBOLS = ("[MASK]", "[CLS]", "[SEP]")


@pytest.fixture(scope="module")
def corpus():
    return load_bundled_lm_text("valid")


@pytest.fixture(scope="module")
def proto(corpus):
    return train_sentencepiece(corpus, 600, user_defined_symbols=SYMBOLS)


@pytest.fixture(scope="module")
def tokenizer(proto):
    return SubwordTokenizer(proto)


def _decoded(tensor):
    return [item.decode("utf-8") for item in tensor.numpy().tolist()]


def test_special_ids_and_symbols(tokenizer):
    assert tokenizer.vocabulary_size == 600
    assert tokenizer.get_vocabulary()[:7] == [
        "<pad>",
        "<unk>",
        "<s>",
        "</s>",
        "[MASK]",
        "[CLS]",
        "[SEP]",
    ]
    assert (tokenizer.pad_id, tokenizer.unk_id) == (0, 1)
    assert (tokenizer.start_id, tokenizer.end_id) == (2, 3)
    assert tokenizer.token_to_id("[MASK]") == 4
    assert tokenizer.id_to_token(6) == "[SEP]"
    with pytest.raises(ValueError, match="Received: token='\\[NOPE\\]'"):
        tokenizer.token_to_id("[NOPE]")
    with pytest.raises(ValueError, match="Received: token_id=600"):
        tokenizer.id_to_token(600)
    # A user-defined symbol is never split.
    ids = tokenizer.tokenize("[CLS] Ruth [MASK]").numpy().tolist()
    assert 5 in ids and 4 in ids


def test_round_trip_on_normal_text(tokenizer, corpus):
    lines = corpus[:200] + [
        "The Lord is my shepherd; I shall not want.",
        "“Why?” she asked, twelve times.",
    ]
    ids = tokenizer.tokenize(lines)
    assert isinstance(ids, tf.RaggedTensor)
    assert ids.dtype == tf.int32
    assert ids.shape[0] == len(lines)
    assert _decoded(tokenizer.detokenize(ids)) == lines
    # No pad or unknown id in ordinary text.
    assert int(tf.reduce_min(ids.flat_values)) > 3


def test_scalar_empty_and_markers(tokenizer):
    scalar = tokenizer.tokenize("in the beginning")
    assert isinstance(scalar, tf.Tensor) and scalar.shape.rank == 1
    assert tokenizer.tokenize("").numpy().tolist() == []
    batch = tokenizer.tokenize(["", "in the beginning", ""])
    assert batch.row_lengths().numpy().tolist()[0::2] == [0, 0]
    assert _decoded(tokenizer.detokenize(batch)) == ["", "in the beginning", ""]
    marked = tokenizer.tokenize(["a b", ""], add_start=True, add_end=True)
    assert marked[1].numpy().tolist() == [2, 3]
    assert marked[0].numpy().tolist()[0] == 2
    assert marked[0].numpy().tolist()[-1] == 3
    one = tokenizer.tokenize("a b", add_start=True, add_end=True)
    assert one.numpy().tolist() == marked[0].numpy().tolist()


def test_detokenize_drops_padding_start_and_end(tokenizer):
    ids = tokenizer.tokenize(["and he said", "amen"], add_start=True)
    padded = ids.to_tensor()  # [B, T] padded with 0.
    padded = tf.concat([padded, tf.fill([2, 3], 3)], axis=1)
    assert _decoded(tokenizer.detokenize(padded)) == ["and he said", "amen"]
    as_lists = [row + [0, 0] for row in ids.to_list()]
    assert _decoded(tokenizer.detokenize(as_lists)) == ["and he said", "amen"]
    single = tokenizer.detokenize(ids[0])
    assert single.shape.rank == 0
    assert single.numpy().decode() == "and he said"


def test_odd_input_does_not_raise(tokenizer):
    strings = tf.constant(["😀 hello", b"bad \xff\xfe bytes", "\t  \n"])
    ids = tokenizer.tokenize(strings)
    assert ids.shape[0] == 3
    assert 1 in ids[0].numpy().tolist()  # The emoji is unknown.
    assert 1 in ids[1].numpy().tolist()  # So are invalid bytes.
    assert ids[2].numpy().tolist() == []
    text = _decoded(tokenizer.detokenize(ids[:1]))[0]
    assert "⁇" in text and "hello" in text
    with pytest.raises(tf.errors.OpError):
        tokenizer.detokenize([[tokenizer.vocabulary_size]])


def test_byte_fallback_spells_unknown_characters(corpus):
    proto = train_sentencepiece(corpus[:300], 400, byte_fallback=True)
    tokenizer = SubwordTokenizer(proto)
    ids = tokenizer.tokenize(["Amen 😀"])
    assert 1 not in ids.flat_values.numpy().tolist()
    assert _decoded(tokenizer.detokenize(ids)) == ["Amen 😀"]


def test_works_in_tf_data_and_tf_function(tokenizer, corpus):
    dataset = tf.data.Dataset.from_tensor_slices(corpus[:8])
    dataset = dataset.map(tokenizer.tokenize).padded_batch(4)
    batch = next(iter(dataset))
    assert batch.dtype == tf.int32 and batch.shape[0] == 4
    eager = tokenizer.tokenize(corpus[:4]).to_tensor()
    np.testing.assert_array_equal(batch.numpy()[:, : eager.shape[1]], eager)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def round_trip(strings):
        return tokenizer.detokenize(tokenizer.tokenize(strings, add_end=True))

    assert _decoded(round_trip(tf.constant(corpus[:3]))) == corpus[:3]


def test_survives_keras_clear_session(proto):
    import keras

    tokenizer = SubwordTokenizer(proto)
    expected = tokenizer.tokenize(["and he said"]).to_list()
    keras.backend.clear_session()  # Frees the TF Text kernel resource.
    dataset = tf.data.Dataset.from_tensor_slices(["and he said"])
    batch = next(iter(dataset.map(tokenizer.tokenize).ragged_batch(1)))
    assert batch.to_list() == expected
    keras.backend.clear_session()
    assert tokenizer.tokenize(["and he said"]).to_list() == expected


def test_training_is_deterministic(corpus):
    first = train_sentencepiece(corpus[:300], 300, seed=3, max_sentences=200)
    second = train_sentencepiece(corpus[:300], 300, seed=3, max_sentences=200)
    assert first == second
    generator = train_sentencepiece((line for line in corpus[:300]), 300)
    assert generator == train_sentencepiece(corpus[:300], 300)
    dataset = tf.data.Dataset.from_tensor_slices(corpus[:300])
    assert train_sentencepiece(dataset, 300) == generator


@pytest.mark.parametrize("model_type", ["unigram", "bpe", "char"])
def test_detokenize_inverts_tokenize(corpus, model_type):
    proto = train_sentencepiece(corpus[:300], 200, model_type=model_type)
    tokenizer = SubwordTokenizer(proto)
    texts = corpus[300:320] + ["And Naomi said, “Go, return.”", "Amen."]
    ids = tokenizer.tokenize(texts, add_start=True, add_end=True)
    assert _decoded(tokenizer.detokenize(ids)) == texts
    assert _decoded(tokenizer.detokenize(ids.to_tensor())) == texts
    one = tokenizer.tokenize(texts[0])
    assert tokenizer.detokenize(one).numpy().decode() == texts[0]


def test_bpe_model(corpus):
    proto = train_sentencepiece(corpus[:300], 300, model_type="bpe")
    tokenizer = SubwordTokenizer(proto)
    assert tokenizer.get_vocabulary()[:4] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert (
        _decoded(tokenizer.detokenize(tokenizer.tokenize(corpus[:5])))
        == (corpus[:5])
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"vocabulary_size": 3}, "Received: vocabulary_size=3"),
        ({"vocabulary_size": 8.0}, "Received: vocabulary_size=8.0"),
        ({"model_type": "wordpiece"}, "Received: model_type='wordpiece'"),
        ({"user_defined_symbols": "[MASK]"}, "Received: user_defined_symbols"),
        ({"user_defined_symbols": ["<s>"]}, "already a special token"),
        ({"user_defined_symbols": ["a", "a"]}, "must not repeat"),
        ({"character_coverage": 0.0}, "Received: character_coverage=0.0"),
        ({"byte_fallback": True}, "Received: vocabulary_size=30"),
        ({"max_sentences": 0}, "Received: max_sentences=0"),
        (
            {"preserve_whitespace": True, "normalization": "nmt_nfkc"},
            "Received: normalization='nmt_nfkc'",
        ),
    ],
)
def test_bad_training_arguments(kwargs, match):
    arguments = {"vocabulary_size": 30, **kwargs}
    with pytest.raises(ValueError, match=match):
        train_sentencepiece(["the cat sat on the mat"] * 5, **arguments)


def test_bad_training_texts():
    with pytest.raises(ValueError, match="not a single string"):
        train_sentencepiece("just one string", 30)
    with pytest.raises(ValueError, match="no non-blank text"):
        train_sentencepiece(["", "  "], 30)
    with pytest.raises(ValueError, match="of type int"):
        train_sentencepiece(["a", 3], 30)


def test_vocabulary_too_large_for_corpus():
    with pytest.raises(ValueError, match=r"at most \d+ pieces") as info:
        train_sentencepiece(["hello world", "foo bar"], 500)
    assert "Received: vocabulary_size=500" in str(info.value)


def test_save_and_load(tokenizer, tmp_path, corpus):
    path = tmp_path / "sub" / "vocab.model"
    assert tokenizer.save(path) == str(path)
    assert os.listdir(path.parent) == ["vocab.model"]  # No temp file left.
    loaded = SubwordTokenizer.load(path)
    assert loaded.proto == tokenizer.proto
    np.testing.assert_array_equal(
        loaded.tokenize(corpus[:5]).flat_values,
        tokenizer.tokenize(corpus[:5]).flat_values,
    )
    # The reloaded tokenizer gives identical ids, row by row, and text.
    texts = corpus[:50] + ["", "😀 amen"]
    for markers in ({}, {"add_start": True, "add_end": True}):
        ids = tokenizer.tokenize(texts, **markers)
        assert loaded.tokenize(texts, **markers).to_list() == ids.to_list()
        assert _decoded(loaded.detokenize(ids)) == _decoded(
            tokenizer.detokenize(ids)
        )
    assert loaded.get_vocabulary() == tokenizer.get_vocabulary()
    assert (loaded.start_id, loaded.end_id) == (2, 3)
    # Saving again replaces the file in place.
    tokenizer.save(path)
    assert os.listdir(path.parent) == ["vocab.model"]
    with pytest.raises(FileNotFoundError, match="missing.model"):
        SubwordTokenizer.load(tmp_path / "missing.model")


def test_bad_protos(corpus):
    with pytest.raises(ValueError, match="Received: proto of type str"):
        SubwordTokenizer("not bytes")
    with pytest.raises(ValueError, match="not a valid SentencePiece model"):
        SubwordTokenizer(b"garbage bytes")
    # A model trained with SentencePiece defaults has no padding id 0.
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus[:200]),
        model_writer=model,
        vocab_size=100,
        minloglevel=2,
    )
    with pytest.raises(ValueError, match="Received: pad_id=-1"):
        SubwordTokenizer(model.getvalue())


def test_to_keras_hub_gives_the_same_ids(tokenizer, corpus):
    hub_tokenizer = tokenizer.to_keras_hub()
    ours = tokenizer.tokenize(corpus[:5])
    theirs = hub_tokenizer(corpus[:5])
    if isinstance(theirs, tf.RaggedTensor):
        theirs = theirs.to_list()
    assert ours.to_list() == [list(row) for row in theirs]
    assert hub_tokenizer.vocabulary_size() == tokenizer.vocabulary_size


_FRESH_PROCESS_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the SentencePiece ops)
    assert not any(name.startswith("keras_transformer") for name in sys.modules)
    module = tf.saved_model.load(sys.argv[1])
    outputs = module.serve(tf.constant(json.loads(sys.argv[2])))
    print(json.dumps({
        "ids": outputs["ids"].numpy().tolist(),
        "text": [t.decode("utf-8") for t in outputs["text"].numpy().tolist()],
    }))
    """
)


def test_saved_model_reloads_in_a_fresh_process(tokenizer, tmp_path):
    class Exported(tf.Module):
        def __init__(self, tokenizer):
            super().__init__()
            self.tokenizer = tokenizer

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def serve(self, strings):
            ids = self.tokenizer.tokenize(strings, add_start=True, add_end=True)
            return {
                "ids": ids.to_tensor(),  # [B, T], padded with 0.
                "text": self.tokenizer.detokenize(ids),
            }

    module = Exported(tokenizer)
    strings = ["And God said, “Let there be light.”", "", "amen 😀"]
    expected = module.serve(tf.constant(strings))
    path = str(tmp_path / "exported")
    tf.saved_model.save(module, path)

    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _FRESH_PROCESS_SCRIPT,
            path,
            json.dumps(strings),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    reloaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert reloaded["ids"] == expected["ids"].numpy().tolist()
    assert reloaded["text"] == _decoded(expected["text"])
    assert reloaded["text"][:2] == strings[:2]


# Each `test_keras_hub_*` test pins a reason, written in the docstring of
# keras_transformer/tokenizers.py, to keep our own code rather than KerasHub's
# (keras-hub 0.32). When one fails, the reason is gone: use KerasHub there.


def test_keras_hub_trainer_lacks_our_options(corpus, proto):
    import keras_hub

    train = keras_hub.tokenizers.compute_sentence_piece_proto
    dataset = tf.data.Dataset.from_tensor_slices(corpus)
    # No way to reserve [MASK] (or set byte_fallback, character_coverage).
    for option, value in (
        ("user_defined_symbols", SYMBOLS),
        ("byte_fallback", True),
        ("character_coverage", 1.0),
    ):
        with pytest.raises(TypeError, match=option):
            train(dataset, 600, **{option: value})
    # Training through KerasHub is deterministic and keeps our special ids.
    first = train(dataset, 600)
    assert train(dataset, 600) == first
    theirs = SubwordTokenizer(first)
    assert theirs.get_vocabulary()[:4] == ["<pad>", "<unk>", "<s>", "</s>"]
    # But its fixed character coverage (0.9995) loses rare characters.
    lost = [
        line
        for line, back in zip(
            corpus, _decoded(theirs.detokenize(theirs.tokenize(corpus)))
        )
        if line != back
    ]
    assert len(lost) > 10
    ours = SubwordTokenizer(proto)  # The same corpus and size, ours.
    assert _decoded(ours.detokenize(ours.tokenize(corpus))) == corpus


def test_keras_hub_layer_is_python_outside_tf_function(tokenizer):
    import keras

    layer = tokenizer.to_keras_hub()
    assert isinstance(layer.tokenize(["and he said"]), list)  # not ragged
    assert isinstance(layer.detokenize([[5, 6]]), list)  # not a tensor
    with pytest.raises(UnicodeDecodeError):
        layer.tokenize(tf.constant([b"bad \xff bytes"]))
    keras.backend.clear_session()  # Frees its TF Text resource for good.
    dataset = tf.data.Dataset.from_tensor_slices(["and he said"])
    with pytest.raises(tf.errors.NotFoundError):
        next(iter(dataset.map(layer.tokenize)))


# ----------------------------------------------------------------------
# Whitespace-preserving models (GPT): the text comes back exactly.
# ----------------------------------------------------------------------
PYTHON_SOURCE = (
    "import os\n\n\ndef walk(root):\n    for name in os.listdir(root):\n"
    "        if name.startswith('.'):\n            continue\n\n"
    "        yield name\n\n\nclass Tabs:\n\tdef f(self, x):\n"
    "\t\treturn  x + 1   \n"
)
POEM = (
    "Tyger Tyger, burning bright,\n  In the forests of the night;\n\n"
    "    What immortal hand or eye,\n\n\n  Could frame thy fearful symmetry?"
)
CRLF = "first line\r\nsecond line\r\n\r\nafter a blank line\r\n"
UNICODE = "emoji 😀🎉 and CJK 漢字とかな, 한국어 — “quotes” café\n"
SPACES = "   leading and trailing spaces   "
WHITESPACE_TEXTS = {
    "python": PYTHON_SOURCE,
    "poem": POEM,
    "crlf": CRLF,
    "unicode": UNICODE,
    "spaces": SPACES,
    "only_whitespace": " \n\t \r\n  ",
}


@pytest.fixture(scope="module")
def whitespace_tokenizer():
    corpus = [PYTHON_SOURCE, POEM, CRLF, UNICODE, SPACES] * 20
    proto = train_sentencepiece(
        corpus, 330, byte_fallback=True, preserve_whitespace=True
    )
    return SubwordTokenizer(proto)


@pytest.mark.parametrize("kind", sorted(WHITESPACE_TEXTS))
def test_preserve_whitespace_round_trips_exactly(whitespace_tokenizer, kind):
    tokenizer = whitespace_tokenizer
    text = WHITESPACE_TEXTS[kind]
    ids = tokenizer.tokenize(text)
    assert tokenizer.detokenize(ids).numpy().decode("utf-8") == text
    # With markers and in a padded batch too.
    texts = [text, "x"]
    batch = tokenizer.tokenize(texts, add_start=True, add_end=True)
    assert _decoded(tokenizer.detokenize(batch.to_tensor())) == texts
    # No dummy space is added or dropped: any cut decodes to two halves
    # that join to the text (a completion decoded alone keeps its
    # leading spaces).
    ids = ids.numpy().tolist()
    for cut in range(len(ids) + 1):
        halves = tokenizer.detokenize(
            tf.ragged.constant([ids[:cut], ids[cut:]])
        )
        assert "".join(_decoded(halves)) == text


def test_preserve_whitespace_pieces_and_flag(whitespace_tokenizer, proto):
    tokenizer = whitespace_tokenizer
    assert tokenizer.preserve_whitespace
    assert not SubwordTokenizer(proto).preserve_whitespace
    vocabulary = tokenizer.get_vocabulary()
    # Line break and tab come right after the special ids.
    assert vocabulary[4:6] == ["\n", "\t"]
    ids = tokenizer.tokenize("def f(x):\n    return x").numpy().tolist()
    assert ids.count(4) == 1
    # Never seen: spelled in bytes, still exact.
    text = "ǅ ⟁ \u2028 \x0b\x0c"
    back = tokenizer.detokenize(tokenizer.tokenize(text)).numpy()
    assert back.decode("utf-8") == text


def test_preserve_whitespace_survives_save_and_saved_model(
    whitespace_tokenizer, tmp_path
):
    path = whitespace_tokenizer.save(tmp_path / "tokenizer.model")
    loaded = SubwordTokenizer.load(path)
    assert loaded.preserve_whitespace
    module = tf.Module()
    module.tokenizer = loaded
    module.round_trip = tf.function(
        lambda s: loaded.detokenize(loaded.tokenize(s)),
        input_signature=[tf.TensorSpec([None], tf.string)],
    )
    tf.saved_model.save(module, str(tmp_path / "saved"))
    reloaded = tf.saved_model.load(str(tmp_path / "saved"))
    texts = [WHITESPACE_TEXTS[k] for k in sorted(WHITESPACE_TEXTS)]
    assert _decoded(reloaded.round_trip(tf.constant(texts))) == texts


def test_default_normalization_still_cleans_whitespace(tokenizer):
    text = "  In   the\tbeginning\n"
    back = tokenizer.detokenize(tokenizer.tokenize(text)).numpy().decode()
    assert back == "In the beginning"


def test_vocabulary_too_small_for_the_byte_pieces():
    with pytest.raises(ValueError, match="too small for this corpus") as info:
        train_sentencepiece(
            [UNICODE] * 5, 270, byte_fallback=True, preserve_whitespace=True
        )
    assert "Received: vocabulary_size=270" in str(info.value)
