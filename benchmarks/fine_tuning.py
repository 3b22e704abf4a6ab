"""LoRA against full fine-tuning against training from scratch, at equal
budget, on a corpus the parent never saw.

For each application a parent is trained on its bundled corpus
(`keras-transformer train APP --max-minutes P`; the classifier with
`--architecture bert`, the kind `--init-from` takes), then three runs of
the same wall-clock budget B train on a transfer-suite corpus (built by
`python -m benchmarks.corpora build`, see `benchmarks/CORPORA.md`):

- `scratch`: the command line's defaults, no parent (what a user gets
  without one; for the classifier also `scratch-bert`, the parent's kind);
- `full`: `--init-from PARENT` (every weight trains);
- `lora`: `--init-from PARENT --lora-rank R` (adapters only; the
  classifier's new output layer trains too).

All are scored by `benchmarks.transfer.score_ours` on the corpus's
validation split (BLEU/chrF of the first `--eval-rows` pairs, accuracy and
macro-F1, bits per byte and perplexity); no test split is read. Every run
is a subprocess of the installed command line; finished runs are reused
(the work directory resumes). Writes `benchmarks/results/fine_tuning.json`
and, with `--update-docs`, its table into docs/smaller_models.md. With
`--apps` naming some applications, the other applications' rows stay from
the previous results file (same settings only), each row with the commit
it ran on.

    python -m benchmarks.fine_tuning [--apps translation,classifier,gpt]
        [--parent-minutes 3] [--minutes 3] [--lora-rank 8] [--seed 0]
        [--work DIR] [--eval-rows 500] [--update-docs]
"""

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks import common, transfer  # noqa: E402

# The corpus each application fine-tunes on (a domain the Bible is not).
TARGETS = {
    "translation": "gettext-en-es",
    "classifier": "deb-sections",
    "gpt": "deb-descriptions",
}
SYSTEMS = {
    "translation": ("scratch", "full", "lora"),
    "classifier": ("scratch", "scratch-bert", "full", "lora"),
    "gpt": ("scratch", "full", "lora"),
}
DOCS = os.path.join(transfer.ROOT, "docs", "smaller_models.md")
BEGIN, END = "<!-- fine-tuning:begin -->", "<!-- fine-tuning:end -->"


def _train(command, output):
    """Runs a `train` command unless `output` is a finished directory."""
    if os.path.exists(os.path.join(output, "metadata.json")):
        return None
    start = time.monotonic()
    subprocess.run(command, check=True)
    return time.monotonic() - start


def _base(app, output, minutes, seed):
    return [
        sys.executable, "-m", "keras_transformer", "train", app,
        "--max-minutes", str(minutes), "--seed", str(seed),
        "--output", output,
    ]  # fmt: skip


def train_parent(app, work, minutes, seed):
    """The parent of `app`, trained on the bundled corpus."""
    output = os.path.join(work, f"{app}-parent")
    command = _base(app, output, minutes, seed)
    if app == "classifier":
        command += ["--architecture", "bert"]
    _train(command, output)
    return output


def system_command(app, system, corpus, parent, output, args):
    """The `train` command of one system on the target corpus."""
    by_file = corpus.get("train_files") and corpus.get("valid_files")
    command = _base(app, output, args.minutes, args.seed) + [
        "--train-file", corpus["train_files"] if by_file else corpus["train"],
        "--valid-file", corpus["valid_files"] if by_file else corpus["valid"],
        *(["--document-per-file"] if by_file else []),
    ]  # fmt: skip
    if system == "scratch-bert":
        command += ["--architecture", "bert"]
    if system in ("full", "lora"):
        command += ["--init-from", parent]
    if system == "lora":
        command += ["--lora-rank", str(args.lora_rank)]
    return command


def _trainable(model_dir):
    """The parameters that trained: the adapters (and a new head) of a
    LoRA run, else every parameter of the model."""
    from keras_transformer import model_dir as model_dir_lib

    metadata = model_dir_lib.read_metadata(model_dir)
    lora = metadata["inference"].get("lora") or {}
    if lora.get("trainable_parameters"):
        return lora["trainable_parameters"]
    return int(model_dir_lib.load_model(model_dir, metadata).count_params())


