"""int8 and bfloat16/float16 export against float32, side by side:
quality, size, serving latency.

For each trained model directory given (translation, GPT or classifier),
writes its int8 copy (`keras_transformer.quantization.quantize_model_dir`)
and its `export --dtype` models (`keras_transformer.export.cast_model`),
evaluates each on the same test data with the task's `evaluate` (BLEU and
chrF, perplexity, accuracy and macro-F1), exports each as a SavedModel and
times `serving_default` in fresh TensorFlow-only processes at batch 1 and
32 (`benchmarks.serving.measure`: p50, p99, peak resident memory).

    python -m benchmarks.quantization runs/translation runs/gpt runs/cls \
        [--test-file TASK=PATH ...] [--work DIR] [--calls 30]

Without `--test-file` the task's bundled test split is used, which fits
models trained on the bundled corpora. Writes
`benchmarks/results/quantization.json`, and `--update-docs` puts its
table into docs/smaller_models.md (between the quantization markers).
"""

import argparse
import os
import tempfile

from benchmarks import common, serving

# `export --dtype` variants measured beside int8.
DTYPES = ("bfloat16", "float16")
_QUALITY = {
    "translation": ("bleu", "chrf"),
    "gpt": ("perplexity", "loss"),
    "classifier": ("accuracy", "macro_f1"),
}


def _evaluate(task, model_dir, test_file):
    """The task's test figures for one directory, as a flat dict."""
    if task == "translation":
        from keras_transformer.tasks.translation import evaluate_translation

        result = evaluate_translation(model_dir, test_file=test_file)
    elif task == "gpt":
        from keras_transformer.tasks.gpt import evaluate_gpt

        result = evaluate_gpt(model_dir, test_files=test_file)
    else:
        from keras_transformer.tasks.classifier import evaluate_classifier

        result = evaluate_classifier(model_dir, test_file=test_file)
    return {
        key: float(value)
        for key, value in dict(result).items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }


def _bytes(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(path)
        for name in names
    )


def _texts(task):
    """Up to 32 input texts for the latency runs."""
    if task == "translation":
        from keras_transformer.data import load_bundled_translation

        return load_bundled_translation("test")[0][:32]
    return [
        "In the beginning God created the heaven and the earth.",
        "And the LORD spake unto Moses, saying,",
    ]


def _cast_dir(model_dir, work, name, dtype):
    """A copy of `model_dir` whose `model.keras` is `export --dtype`'s model
    (`cast_model`), for the task's `evaluate` to score what is exported."""
    import shutil

    from keras_transformer import model_dir as model_dir_lib
    from keras_transformer.export import cast_model

    copy = os.path.join(work, f"{name}-{dtype}")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(model_dir, copy, ignore=shutil.ignore_patterns("backup"))
    model = cast_model(model_dir_lib.load_model(model_dir), dtype)
    model_dir_lib.atomic_save_model(
        model, os.path.join(copy, model_dir_lib.MODEL_FILE)
    )
    return copy


def compare(model_dir, work, test_file=None, calls=30, dtypes=DTYPES):
    """The float32, int8 and `export --dtype` rows of one model directory
    (the latter's quality is that of the cast model, `_cast_dir`)."""
    from keras_transformer import model_dir as model_dir_lib
    from keras_transformer.export import export_model
    from keras_transformer.quantization import quantize_model_dir

    task = model_dir_lib.read_metadata(model_dir)["task"]
    name = os.path.basename(os.path.normpath(model_dir))
    int8_dir = os.path.join(work, f"{name}-int8")
    quantize_model_dir(model_dir, int8_dir, overwrite=True)
    variants = [("float32", model_dir, None), ("int8", int8_dir, None)]
    for dtype in dtypes:
        variants.append((dtype, _cast_dir(model_dir, work, name, dtype), dtype))
    rows = []
    for precision, directory, dtype in variants:
        quality = _evaluate(task, directory, test_file)
        export = export_model(
            model_dir if dtype else directory,
            os.path.join(work, "saved_models", f"{name}-{precision}", "1"),
            overwrite=True,
            dtype=dtype,
        )
        timing = serving.measure(export, calls, _texts(task))
        row = {
            "model": name,
            "task": task,
            "precision": precision,
            **{k: quality.get(k) for k in _QUALITY[task]},
            "model_keras_mb": _bytes(
                os.path.join(directory, model_dir_lib.MODEL_FILE)
            )
            / 2**20,
            "saved_model_mb": _bytes(export) / 2**20,
            "peak_rss_mb": timing["peak_rss_mb"],
        }
        for batch in (1, 32):
            row[f"p50_ms_b{batch}"] = timing[f"batch_{batch}"]["p50_ms"]
            row[f"p99_ms_b{batch}"] = timing[f"batch_{batch}"]["p99_ms"]
        rows.append(row)
    return rows


