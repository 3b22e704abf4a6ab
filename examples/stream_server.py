"""Text as it is produced, over HTTP: server-sent events from the Python API.

TF Serving answers each request with one whole response, so it cannot
stream. This small server (standard library only) streams the pieces of
`TextGenerator.stream` and `Translator.stream` as server-sent events
(SSE), which browsers read with `EventSource` and `curl -N` prints as they
come:

    python examples/stream_server.py --model runs/gpt --model runs/en-es
    curl -N 'http://localhost:8000/generate?prompt=In+the+beginning'
    curl -N 'http://localhost:8000/translate?text=In+the+beginning.'
    curl -N localhost:8000/generate -d '{"prompt": "God", "stop": ["."]}'

`/generate` serves a GPT directory and `/translate` a translation one. The
options come as query parameters or as a JSON body (POST): `prompt` or
`text`, and `max_new_tokens` (GPT), `sampler`, `temperature`, `top_k`,
`top_p`, `seed`, `no_repeat_ngram_size`, `repetition_penalty`,
`min_new_tokens`, `stop` (repeatable) and `stop_token_ids`. Each piece is
an event `data: {"text": "..."}` (JSON, so line breaks travel safely); the
stream ends with `event: done`. Bad options get status 400 and
`{"error": "..."}` before any event. Requests are served one at a time
(the model is shared); this is a demo of the protocol, not a production
server.
"""

import argparse
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Query parameters: name -> type; `stop` and `stop_token_ids` repeat.
_OPTIONS = {
    "max_new_tokens": int,
    "sampler": str,
    "temperature": float,
    "top_k": int,
    "top_p": float,
    "seed": int,
    "no_repeat_ngram_size": int,
    "repetition_penalty": float,
    "min_new_tokens": int,
}
_ROUTES = {
    "/generate": ("gpt", "prompt"),
    "/translate": ("translation", "text"),
}


def stream_kwargs(task, options):
    """The `stream` keyword arguments of a request's options (a dict of
    str to str, list or number). Raises `ValueError` naming a bad one."""
    from keras_transformer.inference.generator import make_sampler

    options = dict(options)
    kwargs = {}
    for name, kind in _OPTIONS.items():
        if name in options:
            value = options.pop(name)
            try:
                kwargs[name] = kind(
                    value[0] if isinstance(value, list) else value
                )
            except ValueError:
                raise ValueError(
                    f"`{name}` must be a {kind.__name__}. Received: {value!r}"
                ) from None
    if "stop" in options:
        stop = options.pop("stop")
        kwargs["stop"] = stop if isinstance(stop, list) else [stop]
    if "stop_token_ids" in options:
        ids = options.pop("stop_token_ids")
        try:
            kwargs["stop_token_ids"] = [
                int(i) for i in (ids if isinstance(ids, list) else [ids])
            ]
        except ValueError:
            raise ValueError(
                f"`stop_token_ids` must be ints. Received: {ids!r}"
            ) from None
    if options:
        raise ValueError(f"Unknown options: {sorted(options)}")
    knobs = {
        k: kwargs.pop(k)
        for k in ("temperature", "top_k", "top_p")
        if k in kwargs
    }
    if "sampler" in kwargs or knobs:
        kwargs["sampler"] = make_sampler(
            kwargs.pop("sampler", "top_p"), **knobs
        )
    if task == "translation" and "max_new_tokens" in kwargs:
        raise ValueError("`max_new_tokens` is a GPT option.")
    return kwargs


def make_server(models, host="127.0.0.1", port=8000):
    """A `ThreadingHTTPServer` streaming from `models` (task -> inference
    object, e.g. `{"gpt": keras_transformer.load("runs/gpt")}`); port 0
    picks a free one (`server.server_address`)."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the http.server name)
            url = urllib.parse.urlsplit(self.path)
            self._answer(url.path, urllib.parse.parse_qs(url.query))

        def do_POST(self):  # noqa: N802
            url = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("the body must be a JSON object")
            except ValueError as error:
                return self._error(400, f"Bad JSON body: {error}")
            self._answer(url.path, body)

        def _answer(self, path, options):
            if path not in _ROUTES or _ROUTES[path][0] not in models:
                routes = [r for r, (t, _) in _ROUTES.items() if t in models]
                return self._error(404, f"Unknown path {path!r}; try {routes}")
            task, field = _ROUTES[path]
            options = dict(options)
            text = options.pop(field, None)
            text = text[0] if isinstance(text, list) else text
            if not isinstance(text, str):
                return self._error(400, f"`{field}` (a string) is missing.")
            with lock:
                try:
                    kwargs = stream_kwargs(task, options)
                    if task == "gpt" and "max_new_tokens" not in kwargs:
                        # As the command line: 64, or half the positions.
                        length = models[task].max_sequence_length
                        kwargs["max_new_tokens"] = min(64, length // 2)
                    pieces = iter(models[task].stream(text, **kwargs))
                    first = next(pieces, None)  # Bad values raise here.
                except ValueError as error:
                    return self._error(400, str(error))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                if first is not None:
                    self._event(first)
                    for piece in pieces:
                        self._event(piece)
                self.wfile.write(b"event: done\ndata: {}\n\n")
                self.wfile.flush()

        def _event(self, piece):
            data = json.dumps({"text": piece}, ensure_ascii=False)
            self.wfile.write(f"data: {data}\n\n".encode())
            self.wfile.flush()

        def _error(self, status, message):
            body = json.dumps({"error": message}).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):  # noqa: A002
            pass  # quiet; a real server would log

    return ThreadingHTTPServer((host, port), Handler)


def read_events(response):
    """The text pieces of an SSE response (a file-like of bytes), until
    `event: done`."""
    pieces, event = [], None
    for raw in response:
        line = raw.decode("utf-8").rstrip("\n")
        if line.startswith("event: "):
            event = line[len("event: ") :]
        elif line.startswith("data: ") and event != "done":
            pieces.append(json.loads(line[len("data: ") :])["text"])
        elif not line and event == "done":
            break
    return pieces


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--model", action="append", required=True, metavar="DIR",
        help="a GPT or translation model directory (give both if you like)",
    )  # fmt: skip
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)

    import keras_transformer

    models = {}
    for directory in args.model:
        model = keras_transformer.load(directory)
        if model.task not in ("gpt", "translation"):
            parser.error(
                f"{directory} is a {model.task} model; it cannot stream"
            )
        models[model.task] = model
    server = make_server(models, args.host, args.port)
    host, port = server.server_address[:2]
    routes = [r for r, (t, _) in _ROUTES.items() if t in models]
    print(f"Streaming {routes} on http://{host}:{port} (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
