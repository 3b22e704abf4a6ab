"""Stop strings: text that ends a completion wherever the tokens split it.

A stop string is matched on the detokenized text, not on token ids, so it
stops a completion even when it spans two or more tokens (or is only part
of one). The completion ends just before the earliest occurrence of any of
the stop strings, which is removed.

- `check_stop(stop)` turns None, a str or a list of str into a tuple.
- `truncate(text, stops)` cuts a finished completion.
- `StopStringStream` does the same piece by piece: it holds back any tail
  of the text that could still become a stop string, so no piece ever
  shows text that a later token turns into a stop.

Pure Python: the decode loops run as they are, and the cut is made on
their output (a batch decodes on to its end token or length; a stream
stops at once).
"""


def check_stop(stop):
    """`stop` as a tuple of non-empty strings (empty for None).

    Args:
        stop: None, a str, or a list/tuple of str.

    Returns:
        A tuple of str.

    Example:
    >>> from keras_transformer.generation.stop_strings import check_stop
    >>> check_stop("\\n\\n"), check_stop(None), check_stop(["END", "."])
    (('\\n\\n',), (), ('END', '.'))
    """
    if stop is None:
        return ()
    stops = (stop,) if isinstance(stop, str) else stop
    if not isinstance(stops, (list, tuple)) or not all(
        isinstance(s, str) and s for s in stops
    ):
        raise ValueError(
            "`stop` must be a non-empty string or a list of non-empty "
            f"strings. Received: stop={stop!r}"
        )
    return tuple(stops)


def truncate(text, stops):
    """`(text cut before its first stop string, whether one was found)`.

    Example:
    >>> from keras_transformer.generation.stop_strings import truncate
    >>> truncate("one. two. three", (". t", "ee"))
    ('one', True)
    >>> truncate("no stop here", ("END",))
    ('no stop here', False)
    """
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    if not found:
        return text, False
    return text[: min(found)], True


def _held_back(text, stops):
    """Length of the longest tail of `text` that begins a stop string."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


class StopStringStream:
    """Turns a growing completion into pieces that never show a stop.

    Call `push(completion)` with the whole completion text so far after
    every token; it returns the new text that is safe to show ("" while a
    tail could still become a stop string) and sets `stopped` once a stop
    string appears. `finish(completion)` returns what was held back when
    the completion ends without a stop.

    Example:
    >>> from keras_transformer.generation.stop_strings import StopStringStream
    >>> stream = StopStringStream(["END"])
    >>> [stream.push(t) for t in ("ab", "abE", "abEN", "abENX", "abENXEND!")]
    ['ab', '', '', 'ENX', '']
    >>> stream.stopped
    True
    """

    def __init__(self, stops):
        self.stops = check_stop(stops)
        self.shown = ""
        self.stopped = False

    def push(self, completion):
        if self.stopped:
            return ""
        cut, self.stopped = truncate(completion, self.stops)
        safe = (
            cut
            if self.stopped
            else cut[: len(cut) - _held_back(cut, self.stops)]
        )
        return self._show(safe)

    def finish(self, completion):
        if self.stopped:
            return ""
        return self._show(truncate(completion, self.stops)[0])

    def _show(self, safe):
        # Detokenizing more tokens can rewrite the text's end (pieces
        # merge); only an extension of what was shown is shown.
        if not safe.startswith(self.shown) or len(safe) <= len(self.shown):
            return ""
        piece, self.shown = safe[len(self.shown) :], safe
        return piece