DOCS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "docs",
    "smaller_models.md",
)
BEGIN, END = "<!-- quantization:begin -->", "<!-- quantization:end -->"
_COLUMNS = (
    ("model", "model", "{}"),
    ("precision", "weights", "{}"),
    ("quality", "test quality", None),
    ("model_keras_mb", "model.keras MB", "{:.2f}"),
    ("saved_model_mb", "SavedModel MB", "{:.2f}"),
    ("p50_ms_b1", "p50 ms b1", "{:.1f}"),
    ("p99_ms_b1", "p99 ms b1", "{:.1f}"),
    ("p50_ms_b32", "p50 ms b32", "{:.1f}"),
    ("p99_ms_b32", "p99 ms b32", "{:.1f}"),
    ("peak_rss_mb", "peak RSS MB", "{:.0f}"),
)


def _quality(row):
    names = _QUALITY[row["task"]]
    return ", ".join(
        f"{name} {row[name]:.4g}" for name in names if row.get(name) is not None
    )


def table_markdown(results):
    """The Markdown table of a `quantization.json` payload."""
    lines = [
        "| " + " | ".join(title for _, title, _ in _COLUMNS) + " |",
        "|" + "---|" * len(_COLUMNS),
    ]
    for row in results["rows"]:
        cells = [
            _quality(row) if key == "quality" else fmt.format(row[key])
            for key, _, fmt in _COLUMNS
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"Commit `{str(results.get('git_commit'))[:7]}`; "
        f"{results['calls']} timed calls per batch size; written by "
        "`python -m benchmarks.quantization`."
    )
    return "\n".join(lines)


def update_docs(docs=DOCS):
    """Replaces the table between the markers of `docs` with the results'."""
    return common.update_docs_table(
        "quantization", docs, BEGIN, END, table_markdown
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("models", nargs="*", help="trained model directories")
    parser.add_argument(
        "--update-docs",
        action="store_true",
        help="only rewrite the table of docs/smaller_models.md from the "
        "results file",
    )
    parser.add_argument(
        "--test-file",
        action="append",
        default=[],
        metavar="TASK=PATH",
        help="test data of a task (default: its bundled test split)",
    )
    parser.add_argument("--work", default=None, help="where copies go")
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args(argv)
    if args.update_docs:
        print(update_docs())
        return None
    if not args.models:
        parser.error("give one or more model directories")
    tests = dict(item.split("=", 1) for item in args.test_file)
    work = args.work or tempfile.mkdtemp(prefix="quantization-")
    from keras_transformer import model_dir as model_dir_lib

    rows = []
    for model_dir in args.models:
        task = model_dir_lib.read_metadata(model_dir)["task"]
        rows.extend(compare(model_dir, work, tests.get(task), args.calls))
    columns = list(dict.fromkeys(k for row in rows for k in row))
    common.print_table("int8 and 16-bit export against float32", rows, columns)
    path = common.write_results(
        "quantization", {"calls": args.calls, "rows": rows}
    )
    print(f"wrote {path}")
    return rows


if __name__ == "__main__":
    main()
