"""Shared benchmark helpers: timing, matmul peak, tables and JSON results."""

import json
import os
import platform
import statistics
import time

RESULTS_DIR = os.environ.get(
    "KT_BENCHMARK_RESULTS", os.path.join(os.path.dirname(__file__), "results")
)


def measure_matmul_peak(size=1024, repeats=20):
    """Measures fp32 matmul GFLOP/s with TensorFlow in this process."""
    import tensorflow as tf

    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))

    @tf.function(jit_compile=True)
    def run(a, b):
        return tf.matmul(a, b)

    run(a, b).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(a, b).numpy()
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e9


def alternate(runs, repeats):
    """Calls each named zero-argument function in turn, `repeats` rounds.

    Returns:
        {name: [seconds, ...]} with one entry per round.
    """
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def print_table(title, rows, columns):
    """Prints a fixed-width table; rows are dicts keyed by column."""
    widths = [
        max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns
    ]
    print(f"\n{title}")
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(
            "  ".join(
                _fmt(row.get(c)).ljust(w) for c, w in zip(columns, widths)
            )
        )


def _fmt(value):
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return "" if value is None else str(value)


def git_commit():
    """The commit of this checkout (with `+dirty` for uncommitted changes)."""
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def git(*args):
        out = subprocess.run(
            ["git", "-C", root, *args], capture_output=True, text=True
        )
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit and git("status", "--porcelain", "--untracked-files=no"):
        commit += "+dirty"
    return commit


LOAD_AT_START = os.getloadavg()


def provenance():
    """`{"git_commit", "date", "machine"}` of a result written now.

    The machine's load average is recorded as it was when the benchmark
    module was imported and as it is now, so a figure measured beside other
    jobs says so.
    """
    import keras
    import keras_hub
    import tensorflow as tf

    return {
        "git_commit": git_commit(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in LOAD_AT_START],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "keras_hub": keras_hub.__version__,
            "backend": keras.backend.backend(),
        },
    }


def write_results(name, payload):
    """Writes `benchmarks/results/NAME.json` with its `provenance()`."""
    os.makedirs(RESULTS_DIR, exist_ok=True)
    payload = {"benchmark": name, **provenance(), **payload}
    path = os.path.join(RESULTS_DIR, f"{name}.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2)
    os.replace(tmp, path)
    return path


def update_docs_table(name, page, start, end, render):
    """Puts `render(results)` of `results/NAME.json` between the markers of
    `page` (markers kept); raises ValueError when a marker is missing."""
    with open(os.path.join(RESULTS_DIR, f"{name}.json"), encoding="utf-8") as f:
        results = json.load(f)
    block = f"{start}\n{render(results)}\n{end}"
    if not replace_between(page, start, end, block):
        raise ValueError(f"{page} lacks the markers {start} ... {end}")
    return page


def replace_between(page, start, end, block):
    """Replaces `start`...`end` (markers included) in a file with `block`.

    Atomic (a temporary file and a rename). Returns False, leaving the file
    as it is, when the file or a marker is missing.
    """
    if not os.path.exists(page):
        return False
    with open(page, encoding="utf-8") as f:
        text = f.read()
    first, last = text.find(start), text.find(end)
    if first < 0 or last < first:
        return False
    text = text[:first] + block + text[last + len(end) :]
    with open(page + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(page + ".tmp", page)
    return True
