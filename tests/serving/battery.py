"""Runs the serving contract battery on one exported SavedModel.

Run as a script in a fresh process that imports only `tensorflow` and
`tensorflow_text` (never `keras_transformer`), as TF Serving would:

    python battery.py MODEL_KIND EXPORT_DIR [REQUEST_BODY.json ...]

Prints one JSON line: the outputs for each odd input alone, for a mixed
batch, for an empty batch, sequential vs 8-thread results, the result of
feeding each REST request body to its signature, and the signatures.
"""

import json
import sys
import threading

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the SentencePiece ops)

SPECS = {
    "classifier": ("text", ["label", "probabilities"]),
    "gpt": ("prompt", ["completion"]),
    "translation": ("text", ["translation"]),
}
UNIT = "God made the light good. "  # 25 characters.
CASES = {
    "empty": b"",
    "whitespace": b" \t \n   ",
    "long": (UNIT * 4000).encode(),  # 100,000 characters.
    "longer": (UNIT * 8000).encode(),  # 200,000 characters.
    "invalid_utf8": b"\xff\xfe\xc3\x28 abc \x80\xbf",
    "emoji": "🙂🚀 漢字 ∮ ẞ zyxwq".encode(),
    "normal": b"In the beginning God created the heaven and the earth.",
    "normal2": b"Blessed are the meek: for they shall inherit the earth.",
}
MIXED = [
    "normal", "empty", "whitespace", "long", "invalid_utf8", "emoji",
    "normal2",
]  # fmt: skip


def describe(outputs):
    """JSON-able outputs: dtype, shape, values (strings decoded strictly)."""
    result = {}
    for name, tensor in outputs.items():
        value = tensor.numpy()
        entry = {"dtype": tensor.dtype.name, "shape": list(value.shape)}
        if tensor.dtype == tf.string:
            texts, invalid = [], 0
            for item in value.reshape(-1).tolist():
                try:
                    texts.append(item.decode("utf-8"))
                except UnicodeDecodeError:
                    invalid += 1
                    texts.append(item.decode("utf-8", "replace"))
            entry.update(values=texts, invalid_utf8=invalid)
        else:
            entry.update(
                values=value.tolist(), finite=bool(np.isfinite(value).all())
            )
        result[name] = entry
    return result


def signatures(model):
    table = {}
    for name, function in model.signatures.items():
        inputs = function.structured_input_signature[1]
        outputs = function.structured_outputs
        table[name] = {
            "inputs": {k: v.dtype.name for k, v in inputs.items()},
            "outputs": {k: v.dtype.name for k, v in outputs.items()},
        }
    return table


def feed_body(model, body):
    """Feeds a TF Serving REST `:predict` body to the loaded signature."""
    function = model.signatures[body.get("signature_name", "serving_default")]
    specs = function.structured_input_signature[1]
    if "instances" in body:
        rows = body["instances"]
        if rows and isinstance(rows[0], dict):
            columns = {k: [row[k] for row in rows] for k in rows[0]}
        else:
            (only,) = specs
            columns = {only: rows}
    else:
        columns = body["inputs"]
        if not isinstance(columns, dict):
            (only,) = specs
            columns = {only: columns}
    kwargs = {
        k: tf.constant(v, dtype=specs[k].dtype) for k, v in columns.items()
    }
    return describe(function(**kwargs))


def main(kind, path, *bodies):
    model = tf.saved_model.load(path)
    serve = model.signatures["serving_default"]
    input_name, _ = SPECS[kind]

    def call(texts, function=serve, **kwargs):
        batch = tf.constant(texts, dtype=tf.string, shape=[len(texts)])
        return describe(function(**{input_name: batch}, **kwargs))

    result = {"single": {}, "signatures": signatures(model)}
    for case, text in CASES.items():
        result["single"][case] = call([text])
    result["mixed"] = call([CASES[c] for c in MIXED])
    result["mixed_cases"] = MIXED
    result["empty_batch"] = call([])

    # Concurrency: the same calls, one after another, then 8 at once.
    jobs = [
        [CASES["normal"], CASES[MIXED[i % len(MIXED)]], CASES["normal2"]]
        for i in range(8)
    ]
    result["sequential"] = [call(job) for job in jobs]
    concurrent = [None] * len(jobs)
    errors = []
    barrier = threading.Barrier(len(jobs))

    def worker(i):
        try:
            barrier.wait()
            concurrent[i] = call(jobs[i])
        except Exception as error:  # reported, not swallowed
            errors.append(repr(error))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result["concurrent"] = concurrent
    result["concurrent_errors"] = errors

    if "generate" in model.signatures:
        knobs = dict(
            max_new_tokens=tf.constant(8),
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
        if kind == "translation":  # its length is the model's
            del knobs["max_new_tokens"]
        generate = model.signatures["generate"]
        result["generate"] = {
            case: call([CASES[case]], generate, **knobs)
            for case in ("long", "longer", "empty", "invalid_utf8")
        }
        result["generate_mixed"] = call(
            [CASES[c] for c in MIXED], generate, **knobs
        )
        result["generate_empty_batch"] = call([], generate, **knobs)

    result["requests"] = {}
    for body_path in bodies:
        with open(body_path, encoding="utf-8") as f:
            body = json.load(f)
        result["requests"][body_path] = feed_body(model, body)
    result["keras_transformer_imported"] = any(
        m.startswith("keras_transformer") for m in sys.modules
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:])
