"""`min_new_tokens` and stop strings against hand-computed expectations on
fake-logits models: the stop ids are forbidden exactly until a row has N
new tokens (greedy, beam, compiled without retracing), and a stop string
is found across token boundaries, removed, and never shown by a stream."""

import keras
import numpy as np
import pytest

from keras_transformer import generation
from keras_transformer.generation import repetition
from keras_transformer.generation.stop_strings import (
    StopStringStream,
    check_stop,
    truncate,
)

STOP, PAD = 4, 9


def _step_fn(traces=None):
    """A fake model: after 1 it wants the stop token 4, else (t + 1) % 10."""

    def step_fn(token_ids, index, cache):
        if traces is not None:
            traces.append(1)  # runs once per trace when compiled
        wanted = keras.ops.where(token_ids == 1, STOP, (token_ids + 1) % 10)
        return keras.ops.one_hot(wanted, 10) * 5.0, cache

    return step_fn


# Row 0: prompt [0]; row 1: prompt [0, 1].
PROMPTS = np.array([[0, 0, 0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0, 0]])
MASK = np.zeros((2, 8), bool)
MASK[0, :1] = MASK[1, :2] = True
# By hand: blocking 4 leaves the one-hot row all zeros but the blocked
# entry, so greedy takes id 0; then 0 -> 1 -> (4 or blocked -> 0) ...
EXPECTED = {
    0: [[0, 1, 4, 9, 9, 9, 9, 9], [0, 1, 4, 9, 9, 9, 9, 9]],
    1: [[0, 1, 4, 9, 9, 9, 9, 9], [0, 1, 0, 1, 4, 9, 9, 9]],
    3: [[0, 1, 0, 1, 4, 9, 9, 9], [0, 1, 0, 1, 0, 1, 4, 9]],
}


def _decode(sampler, min_new_tokens):
    out = generation.decode(
        _step_fn(), PROMPTS, MASK, None, sampler, start_index=1,
        stop_token_ids=[STOP], pad_token_id=PAD,
        min_new_tokens=min_new_tokens,
    )  # fmt: skip
    return keras.ops.convert_to_numpy(out).tolist()


@pytest.mark.parametrize("minimum", sorted(EXPECTED))
def test_min_new_tokens_forbids_the_stop_until_n_new_tokens(minimum):
    assert _decode("greedy", minimum) == EXPECTED[minimum]


def test_min_new_tokens_holds_for_every_beam():
    out = np.asarray(_decode(generation.BeamSampler(num_beams=3), 3))
    for row, prompt_length in zip(out, (1, 2)):
        stop_at = list(row).index(STOP)
        assert stop_at - prompt_length >= 3  # 3 new tokens before the stop


def test_block_early_stop_by_hand():
    out = repetition.block_early_stop(
        keras.ops.zeros((3, 5)), 4, keras.ops.array([4, 2, 3], "int32"),
        keras.ops.array([1, 3], "int32"), 2,
    )  # fmt: skip
    # Row 0 has 0 new tokens, row 1 has 2, row 2 has 1.
    inf = float("-inf")
    assert keras.ops.convert_to_numpy(out).tolist() == [
        [0.0, inf, 0.0, inf, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, inf, 0.0, inf, 0.0],
    ]


def test_compiled_min_new_tokens_is_a_run_time_value():
    traces = []
    decode_fn = generation.compile_decode(
        _step_fn(traces), "greedy", stop_token_ids=[STOP], pad_token_id=PAD
    )
    for minimum in (0, 3, 1):
        out = decode_fn(PROMPTS, MASK, None, start_index=1,
                        min_new_tokens=minimum)  # fmt: skip
        assert keras.ops.convert_to_numpy(out).tolist() == EXPECTED[minimum]
    assert len(traces) == 1


def test_bad_min_new_tokens_is_refused_by_name():
    for bad in (-1, 1.5, "3", True):
        with pytest.raises(ValueError, match="min_new_tokens"):
            _decode("greedy", bad)


def test_truncate_finds_the_earliest_stop_and_removes_it():
    assert truncate("one. two. three", (". t", "ee")) == ("one", True)
    assert truncate("abc", ("x",)) == ("abc", False)
    assert truncate("line\n\nnext", ("\n\n",)) == ("line", True)


def test_check_stop_accepts_str_or_list_and_names_bad_input():
    assert check_stop(None) == ()
    assert check_stop("END") == ("END",)
    for bad in ("", [""], [3], 3):
        with pytest.raises(ValueError, match="stop"):
            check_stop(bad)


def test_stream_holds_back_what_may_become_a_stop_and_ends_there():
    # Tokens "Hel", "lo E", "N", "D more": the stop spans three of them.
    stream = StopStringStream(["END"])
    pieces = []
    text = ""
    for token in ("Hel", "lo E", "N", "D more"):
        text += token
        pieces.append(stream.push(text))
        if stream.stopped:
            break
    assert pieces == ["Hel", "lo ", "", ""] and stream.stopped
    assert "".join(pieces) == truncate("Hello END more", ("END",))[0]


def test_stream_without_a_stop_shows_everything_at_the_end():
    stream = StopStringStream(["END"])
    assert stream.push("say E") == "say "
    assert stream.finish("say E") == "E"
    assert not stream.stopped
