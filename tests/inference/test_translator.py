"""`Translator`: str/list calls, blank texts, beams, batching, export."""

import numpy as np
import pytest
import tensorflow as tf

import keras_transformer
from keras_transformer.data.translation import pad_batch
from keras_transformer.export import ExportError
from keras_transformer.inference import Translator

TEXTS = [
    "In the beginning God created the heavens and the earth.",
    "God is love.",
    "And the LORD spoke to Moses, saying,",
    "Blessed are the meek.",
    "x",
]
BLANK = ["", " ", "   \t \n  "]
BLANK_OUT = ["", "", ""]


@pytest.fixture(scope="module")
def translator(model_dirs):
    return keras_transformer.load(model_dirs["translation"], jit_compile=False)


@pytest.fixture(scope="module")
def greedy(translator):
    return translator.translate(TEXTS)


def test_outputs_are_real_and_depend_on_the_input(greedy):
    assert all(greedy)
    assert len(set(greedy)) > 1


def test_call_takes_a_str_or_a_list(translator, greedy):
    assert translator(TEXTS) == greedy
    assert translator(TEXTS[1]) == greedy[1]
    assert isinstance(translator(TEXTS[1]), str)
    assert translator(tuple(TEXTS[:2])) == greedy[:2]
    assert translator([]) == []


def test_blank_texts_translate_to_the_empty_string(translator, greedy):
    for text in BLANK:
        assert translator(text) == ""
    mixed = [BLANK[0], TEXTS[0], BLANK[1], TEXTS[1], BLANK[2]]
    assert translator(mixed) == ["", greedy[0], "", greedy[1], ""]
    assert translator(BLANK, num_beams=2) == ["", "", ""]


def test_num_beams_and_the_deprecated_beam_size(translator):
    beam = translator.translate(TEXTS, num_beams=2)
    assert len(beam) == len(TEXTS) and all(beam)
    with pytest.warns(DeprecationWarning, match="num_beams"):
        assert translator.translate(TEXTS, beam_size=2) == beam
    with pytest.warns(DeprecationWarning, match="num_beams"):
        assert translator(TEXTS, beam_size=2) == beam
    padded = np.array([[5, 6, 3, 0]], "int32")
    with pytest.warns(DeprecationWarning):
        old = translator.translate_ids(padded, beam_size=2)
    np.testing.assert_array_equal(old, translator.translate_ids(padded, 2))


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "2"])
def test_bad_num_beams_names_the_argument(translator, value):
    with pytest.raises(ValueError, match=r"num_beams.*Received: num_beams="):
        translator.translate(TEXTS[:1], num_beams=value)


@pytest.mark.parametrize("texts", [5, b"bytes", [TEXTS[0], 3]])
def test_texts_must_be_str(translator, texts):
    with pytest.raises(ValueError, match="texts"):
        translator.translate(texts)


def test_progress_bar_and_batching_leave_results_unchanged(
    model_dirs, greedy, capsys
):
    small = Translator.from_dir(
        model_dirs["translation"], batch_size=2, jit_compile=False
    )
    capsys.readouterr()
    assert small.translate(TEXTS + BLANK, verbose=1) == greedy + [""] * 3
    out = capsys.readouterr().out
    assert "5/5" in out and "sentence" in out
    # One batch: no bar.
    assert small.translate(TEXTS[:2], verbose=1) == greedy[:2]
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="Received: verbose=3"):
        small.translate(TEXTS, verbose=3)


def test_bad_constructor_arguments(translator):
    with pytest.raises(ValueError, match="Received: batch_size=0"):
        Translator(translator.model, translator.tokenizer, batch_size=0)
    with pytest.raises(ValueError, match="Received: max_length=99"):
        Translator(translator.model, translator.tokenizer, max_length=99)


def test_export_round_trip(model_dirs, tmp_path):
    # The object's own settings (here a shorter `max_length`) are exported.
    short = Translator.from_dir(
        model_dirs["translation"], max_length=8, jit_compile=False
    )
    expected = short.translate(TEXTS + BLANK)
    assert all(expected[: len(TEXTS)]) and expected[len(TEXTS) :] == BLANK_OUT
    output = tmp_path / "en-es" / "1"
    assert short.export(str(output)) == str(output)
    loaded = tf.saved_model.load(str(output))
    served = loaded.signatures["serving_default"](
        text=tf.constant(TEXTS + BLANK)
    )
    assert [t.decode() for t in served["translation"].numpy()] == expected
    padded = pad_batch(short.encode_texts(TEXTS[:2]))
    served = loaded.signatures["translate_ids"](
        encoder_token_ids=tf.constant(padded)
    )["token_ids"]
    assert served.shape == (2, 8)
    np.testing.assert_array_equal(served.numpy(), short.translate_ids(padded))
    with pytest.raises(ExportError, match="already exists"):
        short.export(str(output))
    _check_generate_and_beam_search(loaded, short)


