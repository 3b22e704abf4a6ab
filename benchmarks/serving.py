"""Serving latency of exported SavedModels (as TF Serving would run them).

For each SavedModel given, a fresh Python process that imports only
tensorflow and tensorflow_text loads it, calls `serving_default` on real
verses from the bundled test split at batch 1 and batch 32 (after warm-up),
and reports p50 and p99 latency and the process's peak resident memory.

    python -m benchmarks.serving saved_models/translation/1 saved_models/genre/1
"""

import argparse
import json
import os
import subprocess
import sys

from benchmarks import common

_CHILD = r"""
import json, resource, sys, time
import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops)

path, key, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
texts = json.loads(sys.stdin.read())
model = tf.saved_model.load(path)
serve = model.signatures["serving_default"]
result = {"peak_rss_mb_after_load":
          resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
for batch in (1, 32):
    inputs = tf.constant((texts * 32)[:batch])
    for _ in range(3):
        serve(**{key: inputs})
    times = []
    for i in range(calls):
        start = time.perf_counter()
        serve(**{key: inputs})
        times.append(time.perf_counter() - start)
    result[f"batch_{batch}"] = {
        "p50_ms": 1000 * float(np.percentile(times, 50)),
        "p99_ms": 1000 * float(np.percentile(times, 99)),
        "calls": calls,
    }
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result["peak_rss_mb"] = peak / 1024
print(json.dumps(result))
"""


def input_key(path):
    """The name of the single string input of `serving_default`."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops)

    model = tf.saved_model.load(path)
    spec = model.signatures["serving_default"].structured_input_signature[1]
    keys = [k for k, v in spec.items() if v.dtype == tf.string]
    if len(keys) != 1:
        raise ValueError(
            "Expected one string input in serving_default. "
            f"Received: inputs={sorted(spec)}"
        )
    return keys[0]


def measure(path, calls, texts):
    """Runs the timing child process for one SavedModel; returns its dict."""
    key = input_key(path)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, path, key, str(calls)],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if child.returncode != 0:
        raise RuntimeError(child.stderr[-2000:])
    return {
        "model": path,
        "input": key,
        **json.loads(child.stdout.splitlines()[-1]),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("models", nargs="+", help="SavedModel version dirs")
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--name", default="serving")
    args = parser.parse_args(argv)
    from keras_transformer.data import load_bundled_translation

    texts = load_bundled_translation("test")[0][:32]
    rows = []
    for path in args.models:
        r = measure(path, args.calls, texts)
        for batch in (1, 32):
            rows.append(
                {
                    "model": path,
                    "batch": batch,
                    "p50_ms": r[f"batch_{batch}"]["p50_ms"],
                    "p99_ms": r[f"batch_{batch}"]["p99_ms"],
                    "peak_rss_mb": r["peak_rss_mb"],
                }
            )
    common.print_table(
        "Serving latency (fresh process, tensorflow only)", rows, list(rows[0])
    )
    path = common.write_results(args.name, {"calls": args.calls, "rows": rows})
    print(f"wrote {path}")
    return rows


if __name__ == "__main__":
    main()
