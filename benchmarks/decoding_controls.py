"""Should repetition controls be on by default? Measured on the transfer suite.

For every translation model the transfer suite trained (`ours` and its
variants, under `--work`), decodes the corpus's validation split (the first
`--eval-rows` pairs) greedily with each setting of `no_repeat_ngram_size`
and `repetition_penalty` in the grid, and writes BLEU and chrF per model and
setting, and their mean over models, to
`benchmarks/results/decoding_controls.json` (with its commit, date and
machine load). Validation only: the defaults are chosen here.

    python -m benchmarks.decoding_controls [--work DIR] [--eval-rows 500]
"""

import argparse
import glob
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks import common, transfer  # noqa: E402

GRID = (
    {"no_repeat_ngram_size": 0, "repetition_penalty": 1.0},
    {"no_repeat_ngram_size": 2, "repetition_penalty": 1.0},
    {"no_repeat_ngram_size": 3, "repetition_penalty": 1.0},
    {"no_repeat_ngram_size": 4, "repetition_penalty": 1.0},
    {"no_repeat_ngram_size": 0, "repetition_penalty": 1.1},
    {"no_repeat_ngram_size": 0, "repetition_penalty": 1.2},
    {"no_repeat_ngram_size": 0, "repetition_penalty": 1.4},
    {"no_repeat_ngram_size": 3, "repetition_penalty": 1.2},
)


def _label(setting):
    return (
        f"no_repeat_ngram_size={setting['no_repeat_ngram_size']},"
        f"repetition_penalty={setting['repetition_penalty']:g}"
    )


def model_dirs(work):
    """`[(corpus name, budget dir, model dir)]` of finished translation runs."""
    corpora = transfer.find_corpora()
    found = []
    for metadata in sorted(
        glob.glob(os.path.join(work, "*", "*", "metadata.json"))
    ):
        model_dir = os.path.dirname(metadata)
        run = os.path.basename(os.path.dirname(model_dir))
        name = run.rsplit("-", 2)[0]  # NAME-5min-seed0
        system = os.path.basename(model_dir)
        if name in corpora and corpora[name]["application"] == "translation":
            if system.split("+")[0] == "ours":
                found.append((name, run, model_dir))
    return found


def main(argv=None):
    import keras_transformer
    from keras_transformer.metrics import corpus_bleu

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--work",
        default=os.path.expanduser("~/.cache/keras_transformer/transfer-runs"),
    )
    parser.add_argument("--eval-rows", type=int, default=500)
    args = parser.parse_args(argv)
    corpora = transfer.find_corpora()
    path = os.path.join(common.RESULTS_DIR, "decoding_controls.json")
    done = {}  # Models measured before on the same grid are kept.
    if os.path.exists(path):
        with open(path) as f:
            for model in json.load(f)["models"]:
                if set(model["scores"]) == {_label(g) for g in GRID}:
                    done[(model["run"], model["system"])] = model
    models = []
    for name, run, model_dir in model_dirs(args.work):
        if (run, os.path.basename(model_dir)) in done:
            models.append(done[(run, os.path.basename(model_dir))])
            continue
        sources, references = transfer.read_split(
            corpora[name], "valid", args.eval_rows
        )
        translator = keras_transformer.load(model_dir)
        scores = {}
        for setting in GRID:
            hypotheses = translator.translate(list(sources), **setting)
            result = corpus_bleu(hypotheses, references)
            scores[_label(setting)] = {
                "bleu": round(float(result["bleu"]), 2),
                "chrf": round(float(result["chrf"]), 2),
            }
            print(f"{run}/{os.path.basename(model_dir)} {_label(setting)}: "
                  f"BLEU {result['bleu']:.2f}", flush=True)  # fmt: skip
        models.append(
            {
                "corpus": name,
                "run": run,
                "system": os.path.basename(model_dir),
                "eval_rows": len(sources),
                "scores": scores,
            }
        )
    mean = {}
    for setting in GRID:
        label = _label(setting)
        values = [m["scores"][label]["bleu"] for m in models]
        if values:
            mean[label] = {
                "mean_bleu": round(sum(values) / len(values), 2),
                "mean_gain_vs_off": round(
                    sum(
                        m["scores"][label]["bleu"]
                        - m["scores"][_label(GRID[0])]["bleu"]
                        for m in models
                    )
                    / len(models),
                    2,
                ),
                "models_improved": sum(
                    m["scores"][label]["bleu"]
                    > m["scores"][_label(GRID[0])]["bleu"]
                    for m in models
                ),
                "models": len(models),
            }
    common.write_results(
        "decoding_controls",
        {"split": "valid", "mean_over_models": mean, "models": models},
    )
    for label, figures in mean.items():
        print(label, figures)


if __name__ == "__main__":
    main()