_OFF = dict(no_repeat_ngram_size=0, repetition_penalty=1.0, min_new_tokens=0)


def _inputs(stop=(), stop_token_ids=(), **values):
    values = {**_OFF, **values}
    inputs = {k: tf.constant(v) for k, v in values.items()}
    inputs["stop"] = tf.constant(list(stop), tf.string)
    inputs["stop_token_ids"] = tf.constant(list(stop_token_ids), tf.int32)
    return inputs


def _check_generate_and_beam_search(loaded, translator):
    """The `generate` and `beam_search` signatures against the Python
    translator: greedy, the decoding controls, stop strings, the n-best
    list with its scores, and seeded sampling."""
    generate = loaded.signatures["generate"]
    greedy = dict(temperature=0.0, top_k=0, top_p=1.0)
    seed = {"seed": tf.constant(0, tf.int64)}

    def translations(out, key="translation"):
        return [t.decode() for t in out[key].numpy()]

    out = generate(text=tf.constant(TEXTS), **seed, **_inputs(**greedy))
    assert translations(out) == translator.translate(TEXTS)
    assert out["score"].shape == (len(TEXTS),)
    assert np.all(out["score"].numpy() < 0)
    controls = dict(no_repeat_ngram_size=2, repetition_penalty=1.5,
                    min_new_tokens=4)  # fmt: skip
    plain = translator.translate(TEXTS, **controls)
    stop = max(plain, key=len)[2:5]
    expected = translator.translate(TEXTS, stop=stop, **controls)
    out = generate(
        text=tf.constant(TEXTS), **seed,
        **_inputs(stop=["", stop], **greedy, **controls),
    )  # fmt: skip
    assert translations(out) == expected
    # Stop token ids (a run-time input): those of the Python translator.
    source = translator.encode_texts(TEXTS[:1])[0]
    token = int(translator.translate_ids([source])[0][3])
    out = generate(
        text=tf.constant(TEXTS), **seed,
        **_inputs(stop_token_ids=[-1, token], **greedy),
    )  # fmt: skip
    assert translations(out) == translator.translate(
        TEXTS, stop_token_ids=[token]
    )
    # Sampling: the same seed gives the same translations.
    sampled = dict(temperature=1.0, top_k=5, top_p=0.9)
    runs = [
        translations(
            generate(
                text=tf.constant(TEXTS),
                seed=tf.constant(s, tf.int64),
                **_inputs(**sampled),
            )  # fmt: skip
        )
        for s in (7, 7)
    ]
    assert runs[0] == runs[1]
    # The n-best list: the best is the Python beam search's, scores sorted.
    beams = loaded.signatures["beam_search"](
        text=tf.constant(TEXTS), **_inputs(length_penalty=0.6)
    )
    assert beams["translations"].shape == (len(TEXTS), 4)
    best = [row[0].decode() for row in beams["translations"].numpy()]
    assert best == translator.translate(TEXTS, num_beams=4, length_penalty=0.6)
    scores = beams["scores"].numpy()
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


def _generated(row, end_id):
    """The tokens after the start token, up to the end token."""
    row = [int(t) for t in row[1:]]
    return row[: row.index(end_id)] if end_id in row else row


def _repeated_ngrams(row, n):
    grams = [tuple(row[i : i + n]) for i in range(len(row) - n + 1)]
    return len(grams) - len(set(grams))


@pytest.mark.parametrize("num_beams", [1, 2])
def test_repetition_controls(translator, num_beams):
    padded = pad_batch(translator.encode_texts(TEXTS))
    end = translator.tokenizer.end_id
    plain = translator.translate_ids(padded, num_beams)
    banned = translator.translate_ids(padded, num_beams, no_repeat_ngram_size=2)
    for row in banned:
        assert _repeated_ngrams(_generated(row, end), 2) == 0
    if any(_repeated_ngrams(_generated(r, end), 2) for r in plain):
        assert (banned != plain).any()
    once = translator.translate_ids(padded, num_beams, no_repeat_ngram_size=1)
    for row in once:
        row = _generated(row, end)
        assert len(row) == len(set(row))
    # Off is the default path; a penalty changes only what repeats.
    off = translator.translate_ids(
        padded, num_beams, no_repeat_ngram_size=0, repetition_penalty=1.0
    )
    np.testing.assert_array_equal(off, plain)
    texts = translator.translate(
        TEXTS, num_beams=num_beams, no_repeat_ngram_size=2
    )
    strings = translator.tokenizer.detokenize(tf.constant(banned[:, 1:]))
    assert texts == [s.decode("utf-8") for s in strings.numpy()]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(no_repeat_ngram_size=-2), "Received: no_repeat_ngram_size=-2"),
        (dict(repetition_penalty=0), "Received: repetition_penalty=0"),
    ],
)
def test_bad_repetition_controls(translator, kwargs, message):
    with pytest.raises(ValueError, match=message):
        translator.translate(TEXTS[:1], **kwargs)
