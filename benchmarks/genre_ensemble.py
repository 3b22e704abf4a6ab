"""Accuracy of classifiers and of their probability average (an ensemble).

    python -m benchmarks.genre_ensemble runs/seed0 runs/seed1 [--json PATH]

Each classifier directory is scored on the bundled genre task's valid and
test splits (or on `--valid-file` / `--test-file` TSVs); then the mean of
their class probabilities is scored the same way. The classifiers must
share the class list. Two fine-tunes run side by side, one per core, fit
the 30-minute 2-core budget of the genre task (see docs/classifier.md).
"""

import argparse
import json

import numpy as np


def ensemble_report(model_dirs, splits):
    """Per-model and averaged-probability accuracy on each split.

    Args:
        model_dirs: classifier directories (same `class_names`).
        splits: {name: (texts, labels)} with labels as class names.

    Returns:
        A dict: `models` {dir: {split: accuracy}}, `ensemble`
        {split: accuracy} and `probabilities` {split: array [N, C]} of the
        average.
    """
    import keras_transformer

    if not model_dirs:
        raise ValueError("Give at least one classifier directory.")
    report = {"models": {}, "ensemble": {}, "probabilities": {}}
    summed = {name: 0.0 for name in splits}
    class_names = None
    for model_dir in model_dirs:
        classifier = keras_transformer.load(model_dir)
        names = list(classifier.class_names)
        if class_names is not None and names != class_names:
            raise ValueError(
                f"{model_dir} has classes {names}, the first model "
                f"{class_names}; only classifiers of one task can be averaged."
            )
        class_names = names
        scores = {}
        for name, (texts, labels) in splits.items():
            truth = np.array([class_names.index(label) for label in labels])
            probabilities = np.asarray(classifier.predict_proba(texts))
            summed[name] = summed[name] + probabilities
            scores[name] = float(np.mean(probabilities.argmax(1) == truth))
        report["models"][str(model_dir)] = scores
    for name, (_, labels) in splits.items():
        truth = np.array([class_names.index(label) for label in labels])
        mean = summed[name] / len(model_dirs)
        report["probabilities"][name] = mean
        report["ensemble"][name] = float(np.mean(mean.argmax(1) == truth))
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", help="classifier directories")
    parser.add_argument("--valid-file", default=None)
    parser.add_argument("--test-file", default=None)
    parser.add_argument("--json", default=None, help="write the figures")
    args = parser.parse_args(argv)
    from keras_transformer.data import load_bundled_genre, read_labeled_tsv

    splits = {}
    for name, path in (("valid", args.valid_file), ("test", args.test_file)):
        if path is None:
            texts, labels, _ = load_bundled_genre(name)
        else:
            texts, labels = read_labeled_tsv(path)[:2]
        splits[name] = (texts, labels)
    report = ensemble_report(args.models, splits)
    report.pop("probabilities")
    print(json.dumps(report, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
