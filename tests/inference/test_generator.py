"""`TextGenerator`: str/list calls, streaming, batching, samplers, export."""

import numpy as np
import pytest
import tensorflow as tf

import keras_transformer
from keras_transformer import generation
from keras_transformer.inference import (
    SAMPLERS,
    TextGenerator,
    encode_prompts,
    make_sampler,
)

PROMPTS = ["In the beginning", "", "And God said to Moses", "Jesus wept"]


@pytest.fixture(scope="module")
def generator(model_dirs):
    return keras_transformer.load(model_dirs["gpt"])


@pytest.fixture(scope="module")
def greedy(generator):
    return generator.generate(PROMPTS, max_new_tokens=6)


def test_outputs_are_real_and_depend_on_the_prompt(greedy):
    assert len(greedy) == len(PROMPTS) and all(greedy)
    assert len(set(greedy)) > 1


def test_call_takes_a_str_or_a_list(generator, greedy):
    assert generator(PROMPTS, max_new_tokens=6) == greedy
    single = generator(PROMPTS[0], max_new_tokens=6)
    assert isinstance(single, str) and single == greedy[0]
    assert generator([], max_new_tokens=6) == []


def test_stream_matches_generate(generator):
    sampler = make_sampler("top_k", top_k=10)
    batch = generator.generate(["And God"], 6, sampler, seed=3)
    streamed = "".join(generator.stream("And God", 6, sampler, seed=3))
    # Streaming runs the same steps and noise as the batched loop.
    full = generator.generate(
        ["And God"], 6, sampler, seed=3, return_full_text=True
    )[0]
    assert full == "And God" + streamed
    assert batch[0].strip() == streamed.strip()
    with pytest.raises(ValueError, match="Beam search cannot stream"):
        next(generator.stream("And God", 4, "beam"))


def test_batches_and_progress_bar_leave_greedy_results_unchanged(
    model_dirs, greedy, capsys
):
    small = TextGenerator.from_dir(model_dirs["gpt"], batch_size=2)
    capsys.readouterr()
    assert small.generate(PROMPTS, max_new_tokens=6, verbose=1) == greedy
    out = capsys.readouterr().out
    assert "4/4" in out and "prompt" in out
    assert small.generate(PROMPTS[:2], 6, verbose=1) == greedy[:2]
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="Received: batch_size=0"):
        TextGenerator(small.model, small.tokenizer, batch_size=0)


def test_make_sampler_names():
    assert set(SAMPLERS) == {"greedy", "random", "top_k", "top_p", "beam"}
    assert isinstance(make_sampler("greedy"), generation.GreedySampler)
    assert isinstance(make_sampler("beam", num_beams=2), generation.BeamSampler)
    with pytest.raises(ValueError, match="Received: sampler='nope'"):
        make_sampler("nope")


def test_encode_prompts(generator):
    ids = encode_prompts(generator.tokenizer, ["", "In the"])
    assert ids[0] == [generator.tokenizer.start_id]
    assert ids[1][0] == generator.tokenizer.start_id and len(ids[1]) > 1
    with pytest.raises(ValueError, match="prompts"):
        encode_prompts(generator.tokenizer, "In the")
    with pytest.raises(ValueError, match="prompts"):
        generator.generate([1, 2])


