"""Odd inputs, mixed and empty batches and concurrency against the exported
SavedModels, run in a fresh process (see `battery.py`).

Documented behaviour (serving/README.md): every input string gets an
answer; a blank text (empty or whitespace only) translates to ""; text the
tokenizer has never seen (emoji, invalid UTF-8) becomes the unknown token;
the classifier and the translator keep the first tokens, GPT the last
tokens that leave room for the new ones. The Python API
(`keras_transformer.load`) gives the same answers as the SavedModels.
"""

import json
import math

import numpy as np
import pytest

MODELS = ("classifier", "gpt", "translation")
ODD = ("empty", "whitespace", "long", "invalid_utf8", "emoji")


def _rows(outputs, index):
    """Row `index` of every output: {name: value}."""
    return {name: entry["values"][index] for name, entry in outputs.items()}


def _assert_same(a, b):
    for name in a:
        if isinstance(a[name], str):
            assert a[name] == b[name], name
        else:
            np.testing.assert_allclose(a[name], b[name], atol=1e-5)


def _assert_valid(kind, outputs, batch_size):
    for name, entry in outputs.items():
        assert entry["shape"][0] == batch_size, name
        if entry["dtype"] == "string":
            assert entry["invalid_utf8"] == 0, name
        else:
            assert entry["finite"], name
    if kind == "classifier":
        assert outputs["probabilities"]["dtype"] == "float32"
        for row in outputs["probabilities"]["values"]:
            assert math.isclose(sum(row), 1.0, abs_tol=1e-5)
            assert all(0.0 <= p <= 1.0 for p in row)


@pytest.mark.parametrize("kind", MODELS)
def test_odd_inputs_get_valid_answers(battery, model_dirs, kind):
    result = battery[kind]
    assert not result["keras_transformer_imported"]
    assert set(result["single"]) >= {*ODD, "normal"}
    for outputs in result["single"].values():
        _assert_valid(kind, outputs, 1)
        if kind == "classifier":
            # The label is the class name of the highest probability.
            metadata = (model_dirs[kind] / "metadata.json").read_text()
            names = json.loads(metadata)["inference"]["class_names"]
            (probabilities,) = outputs["probabilities"]["values"]
            assert len(probabilities) == len(names)
            best = names[int(np.argmax(probabilities))]
            assert outputs["label"]["values"] == [best]
        else:
            # Every completion / translation is decodable text.
            (entry,) = outputs.values()
            assert entry["dtype"] == "string"
            assert isinstance(entry["values"][0], str)


@pytest.mark.parametrize("kind", MODELS)
def test_long_inputs_are_truncated(battery, kind):
    single = battery[kind]["single"]
    # 100,000 and 200,000 characters of the same text: the model reads only
    # its maximum length of tokens, so the answers are identical.
    _assert_same(_rows(single["long"], 0), _rows(single["longer"], 0))
    if "generate" in battery[kind]:  # gpt and translation
        generate = battery[kind]["generate"]
        _assert_same(_rows(generate["long"], 0), _rows(generate["longer"], 0))


@pytest.mark.parametrize("kind", MODELS)
def test_mixed_batch_rows_equal_single_rows(battery, kind):
    result = battery[kind]
    mixed = result["mixed"]
    _assert_valid(kind, mixed, len(result["mixed_cases"]))
    for index, case in enumerate(result["mixed_cases"]):
        _assert_same(_rows(mixed, index), _rows(result["single"][case], 0))
    if "generate" in result:
        generate = result["generate_mixed"]
        _assert_valid(kind, generate, len(result["mixed_cases"]))
        for case in ("long", "empty", "invalid_utf8"):
            index = result["mixed_cases"].index(case)
            _assert_same(
                _rows(generate, index), _rows(result["generate"][case], 0)
            )


@pytest.mark.parametrize("kind", MODELS)
def test_empty_batch_gives_empty_outputs(battery, kind):
    result = battery[kind]
    empty = result["empty_batch"]
    normal = result["single"]["normal"]
    assert set(empty) == set(normal)
    for name, entry in empty.items():
        assert entry["dtype"] == normal[name]["dtype"]
        assert entry["shape"] == [0] + normal[name]["shape"][1:]
        assert entry["values"] == []
    if "generate" in result:
        key = "completion" if kind == "gpt" else "translation"
        assert result["generate_empty_batch"][key]["shape"] == [0]


@pytest.mark.parametrize("kind", MODELS)
def test_eight_threads_match_sequential_calls(battery, kind):
    result = battery[kind]
    assert result["concurrent_errors"] == []
    assert len(result["concurrent"]) == 8
    for sequential, concurrent in zip(
        result["sequential"], result["concurrent"]
    ):
        for index in range(3):
            _assert_same(_rows(sequential, index), _rows(concurrent, index))


def test_blank_texts_translate_to_the_empty_string(battery):
    result = battery["translation"]
    single = result["single"]
    for case in ("empty", "whitespace"):
        assert single[case]["translation"]["values"] == [""], case
    for case in ("normal", "normal2"):  # so the check above can fail
        assert single[case]["translation"]["values"][0] != "", case
    mixed = result["mixed"]["translation"]["values"]
    for index, case in enumerate(result["mixed_cases"]):
        assert (mixed[index] == "") == (case in ("empty", "whitespace"))


# Python str cannot hold invalid UTF-8 (the CLI reads it as U+FFFD).
PYTHON_CASES = ("normal", "normal2", "empty", "whitespace", "long", "emoji")


@pytest.mark.parametrize("kind", MODELS)
def test_python_api_gives_the_savedmodel_answers(battery, model_dirs, kind):
    import keras_transformer
    from tests.serving.battery import CASES

    model = keras_transformer.load(model_dirs[kind])
    texts = [CASES[case].decode("utf-8") for case in PYTHON_CASES]
    served = [battery[kind]["single"][case] for case in PYTHON_CASES]
    if kind == "translation":
        expected = [entry["translation"]["values"][0] for entry in served]
        assert model(texts) == expected
    elif kind == "gpt":
        expected = [entry["completion"]["values"][0] for entry in served]
        tokens = min(64, model.max_sequence_length - 1)
        assert model(texts, max_new_tokens=tokens) == expected
    else:
        probabilities = [
            entry["probabilities"]["values"][0] for entry in served
        ]
        np.testing.assert_allclose(
            model.predict_proba(texts), probabilities, atol=1e-5
        )
        labels = [entry["label"]["values"][0] for entry in served]
        assert [label for label, _ in model(texts)] == labels
