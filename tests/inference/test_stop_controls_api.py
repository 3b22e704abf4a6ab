"""Stop strings and `min_new_tokens` through `TextGenerator`, `Translator`
and the command line, on tiny random-weight model directories: a stop
string cut out of the greedy output itself must end the output exactly
there, in `generate`, `stream` and `translate`."""

import pytest

import keras_transformer

PROMPT = "In the beginning"


@pytest.fixture(scope="module")
def generator(model_dirs):
    return keras_transformer.load(model_dirs["gpt"])


@pytest.fixture(scope="module")
def translator(model_dirs):
    return keras_transformer.load(model_dirs["translation"])


def _stop_inside(text):
    """A stop string from the middle of `text` (3 characters, likely to
    span a token boundary) and the text before its first occurrence."""
    assert len(text) >= 8, text
    stop = text[4:7]
    return stop, text[: text.find(stop)]


def test_generate_and_stream_end_before_the_stop(generator):
    full = generator.generate(PROMPT, max_new_tokens=12)
    stop, expected = _stop_inside(full)
    assert generator.generate(PROMPT, 12, stop=stop) == expected
    assert generator.generate(PROMPT, 12, stop=["\x00never", stop]) == expected
    # A stream shows the space between prompt and completion too.
    streamed = "".join(generator.stream(PROMPT, 12))
    assert streamed.strip() == full.strip()
    pieces = list(generator.stream(PROMPT, 12, stop=stop))
    assert "".join(pieces) == streamed[: streamed.find(stop)]
    assert all(stop not in piece for piece in pieces)
    whole = generator.generate(PROMPT, 12, return_full_text=True, stop=stop)
    assert whole.endswith(expected) and stop not in whole[len(PROMPT) :]


def test_min_new_tokens_keeps_the_end_token_away(generator):
    end = generator.tokenizer.end_id
    _, new_ids = generator.generate_ids(["", PROMPT], 10, min_new_tokens=6)
    for row in new_ids:
        assert len(row) >= 6 and end not in row[:6]


def test_translate_ends_before_the_stop(translator):
    sentence = "And God said, let there be light."
    full = translator.translate(sentence)
    stop, expected = _stop_inside(full)
    assert translator.translate(sentence, stop=stop) == expected
    assert translator.translate([sentence], stop=[stop]) == [expected]
    out = translator.translate_ids(
        [translator.encode_texts([sentence])[0]], min_new_tokens=5
    )[0]
    body = list(out[1:])
    assert translator.tokenizer.end_id not in body[:5]


def test_cli_stop_and_min_new_tokens(model_dirs, generator, capsys):
    from keras_transformer.cli import main

    full = generator.generate(PROMPT, max_new_tokens=12)
    stop, expected = _stop_inside(full)
    argv = ["generate", "--model", str(model_dirs["gpt"]), PROMPT]
    argv += ["--max-new-tokens", "12", "--stop", stop, "--min-new-tokens", "1"]
    assert main(argv) == 0
    printed = capsys.readouterr().out.rstrip("\n")
    assert printed.endswith(expected.replace("\n", " "))
    assert stop not in printed[len(PROMPT) :]


def test_cli_unescapes_line_breaks_in_stop():
    from keras_transformer.cli._use import _unescape

    assert _unescape("\\n\\n") == "\n\n"
    assert _unescape("a\\tb") == "a\tb"
    assert _unescape("\\\\n") == "\\n"
