"""The transfer suite: do the defaults hold on data nobody tuned them on?

For every corpus built by `python -m benchmarks.corpora build` (real public
corpora from the package registries, none of them the bundled Bible; see
`benchmarks/CORPORA.md`), at each wall-clock budget, three systems:

- `ours`: `keras-transformer train APP --train-file ... --valid-file ...
  --max-minutes B` with every other setting at its default, exactly as a
  new user would run it (a subprocess, the installed command line).
- `keras_hub`: a model built from KerasHub's layers at the sizes of our
  run's preset, with our run's tokenizer, data pipeline, loss, optimizer,
  schedule, batch size, seed and budget, compiled with XLA
  (`benchmarks/transfer_hub.py`).
- `baseline`: word/char naive Bayes (classifier), a byte n-gram LM (gpt),
  copying the source (translation) (`benchmarks/baselines.py`); their
  settings chosen on the validation split.

All three are scored by the same code on the same split: BLEU and chrF of
greedy translations (the first `--eval-rows` pairs), accuracy and macro-F1
(every row), bits per byte (every document; tokenizer-independent) and
per-token perplexity for the LMs.

`--split valid` (the default) is for choosing defaults. `--split test` reads
a corpus's test split once: the suite records each read in
`benchmarks/results/transfer/test_reads.json` and refuses a second one.

Every cell is a JSON file under `benchmarks/results/transfer/cells/` with
its commit, date, machine load and command; a rerun skips finished cells
(`--rerun` repeats them), so the suite resumes where it stopped. The table
(`benchmarks/results/transfer.json` and `transfer.md`) is rebuilt from the
cells after every cell:

    python -m benchmarks.transfer [--apps translation,classifier,gpt]
        [--corpora NAME,...] [--budgets 5,10,20] [--systems ours,...]
        [--split valid|test] [--seed 0] [--eval-rows 500] [--table-only]
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks import baselines, common  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
CELLS = os.path.join(RESULTS, "transfer", "cells")
TEST_READS = os.path.join(RESULTS, "transfer", "test_reads.json")
SYSTEMS = ("ours", "keras_hub", "keras_hub_graph", "baseline")
# KerasHub's two compile settings; the table counts the better one.
HUB_SYSTEMS = {"keras_hub": True, "keras_hub_graph": False}
APPS = ("translation", "classifier", "gpt")
METRICS = {
    "translation": ("bleu", "chrf"),
    # Macro-F1 first: the defaults must hold on the rare classes too.
    "classifier": ("macro_f1", "accuracy"),
    "gpt": ("bits_per_byte", "perplexity"),
}
HIGHER_IS_BETTER = {"bleu", "chrf", "accuracy", "macro_f1"}
# The docs page that shows the table, between these two lines.
DOCS_PAGE = os.path.join(ROOT, "docs", "your_own_data.md")
TABLE_START = (
    "<!-- transfer-table: written by python -m benchmarks.transfer -->"
)
TABLE_END = "<!-- transfer-table end -->"


def cache_dir():
    return os.environ.get(
        "KERAS_TRANSFORMER_TRANSFER_CACHE",
        os.path.expanduser("~/.cache/keras_transformer/transfer"),
    )


def find_corpora():
    """`{name: {"application", "dir", "train", "valid", "test", ...}}`."""
    corpora = {}
    for path in sorted(
        glob.glob(os.path.join(cache_dir(), "*", "PROVENANCE.json"))
    ):
        with open(path) as f:
            provenance = json.load(f)
        directory = os.path.dirname(path)
        entry = {"dir": directory, "provenance": provenance}
        entry["application"] = provenance["application"]
        for split in ("train", "valid", "test"):
            files = sorted(
                p
                for p in glob.glob(os.path.join(directory, f"{split}.*"))
                if os.path.isfile(p)
            )
            if not files:
                raise FileNotFoundError(f"{directory} has no {split}.* file")
            entry[split] = files[0]
            # A corpus of whole files (source code, docs) also ships them
            # one per file: those are its documents, blank lines and all.
            folder = os.path.join(directory, f"{split}_files")
            if os.path.isdir(folder):
                entry[f"{split}_files"] = folder
        corpora[provenance.get("name", os.path.basename(directory))] = entry
    return corpora


# ---------------------------------------------------------------------------
# Reading the corpus files as the command line reads them.


def read_split(corpus, split, eval_rows=None):
    from keras_transformer.data.loaders import read_labeled_tsv, read_pairs_tsv

    path = corpus[split]
    app = corpus["application"]
    if app == "translation":
        sources, targets, _ = read_pairs_tsv(path)
        rows = slice(None, eval_rows if split != "train" else None)
        return sources[rows], targets[rows]
    if app == "classifier":
        texts, labels, _ = read_labeled_tsv(path)
        return texts, labels
    # Documents as the command line reads them (blank lines, or a file each).
    folder = corpus.get(f"{split}_files")
    return split_documents(folder or path, document_per_file=bool(folder))


def split_documents(paths, document_per_file=False):
    """The documents of text files or folders, as `train gpt` reads them."""
    from keras_transformer.data.lm import read_documents

    return read_documents(paths, document_per_file=document_per_file)[0]


# ---------------------------------------------------------------------------
# The three systems.


def variant_flags(system):
    """`ours+preset=small+batch-size=64` -> `["--preset", "small", ...]`.

    A variant of `ours` trains with some flags set; plain `ours` is the
    defaults. Variants are how the defaults are chosen (on `--split valid`).
    """
    flags = []
    for part in system.split("+")[1:]:
        name, _, value = part.partition("=")
        if not name or not value:
            raise SystemExit(
                f"A variant is ours+FLAG=VALUE[+...]. Received: {system!r}"
            )
        flags += [f"--{name}", value]
    return flags


def run_ours(corpus, budget, seed, work, system="ours"):
    """Trains with the installed command line; returns the model dir."""
    output = os.path.join(work, system)
    by_file = corpus.get("train_files") and corpus.get("valid_files")
    command = [
        sys.executable, "-m", "keras_transformer", "train",
        corpus["application"],
        "--train-file", corpus["train_files"] if by_file else corpus["train"],
        "--valid-file", corpus["valid_files"] if by_file else corpus["valid"],
        *(["--document-per-file"] if by_file else []),
        "--max-minutes", str(budget),
        "--seed", str(seed),
        "--output", output,
        *variant_flags(system),
    ]  # fmt: skip
    start = time.monotonic()
    subprocess.run(command, check=True, cwd=work)
    return output, command, time.monotonic() - start


def _run_of(model_dir, corpus):
    """What the KerasHub side copies from our run (sizes, recipe, tokenizer)."""
    from keras_transformer import model_dir as model_dir_lib

    metadata = model_dir_lib.read_metadata(model_dir)
    config = dict(metadata["config"])
    if "backbone" in config:  # a BERT classifier's config nests its sizes
        config = dict(config["backbone"])
    if corpus["application"] == "classifier" and "hidden_dim" not in config:
        # An n-gram model has no encoder: KerasHub gets the BERT preset's.
        from keras_transformer.applications.presets import get_preset

        config = get_preset(
            "bert", metadata["settings"].get("preset") or "small"
        )
    run = {
        "config": config,
        "settings": metadata["settings"],
        "tokenizer": model_dir_lib.load_tokenizer(model_dir),
        "train": read_split(corpus, "train"),
        "class_names": metadata["inference"].get("class_names"),
    }
    run["config"].setdefault(
        "vocabulary_size", run["tokenizer"].vocabulary_size
    )
    return run, metadata


def score_ours(model_dir, corpus, evaluation):
    import keras_transformer
    from benchmarks.transfer_hub import lm_scores
    from keras_transformer import model_dir as model_dir_lib
    from keras_transformer.metrics import corpus_bleu

    app = corpus["application"]
    metadata = model_dir_lib.read_metadata(model_dir)
    result = {
        "steps": metadata.get("steps"),
        "train_seconds": metadata.get("train_seconds"),
        "preset": metadata["settings"].get("preset"),
        "parameters": metadata.get("metrics", {}).get("parameters"),
    }
    if app == "translation":
        translator = keras_transformer.load(model_dir)
        hypotheses = translator.translate(list(evaluation[0]))
        scores = corpus_bleu(hypotheses, evaluation[1])
        result.update(bleu=float(scores["bleu"]), chrf=float(scores["chrf"]))
        result["samples"] = [
            {"source": s, "reference": r, "hypothesis": h}
            for s, r, h in list(zip(*evaluation, hypotheses))[:3]
        ]
    elif app == "classifier":
        classifier = keras_transformer.load(model_dir)
        predictions = [
            label for label, _ in classifier.classify(list(evaluation[0]))
        ]
        result.update(
            baselines.classification_scores(predictions, evaluation[1])
        )
        result["architecture"] = metadata["inference"].get("architecture")
    else:
        _, model, tokenizer = model_dir_lib.open_model_dir(model_dir, "gpt")
        length = metadata["config"]["max_sequence_length"]
        result.update(lm_scores(model, tokenizer, evaluation, length, 16))
    return result


def run_baseline(corpus, split, eval_rows):
    train = read_split(corpus, "train")
    valid = read_split(corpus, "valid", eval_rows)
    evaluation = read_split(corpus, split, eval_rows)
    app = corpus["application"]
    start = time.monotonic()
    if app == "translation":
        from keras_transformer.metrics import corpus_bleu

        scores = corpus_bleu(
            baselines.copy_source(evaluation[0]), evaluation[1]
        )
        result = {
            "method": "copy-source",
            "bleu": float(scores["bleu"]),
            "chrf": float(scores["chrf"]),
        }
    elif app == "classifier":
        model, settings, _ = baselines.best_naive_bayes(train, valid)
        result = {"method": "naive-bayes", "settings": settings}
        result.update(
            baselines.classification_scores(
                model.predict(evaluation[0]), evaluation[1]
            )
        )
    else:
        model, order, _ = baselines.best_byte_ngram(train, valid)
        result = {
            "method": "byte-ngram-witten-bell",
            "settings": {"order": order},
        }
        result["bits_per_byte"] = model.bits_per_byte(evaluation)
    result["seconds"] = time.monotonic() - start
    return result


# ---------------------------------------------------------------------------
# Cells: one (corpus, system, budget, split, seed) each, run in a subprocess.


def cell_path(name, system, budget, split, seed):
    budget_part = "" if system == "baseline" else f"-{budget}min"
    return os.path.join(
        CELLS, f"{name}-{system}{budget_part}-{split}-seed{seed}.json"
    )


def _worker(args):
    corpora = find_corpora()
    corpus = corpora[args.corpora]
    budget, seed, split = float(args.budgets), args.seed, args.split
    evaluation = read_split(corpus, split, args.eval_rows)
    work = os.path.join(args.work, f"{args.corpora}-{budget:g}min-seed{seed}")
    os.makedirs(work, exist_ok=True)
    command = None
    if args.systems == "baseline":
        result = run_baseline(corpus, split, args.eval_rows)
    elif args.systems.split("+")[0] == "ours":
        model_dir, command, seconds = run_ours(
            corpus, budget, seed, work, args.systems
        )
        result = score_ours(model_dir, corpus, evaluation)
        result["wall_seconds"] = seconds
    else:
        from benchmarks import transfer_hub

        ours = os.path.join(work, "ours")
        if not os.path.exists(os.path.join(ours, "metadata.json")):
            raise RuntimeError(
                f"run `ours` first: {ours} holds no finished run"
            )
        run, _ = _run_of(ours, corpus)
        result = getattr(transfer_hub, corpus["application"])(
            run, budget, seed, evaluation,
            jit_compile=HUB_SYSTEMS[args.systems],
        )  # fmt: skip
        result["jit_compile"] = HUB_SYSTEMS[args.systems]
    payload = {
        "corpus": args.corpora,
        "application": corpus["application"],
        "system": args.systems,
        "budget_minutes": None if args.systems == "baseline" else budget,
        "split": split,
        "seed": seed,
        "eval_rows": len(evaluation[0])
        if corpus["application"] != "gpt"
        else len(evaluation),
        "command": command,
        **common.provenance(),
        "result": result,
    }
    path = cell_path(args.corpora, args.systems, budget, split, seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(payload, f, indent=2)
    os.replace(path + ".tmp", path)


def _check_test_read(name, args):
    reads = {}
    if os.path.exists(TEST_READS):
        with open(TEST_READS) as f:
            reads = json.load(f)
    if name in reads and not args.allow_test_reread:
        raise SystemExit(
            f"The test split of {name} was read on {reads[name]['date']} "
            f"(commit {reads[name]['git_commit']}); a test split is read once. "
            "Choose on --split valid."
        )
    reads[name] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_commit": common.git_commit(),
    }
    os.makedirs(os.path.dirname(TEST_READS), exist_ok=True)
    with open(TEST_READS, "w") as f:
        json.dump(reads, f, indent=2)


def run_cells(args):
    corpora = find_corpora()
    names = args.corpora.split(",") if args.corpora else sorted(corpora)
    apps = args.apps.split(",")
    names = [n for n in names if corpora[n]["application"] in apps]
    budgets = [float(b) for b in args.budgets.split(",")]
    systems = args.systems.split(",")
    work = args.work or os.path.expanduser(
        "~/.cache/keras_transformer/transfer-runs"
    )
    for name in names:
        if args.split == "test":
            _check_test_read(name, args)
        for budget in budgets:
            for system in systems:
                path = cell_path(name, system, budget, args.split, args.seed)
                if os.path.exists(path) and not args.rerun:
                    continue
                print(
                    f"== {name} {system} {budget:g} min ({args.split})",
                    flush=True,
                )
                command = [
                    sys.executable, "-m", "benchmarks.transfer", "--worker",
                    "--corpora", name, "--systems", system,
                    "--budgets", str(budget), "--split", args.split,
                    "--seed", str(args.seed),
                    "--eval-rows", str(args.eval_rows),
                    "--work", work,
                ]  # fmt: skip
                done = subprocess.run(command, cwd=ROOT)
                if done.returncode:
                    print(
                        f"   failed ({done.returncode}); continuing", flush=True
                    )
                write_table()


# ---------------------------------------------------------------------------
# The table.


def load_cells():
    cells = []
    for path in sorted(glob.glob(os.path.join(CELLS, "*.json"))):
        with open(path) as f:
            cells.append(json.load(f))
    return cells


def _better(metric, a, b):
    return a > b if metric in HIGHER_IS_BETTER else a < b


def table_rows(cells):
    """One row per (corpus, split, seed, budget): the systems side by side."""
    baseline = {
        (c["corpus"], c["split"], c["seed"]): c["result"]
        for c in cells
        if c["system"] == "baseline"
    }
    groups = {}
    for c in cells:
        if c["system"] == "baseline":
            continue
        key = (
            c["application"],
            c["corpus"],
            c["split"],
            c["seed"],
            c["budget_minutes"],
        )
        groups.setdefault(key, {})[c["system"]] = c
    rows = []
    for (app, name, split, seed, budget), systems in sorted(groups.items()):
        metric = METRICS[app][0]
        row = {
            "application": app, "corpus": name, "split": split, "seed": seed,
            "budget_minutes": budget, "metric": metric,
        }  # fmt: skip
        variants = sorted(s for s in systems if s.startswith("ours+"))
        hubs = [s for s in HUB_SYSTEMS if s in systems]
        if hubs:  # KerasHub at its best: the better compile setting.
            best = hubs[0]
            for other in hubs[1:]:
                if _better(
                    metric,
                    systems[other]["result"][metric],
                    systems[best]["result"][metric],
                ):
                    best = other
            systems = {**systems, "keras_hub": systems[best]}
        for system in ("ours", "keras_hub", *variants):
            if system in systems:
                result = systems[system]["result"]
                row[system] = {m: result.get(m) for m in METRICS[app]}
                row[system]["steps"] = result.get("steps")
                row[system]["git_commit"] = systems[system]["git_commit"]
                if "architecture" in result:
                    row[system]["architecture"] = result["architecture"]
                preset = result.get("preset")
                if preset:
                    row[system]["preset"] = preset
                if system == "keras_hub":
                    row[system]["jit_compile"] = result.get("jit_compile", True)
                    row[system]["settings_run"] = hubs
        base = baseline.get((name, split, seed))
        if base is not None:
            row["baseline"] = {
                m: base.get(m) for m in METRICS[app] if m in base
            }
            row["baseline"]["method"] = base["method"]
        if "ours" in row:
            mine = row["ours"][metric]
            row["beats_keras_hub"] = (
                _better(metric, mine, row["keras_hub"][metric])
                if "keras_hub" in row
                else None
            )
            row["beats_baseline"] = (
                _better(metric, mine, row["baseline"][metric])
                if "baseline" in row and metric in row["baseline"]
                else None
            )
        rows.append(row)
    return rows


def _f(value, digits=3):
    return "" if value is None else f"{value:.{digits}f}"


def _verdict(row):
    """`yes`/`no` when both comparisons ran; else what is known so far."""
    hub, base = row.get("beats_keras_hub"), row.get("beats_baseline")
    if "ours" not in row:
        return ""
    if hub is not None and base is not None:
        return "yes" if hub and base else "no"
    known = [
        f"{name}: {'yes' if value else 'no'}"
        for name, value in (("KerasHub", hub), ("baseline", base))
        if value is not None
    ]
    return "; ".join(known + ["KerasHub not run" if hub is None else
                              "baseline not run"])  # fmt: skip


def markdown(rows, corpora=None):
    lines = [
        "| app | corpus | split | min | metric | ours | KerasHub (better of "
        "XLA and graph) | baseline "
        "| ours beats both |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m, second = METRICS[r["application"]]

        def both_metrics(system, r=r, m=m, second=second):
            figures = r.get(system, {})
            if figures.get(m) is None:
                return ""
            text = _f(figures[m])
            if figures.get(second) is not None:
                text += f" / {_f(figures[second])}"
            return text

        mine = r.get("ours", {})
        tag = mine.get("architecture") or mine.get("preset")
        ours_text = both_metrics("ours") + (f" ({tag})" if tag else "")
        hub_text = both_metrics("keras_hub")
        if hub_text:
            xla = r["keras_hub"].get("jit_compile", True)
            hub_text += " (XLA)" if xla else " (graph)"
        lines.append(
            f"| {r['application']} | {r['corpus']} | {r['split']} "
            f"| {r['budget_minutes']:g} | {m} / {second} "
            f"| {ours_text} | {hub_text} | {both_metrics('baseline')} "
            f"| {_verdict(r)} |"
        )
    variants = [
        (r, name) for r in rows for name in r if name.startswith("ours+")
    ]
    if variants:
        lines += [
            "",
            "Variants of `ours` (flags set on the command line), for choosing "
            "the defaults:",
            "",
            "| app | corpus | split | min | system | metric | value | steps |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r, name in variants:
            m = r["metric"]
            lines.append(
                f"| {r['application']} | {r['corpus']} | {r['split']} "
                f"| {r['budget_minutes']:g} | {name} | {m} "
                f"| {_f(r[name].get(m))} | {r[name].get('steps')} |"
            )
    return "\n".join(lines) + "\n"


def write_table():
    rows = table_rows(load_cells())
    payload = {
        "benchmark": "transfer",
        "git_commit": common.git_commit(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "note": "each row's systems carry the commit their cell ran on",
        "rows": rows,
    }
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, "transfer.json")
    with open(path + ".tmp", "w") as f:
        json.dump(payload, f, indent=2)
    os.replace(path + ".tmp", path)
    with open(os.path.join(RESULTS, "transfer.md"), "w") as f:
        f.write(
            "<!-- written by `python -m benchmarks.transfer`; do not edit -->\n"
            + markdown(rows)
        )
    update_docs(rows, payload["git_commit"])
    return rows


def docs_table(rows, commit):
    """The block of `DOCS_PAGE` between its markers, for `rows`."""
    return (
        f"{TABLE_START}\n\n"
        f"From `benchmarks/results/transfer.json` (commit {commit}).\n\n"
        f"{markdown(rows)}\n{TABLE_END}"
    )


def update_docs(rows, commit, page=DOCS_PAGE):
    """Replaces the table in the docs page, when the page has the markers."""
    common.replace_between(
        page, TABLE_START, TABLE_END, docs_table(rows, commit)
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", default=",".join(APPS))
    parser.add_argument("--corpora", default=None)
    parser.add_argument("--budgets", default="5,10,20")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--split", choices=("valid", "test"), default="valid")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-rows", type=int, default=500)
    parser.add_argument("--work", default=None, help="where model dirs go")
    parser.add_argument("--rerun", action="store_true")
    parser.add_argument("--allow-test-reread", action="store_true")
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args)
    if not args.table_only:
        run_cells(args)
    rows = write_table()
    print(markdown(rows))


if __name__ == "__main__":
    main()
