"""Run-time stop token ids, n-best with scores, sampling and streaming for
translation, on fake-logits loops and tiny random-weight model directories.

Scores are checked against the model's own full forward pass: the score of
a continuation is the sum of the log-softmax of the logits at its tokens.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_transformer
from keras_transformer import generation

PROMPT = "In the beginning"
SENTENCE = "And God said, let there be light."


@pytest.fixture(scope="module")
def generator(model_dirs):
    return keras_transformer.load(model_dirs["gpt"])


@pytest.fixture(scope="module")
def translator(model_dirs):
    return keras_transformer.load(model_dirs["translation"])


# --- the loop: run-time stop ids -------------------------------------------


def _successor(token_ids, index, cache):
    """A fake model: token (previous + 1) % 10 is by far the best."""
    return keras.ops.one_hot((token_ids + 1) % 10, 10) * 20.0, cache


def test_runtime_stop_ids_end_rows_without_retracing():
    traces = []

    def counting(token_ids, index, cache):
        traces.append(1)  # runs only while tracing
        return _successor(token_ids, index, cache)

    decode_fn = generation.compile_decode(
        counting, "greedy", stop_token_ids=[8]
    )
    buffer = np.zeros((1, 10), np.int32)
    plain = decode_fn(buffer, None, None, start_index=1)
    assert keras.ops.convert_to_numpy(plain).tolist() == [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 0]
    ]
    traced = len(traces)
    early = decode_fn(buffer, None, None, start_index=1, extra_stop_token_ids=3)
    assert keras.ops.convert_to_numpy(early).tolist() == [
        [0, 1, 2, 3, 0, 0, 0, 0, 0, 0]
    ]
    two = decode_fn(
        buffer, None, None, start_index=1, extra_stop_token_ids=[6, 5]
    )
    assert keras.ops.convert_to_numpy(two).tolist() == [
        [0, 1, 2, 3, 4, 5, 0, 0, 0, 0]
    ]
    assert len(traces) == traced  # one program for every set of stop ids


@pytest.mark.parametrize(
    "bad", [[-1], [1.5], ["3"], [True], list(range(17)), "7"]
)
def test_bad_runtime_stop_ids_are_named(bad):
    from keras_transformer.generation._buffer import runtime_stop_ids

    with pytest.raises(ValueError, match="stop_token_ids"):
        runtime_stop_ids(bad)


def test_max_new_tokens_ends_each_row_at_its_own_limit():
    # Row 0's prompt is 1 token, row 1's 3: a buffer of 3 + 2 would let row
    # 0 write 4 new tokens; the limit stops both after 2, and the scores
    # count those 2 only (each the log-softmax of logit 2 against nine 0s).
    def soft(token_ids, index, cache):
        return keras.ops.one_hot((token_ids + 1) % 10, 10) * 2.0, cache

    buffer = np.array([[1, 0, 0, 0, 0], [2, 3, 4, 0, 0]], np.int32)
    mask = buffer > 0
    ids, scores = generation.decode(
        soft, buffer, mask, None, "greedy", start_index=1,
        return_scores=True, max_new_tokens=2,
    )  # fmt: skip
    assert keras.ops.convert_to_numpy(ids).tolist() == [
        [1, 2, 3, 0, 0],
        [2, 3, 4, 5, 6],
    ]
    one = -np.log1p(9 * np.exp(-2.0))  # about -0.80
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(scores), [2 * one] * 2, rtol=1e-5
    )
    beam = generation.BeamSampler(num_beams=2)
    ids = generation.decode(
        _successor, buffer, mask, None, beam, start_index=1, max_new_tokens=2
    )
    assert keras.ops.convert_to_numpy(ids).tolist()[0] == [1, 2, 3, 0, 0]


def test_gpt_scores_of_a_mixed_batch_equal_the_single_rows(generator):
    prompts = ["God", "In the beginning God created"]
    _, rows, scores = generator.generate_ids(prompts, 5, return_scores=True)
    for prompt, row, score in zip(prompts, rows, scores, strict=True):
        _, alone, alone_scores = generator.generate_ids(
            [prompt], 5, return_scores=True
        )
        assert alone[0] == row
        assert alone_scores[0] == pytest.approx(score, abs=1e-4)


# --- GPT: n-best with scores ------------------------------------------------


def _log_softmax(logits):
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _sequence_log_prob(model, prompt_ids, new_ids):
    """Sum of log-softmax of the full forward pass at `new_ids`."""
    row = prompt_ids + new_ids
    ids = np.array([row], np.int32)
    logits = model({"token_ids": ids, "padding_mask": ids >= 0})
    logits = keras.ops.convert_to_numpy(logits)[0]
    log_probs = _log_softmax(logits)
    start = len(prompt_ids) - 1
    return float(sum(log_probs[start + i, t] for i, t in enumerate(new_ids)))


def test_gpt_scores_are_the_log_probability_of_the_full_forward(generator):
    prompt_ids, rows, scores = generator.generate_ids(
        [PROMPT], 6, "greedy", return_scores=True
    )
    expected = _sequence_log_prob(generator.model, prompt_ids[0], rows[0])
    assert scores[0] == pytest.approx(expected, abs=1e-3)
    sampler = generation.RandomSampler(temperature=1.0)
    prompt_ids, rows, scores = generator.generate_ids(
        [PROMPT], 6, sampler, seed=3, num_return_sequences=3, return_scores=True
    )
    assert len(rows) == len(scores) == 3
    for row, score in zip(rows, scores, strict=True):
        expected = _sequence_log_prob(generator.model, prompt_ids[0], row)
        assert score == pytest.approx(expected, abs=1e-3)
    assert len({tuple(row) for row in rows}) > 1  # independent draws


def test_gpt_beam_n_best_starts_with_the_best_beam(generator):
    beam = generation.BeamSampler(num_beams=4)
    best = generator.generate([PROMPT, "God"], 8, beam)
    nbest = generator.generate(
        [PROMPT, "God"], 8, beam, num_return_sequences=3, return_scores=True
    )
    assert [len(group) for group in nbest] == [3, 3]
    for group, first in zip(nbest, best, strict=True):
        assert group[0][0] == first
        scores = [score for _, score in group]
        assert scores == sorted(scores, reverse=True)
    one = generator.generate(PROMPT, 8, beam, num_return_sequences=2)
    assert isinstance(one, list) and len(one) == 2 and one[0] == best[0]
    with pytest.raises(ValueError, match="num_return_sequences"):
        generator.generate(PROMPT, 8, beam, num_return_sequences=5)
    with pytest.raises(ValueError, match="greedy"):
        generator.generate(PROMPT, 8, num_return_sequences=2)


def test_gpt_runtime_stop_token_ids(generator):
    _, rows = generator.generate_ids([PROMPT], 10)
    target = rows[0][3]
    cut = rows[0][: rows[0].index(target) + 1]
    traced = generator.decoder.trace_count
    _, stopped = generator.generate_ids([PROMPT], 10, stop_token_ids=[target])
    assert stopped[0] == cut
    assert generator.decoder.trace_count == traced
    text = generator.generate(PROMPT, 10, stop_token_ids=target)
    assert text == generator.detokenize([cut])[0]
    streamed = "".join(generator.stream(PROMPT, 10, stop_token_ids=[target]))
    assert streamed.strip() == text.strip()


# --- translation: n-best, scores, sampling, streaming ----------------------


def _translation_log_prob(translator, source, target_ids):
    model = translator.model
    encoder = np.array([source], np.int32)
    decoder_in = np.array([[translator.tokenizer.start_id] + target_ids[:-1]])
    logits = model(
        {
            "encoder_token_ids": encoder,
            "decoder_token_ids": decoder_in.astype(np.int32),
        }
    )
    log_probs = _log_softmax(keras.ops.convert_to_numpy(logits)[0])
    return float(sum(log_probs[i, t] for i, t in enumerate(target_ids)))


def test_translation_greedy_score_is_the_log_probability(translator):
    source = translator.encode_texts([SENTENCE])[0]
    ids, scores = translator.translate_ids([source], return_scores=True)
    row = [int(t) for t in ids[0][1:]]
    end = translator.tokenizer.end_id
    target = row[: row.index(end) + 1] if end in row else row
    assert scores[0] == pytest.approx(
        _translation_log_prob(translator, source, target), abs=1e-3
    )
    text, score = translator.translate(SENTENCE, return_scores=True)
    assert text == translator.translate(SENTENCE)
    assert score == pytest.approx(float(scores[0]), abs=1e-5)


def test_translation_n_best(translator):
    texts = [SENTENCE, "", "Light."]
    best = translator.translate(texts, num_beams=4)
    nbest = translator.translate(
        texts, num_beams=4, num_return_sequences=3, return_scores=True
    )
    assert [len(group) for group in nbest] == [3, 3, 3]
    assert nbest[1] == [("", 0.0)] * 3  # blank text: nothing decoded
    for group, first in zip(nbest, best, strict=True):
        assert group[0][0] == first
        scores = [score for _, score in group]
        assert scores == sorted(scores, reverse=True)
    with pytest.raises(ValueError, match="num_return_sequences"):
        translator.translate(SENTENCE, num_beams=2, num_return_sequences=3)
    with pytest.raises(ValueError, match="greedy"):
        translator.translate(SENTENCE, num_return_sequences=2)


def test_translation_sampling_is_seeded_and_scored(translator):
    sampler = generation.RandomSampler(temperature=1.5)
    first = translator.translate(SENTENCE, sampler=sampler, seed=7)
    assert translator.translate(SENTENCE, sampler=sampler, seed=7) == first
    draws = translator.translate(
        SENTENCE,
        sampler=sampler,
        seed=7,
        num_return_sequences=4,
        return_scores=True,
    )
    assert len(draws) == 4
    assert len({text for text, _ in draws}) > 1
    programs = len(translator._decode_fns)
    cool = generation.RandomSampler(temperature=0.5)
    other = translator.translate(SENTENCE, sampler=cool, seed=7)
    assert translator.translate(SENTENCE, sampler=cool, seed=7) == other
    assert len(translator._decode_fns) == programs  # temperature: run time
    with pytest.raises(ValueError, match="num_beams"):
        translator.translate(SENTENCE, num_beams=2, sampler="top_k")


def test_translation_stream_joins_to_translate(translator):
    pieces = list(translator.stream(SENTENCE))
    assert "".join(pieces) == translator.translate(SENTENCE)
    sampler = generation.TopKSampler(k=5, temperature=1.0)
    streamed = "".join(translator.stream(SENTENCE, sampler, seed=11))
    assert streamed == translator.translate(SENTENCE, sampler=sampler, seed=11)
    full = translator.translate(SENTENCE)
    if len(full) >= 8:
        stop = full[4:7]
        cut = "".join(translator.stream(SENTENCE, stop=stop))
        assert cut == full[: full.find(stop)]
    assert list(translator.stream("   ")) == []
    with pytest.raises(ValueError, match="Beam search"):
        list(translator.stream(SENTENCE, "beam"))
    with pytest.raises(ValueError, match="text"):
        list(translator.stream([SENTENCE]))


def test_translation_runtime_stop_token_ids(translator):
    source = translator.encode_texts([SENTENCE])[0]
    row = [int(t) for t in translator.translate_ids([source])[0][1:]]
    target = row[2]
    stopped = translator.translate_ids([source], stop_token_ids=[target])[0]
    body = [int(t) for t in stopped[1:]]
    assert body[: row.index(target) + 1] == row[: row.index(target) + 1]
    assert all(t == 0 for t in body[row.index(target) + 1 :])
    expected = (
        translator.tokenizer.detokenize(
            tf.constant([row[: row.index(target) + 1]])
        )
        .numpy()[0]
        .decode("utf-8")
    )
    assert translator.translate(SENTENCE, stop_token_ids=target) == expected


# --- the command line -------------------------------------------------------


def _cli(argv, capsys):
    from keras_transformer.cli import main

    assert main(argv) == 0
    return capsys.readouterr().out.splitlines()


def test_cli_translate_n_best_scores_sampling_and_stream(
    model_dirs, translator, capsys
):
    model = ["translate", "--model", str(model_dirs["translation"])]
    texts = [SENTENCE, "Light."]
    lines = _cli(model + ["--num-beams", "3", "--n-best", "2", "--scores"]
                 + texts, capsys)  # fmt: skip
    nbest = translator.translate(
        texts, num_beams=3, num_return_sequences=2, return_scores=True
    )
    expected = [
        f"{i}\t{text}\t{score:.4f}"
        for i, group in enumerate(nbest)
        for text, score in group
    ]
    assert lines == expected
    lines = _cli(model + ["--scores", SENTENCE], capsys)
    text, score = translator.translate(SENTENCE, return_scores=True)
    assert lines == [f"{text}\t{score:.4f}"]
    lines = _cli(model + ["--sampler", "top_k", "--top-k", "5", "--seed", "2",
                          SENTENCE], capsys)  # fmt: skip
    sampler = generation.TopKSampler(k=5)
    assert lines == [translator.translate(SENTENCE, sampler=sampler, seed=2)]
    assert _cli(model + ["--stream", SENTENCE, ""], capsys) == [
        translator.translate(SENTENCE),
        "",
    ]


def test_cli_generate_num_return_sequences(model_dirs, generator, capsys):
    argv = ["generate", "--model", str(model_dirs["gpt"]), PROMPT]
    argv += ["--max-new-tokens", "6", "--sampler", "beam", "--num-beams", "3"]
    lines = _cli(argv + ["--num-return-sequences", "2", "--scores"], capsys)
    nbest = generator.generate(
        PROMPT,
        6,
        generation.BeamSampler(num_beams=3),
        return_full_text=True,
        num_return_sequences=2,
        return_scores=True,
    )
    assert lines == [
        f"0\t{text.replace(chr(10), ' ')}\t{score:.4f}" for text, score in nbest
    ]


def test_cli_streaming_translation_refuses_beams(model_dirs, capsys):
    from keras_transformer.cli import main

    argv = ["translate", "--model", str(model_dirs["translation"]), "--stream"]
    assert main(argv + ["--num-beams", "2", SENTENCE]) != 0
    assert "--stream" in capsys.readouterr().err