def run_app(app, corpora, args):
    """The rows of one application."""
    corpus = corpora.get(TARGETS[app])
    if corpus is None:
        raise SystemExit(
            f"The corpus {TARGETS[app]!r} is not built; run "
            f"`python -m benchmarks.corpora build {TARGETS[app]}`."
        )
    parent = train_parent(app, args.work, args.parent_minutes, args.seed)
    evaluation = transfer.read_split(corpus, "valid", args.eval_rows)
    rows = []
    for system in SYSTEMS[app]:
        output = os.path.join(args.work, f"{app}-{system}")
        command = system_command(app, system, corpus, parent, output, args)
        _train(command, output)
        scores = transfer.score_ours(output, corpus, evaluation)
        scores.pop("samples", None)
        rows.append(
            {
                "app": app,
                "corpus": TARGETS[app],
                "system": system,
                "minutes": args.minutes,
                "parent_minutes": args.parent_minutes,
                "lora_rank": args.lora_rank if system == "lora" else None,
                "trainable_parameters": _trainable(output),
                "command": command[2:],
                **scores,
            }
        )
        print(json.dumps(rows[-1], default=str), flush=True)
    return rows


_METRICS = {
    "translation": ("bleu", "chrf"),
    "classifier": ("accuracy", "macro_f1"),
    "gpt": ("bits_per_byte", "perplexity"),
}


def table_markdown(results):
    """The Markdown table of a `fine_tuning.json` payload."""
    lines = [
        "| application | corpus (valid split) | system | trainable "
        "parameters | steps | validation figures |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        figures = ", ".join(
            f"{name} {row[name]:.4g}"
            for name in _METRICS[row["app"]]
            if row.get(name) is not None
        )
        trainable = row.get("trainable_parameters") or row.get("parameters")
        trainable = f"{trainable:,}" if trainable else "?"
        lines.append(
            f"| {row['app']} | {row['corpus']} | {row['system']} | "
            f"{trainable} | {row.get('steps')} | {figures} |"
        )
    commits = {}
    for row in results["rows"]:
        commit = str(row.get("git_commit") or results.get("git_commit"))[:7]
        commits.setdefault(commit, []).append(row["app"])
    where = "; ".join(
        f"`{commit}` ({', '.join(dict.fromkeys(apps))})"
        for commit, apps in commits.items()
    )
    lines.append("")
    lines.append(
        f"Commits {where}; parents "
        f"{results['parent_minutes']} minutes on the bundled corpus, every "
        f"run {results['minutes']} minutes, seed {results['seed']}, LoRA "
        f"rank {results['lora_rank']}; written by "
        "`python -m benchmarks.fine_tuning`."
    )
    return "\n".join(lines)


def kept_rows(apps, args, path=None):
    """The rows of the applications not rerun, from the results file when
    it was measured with the same settings (each row keeps the commit it
    ran on), so one application can be measured again alone."""
    path = path or os.path.join(common.RESULTS_DIR, "fine_tuning.json")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        old = json.load(f)
    same = (
        all(
            old.get(key) == getattr(args, key)
            for key in ("parent_minutes", "minutes", "lora_rank", "seed")
        )
        and old.get("eval_rows") == args.eval_rows
    )
    if not same:
        return []
    return [
        {**row, "git_commit": row.get("git_commit") or old.get("git_commit")}
        for row in old["rows"]
        if row["app"] not in apps
    ]


def update_docs(docs=DOCS):
    return common.update_docs_table(
        "fine_tuning", docs, BEGIN, END, table_markdown
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--apps", default="translation,classifier,gpt")
    parser.add_argument("--parent-minutes", type=float, default=3)
    parser.add_argument("--minutes", type=float, default=3)
    parser.add_argument("--lora-rank", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-rows", type=int, default=500)
    parser.add_argument(
        "--work",
        default=os.path.join(transfer.ROOT, "runs", "fine_tuning"),
        help="where the runs go (reused: a rerun resumes)",
    )
    parser.add_argument(
        "--update-docs",
        action="store_true",
        help="only rewrite the docs table from the results file",
    )
    args = parser.parse_args(argv)
    if args.update_docs:
        print(update_docs())
        return None
    os.makedirs(args.work, exist_ok=True)
    corpora = transfer.find_corpora()
    apps = args.apps.split(",")
    commit = common.git_commit()
    rows = []
    for app in apps:
        for row in run_app(app, corpora, args):
            rows.append({**row, "git_commit": commit})
    rows = kept_rows(apps, args) + rows
    payload = {
        "parent_minutes": args.parent_minutes,
        "minutes": args.minutes,
        "lora_rank": args.lora_rank,
        "seed": args.seed,
        "eval_rows": args.eval_rows,
        "rows": rows,
    }
    print(f"wrote {common.write_results('fine_tuning', payload)}")
    return rows


if __name__ == "__main__":
    main()
