"""The streaming HTTP example (`examples/stream_server.py`), talked to on
localhost: the server-sent events join to what `stream` yields, options
travel as query parameters and as a JSON body, bad ones get a 400."""

import importlib.util
import json
import pathlib
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest

import keras_transformer

EXAMPLE = pathlib.Path(__file__).parents[2] / "examples" / "stream_server.py"


def _example():
    spec = importlib.util.spec_from_file_location("stream_server", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def server(model_dirs):
    example = _example()
    models = {
        "gpt": keras_transformer.load(model_dirs["gpt"]),
        "translation": keras_transformer.load(model_dirs["translation"]),
    }
    httpd = example.make_server(models, port=0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    host, port = httpd.server_address[:2]
    yield example, models, f"http://{host}:{port}"
    httpd.shutdown()
    httpd.server_close()


def _get(url, **query):
    return urllib.request.urlopen(
        f"{url}?{urllib.parse.urlencode(query, doseq=True)}", timeout=60
    )


def test_generate_streams_the_pieces_of_stream(server):
    example, models, url = server
    expected = list(models["gpt"].stream("In the beginning", 10))
    with _get(
        url + "/generate", prompt="In the beginning", max_new_tokens=10
    ) as r:
        assert r.headers["Content-Type"] == "text/event-stream"
        pieces = example.read_events(r)
    assert pieces == expected and "".join(pieces)
    # Options as a JSON body: sampling with a seed, a stop string.
    body = {
        "prompt": "God",
        "max_new_tokens": 8,
        "sampler": "top_k",
        "top_k": 5,
        "seed": 3,
        "stop": ["\x00never"],
    }
    request = urllib.request.Request(
        url + "/generate", data=json.dumps(body).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=60) as r:
        sampled = "".join(example.read_events(r))
    from keras_transformer.inference.generator import make_sampler

    assert sampled == "".join(
        models["gpt"].stream(
            "God", 8, make_sampler("top_k", top_k=5), seed=3, stop="\x00never"
        )
    )


def test_translate_streams_the_translation(server):
    example, models, url = server
    sentence = "And God said, let there be light."
    with _get(url + "/translate", text=sentence) as r:
        pieces = example.read_events(r)
    assert "".join(pieces) == models["translation"].translate(sentence)


@pytest.mark.parametrize(
    "path, query, status, word",
    [
        ("/generate", {"prompt": "x", "max_new_tokens": "many"}, 400,
         "max_new_tokens"),
        ("/generate", {"prompt": "x", "min_new_tokens": -1}, 400,
         "min_new_tokens"),
        ("/generate", {"max_new_tokens": 3}, 400, "prompt"),
        ("/generate", {"prompt": "x", "colour": "red"}, 400, "colour"),
        ("/translate", {"text": "x", "max_new_tokens": 3}, 400, "GPT"),
        ("/classify", {"text": "x"}, 404, "/generate"),
    ],
)  # fmt: skip
def test_bad_requests_are_answered_with_the_reason(
    server, path, query, status, word
):
    _, _, url = server
    with pytest.raises(urllib.error.HTTPError) as caught:
        _get(url + path, **query)
    assert caught.value.code == status
    assert word in json.loads(caught.value.read())["error"]