def test_export_round_trip(generator, tmp_path):
    output = tmp_path / "gpt" / "1"
    path = generator.export(str(output), default_max_new_tokens=5)
    assert path == str(output)
    loaded = tf.saved_model.load(path)
    served = loaded.signatures["serving_default"](prompt=tf.constant(PROMPTS))
    served = [t.decode("utf-8") for t in served["completion"].numpy()]
    assert served == generator.generate(PROMPTS, 5)
    knobs = dict(
        max_new_tokens=tf.constant(3),
        temperature=tf.constant(0.0),
        top_k=tf.constant(0),
        top_p=tf.constant(1.0),
        seed=tf.constant(0, tf.int64),
        no_repeat_ngram_size=tf.constant(0),
        repetition_penalty=tf.constant(1.0),
        min_new_tokens=tf.constant(0),
        stop=tf.constant([], tf.string),
        stop_token_ids=tf.constant([], tf.int32),
    )
    answer = loaded.signatures["generate"](prompt=tf.constant(PROMPTS), **knobs)
    greedy = generator.generate(PROMPTS, 3, return_scores=True)
    assert [t.decode("utf-8") for t in answer["completion"].numpy()] == [
        text for text, _ in greedy
    ]
    # The score: the summed log-probability, as the Python API gives it.
    np.testing.assert_allclose(
        answer["score"].numpy(), [score for _, score in greedy], atol=1e-3
    )
    # Stop token ids, a run-time input, stop as in the Python API.
    _, rows = generator.generate_ids(PROMPTS, 3)
    token = rows[0][1]
    answer = loaded.signatures["generate"](
        prompt=tf.constant(PROMPTS),
        **dict(knobs, stop_token_ids=tf.constant([token], tf.int32)),
    )
    assert [t.decode("utf-8") for t in answer["completion"].numpy()] == (
        generator.generate(PROMPTS, 3, stop_token_ids=[token])
    )
    # beam_search: the 4-best list of the Python beam search, best first.
    beams = loaded.signatures["beam_search"](
        prompt=tf.constant(PROMPTS),
        max_new_tokens=tf.constant(4),
        length_penalty=tf.constant(0.6),
        **{k: knobs[k] for k in ("no_repeat_ngram_size", "repetition_penalty",
                                 "min_new_tokens", "stop", "stop_token_ids")},
    )  # fmt: skip
    nbest = generator.generate(
        PROMPTS,
        4,
        generation.BeamSampler(4, length_penalty=0.6),
        num_return_sequences=4,
        return_scores=True,
    )
    assert beams["completions"].shape == (len(PROMPTS), 4)
    for row, scores, group in zip(
        beams["completions"].numpy(), beams["scores"].numpy(), nbest,
        strict=True,
    ):  # fmt: skip
        assert [t.decode("utf-8") for t in row] == [t for t, _ in group]
        np.testing.assert_allclose(scores, [s for _, s in group], atol=1e-4)
    # The decoding controls, as run-time inputs, give the Python API's
    # completions (a stop string cut from one of them, and an empty one).
    controls = dict(no_repeat_ngram_size=2, repetition_penalty=1.3,
                    min_new_tokens=3)  # fmt: skip
    plain = generator.generate(PROMPTS, 8, **controls)
    longest = max(plain, key=len)
    stop = ["", longest[3:6]]
    expected = generator.generate(PROMPTS, 8, stop=stop[1:], **controls)
    assert expected != plain
    inputs = dict(knobs, max_new_tokens=tf.constant(8), stop=tf.constant(stop))
    inputs.update({k: tf.constant(v) for k, v in controls.items()})
    generated = loaded.signatures["generate"](
        prompt=tf.constant(PROMPTS), **inputs
    )["completion"]
    assert [t.decode("utf-8") for t in generated.numpy()] == expected


def test_repetition_controls_without_recompiling(generator):
    prompts = ["In the beginning", "God God God"]
    end = generator.tokenizer.end_id
    decoder = generator.decoder
    prompt_ids, plain = generator.generate_ids(prompts, 12)
    traced = decoder.trace_count
    _, once = generator.generate_ids(prompts, 12, no_repeat_ngram_size=1)
    for prompt, new in zip(prompt_ids, once, strict=True):
        new = [t for t in new if t != end]
        assert len(new) == len(set(new))
        assert not set(new) & set(prompt)  # the prompt counts as history
    _, pairs = generator.generate_ids(prompts, 12, no_repeat_ngram_size=2)
    for prompt, new in zip(prompt_ids, pairs, strict=True):
        # The prompt may repeat itself; no new token repeats a bigram.
        row = prompt + new
        grams = list(zip(row[:-1], row[1:]))
        for k in range(len(prompt) - 1, len(grams)):
            assert grams[k] not in grams[:k]
    _, penalized = generator.generate_ids(prompts, 12, repetition_penalty=5.0)
    _, longer = generator.generate_ids(prompts, 12, min_new_tokens=9)
    assert all(end not in row[:9] for row in longer)
    _, off = generator.generate_ids(prompts, 12)
    assert off == plain
    assert decoder.trace_count == traced  # values change, program does not
    # Streaming applies the same controls.
    sampler = make_sampler("top_k", top_k=10)
    kwargs = dict(seed=4, no_repeat_ngram_size=2, repetition_penalty=1.5)
    batch = generator.generate(["And God"], 8, sampler, **kwargs)[0]
    streamed = "".join(generator.stream("And God", 8, sampler, **kwargs))
    assert batch.strip() == streamed.strip()
    with pytest.raises(ValueError, match="Received: repetition_penalty=-1"):
        generator.generate(prompts, 4, repetition_penalty=-1)
