"""Linear bag-of-n-grams baselines for the bundled genre task.

Puts the classifier's accuracy in context: how far plain linear models on
word and character n-grams get on the same splits. Needs scikit-learn,
which is not a dependency of keras_transformer:

    pip install scikit-learn
    python -m benchmarks.genre_baselines [--json PATH]

For each feature set, a linear SVM (squared hinge, one-vs-rest) is fitted on
the train split for a few regularization strengths `C`; the `C` with the
best validation accuracy is kept and its test accuracy reported. Features
are TF-IDF with sublinear term frequency, fitted on the train split only.
"""

import argparse
import json
import time

FEATURE_SETS = {
    "words": [dict(analyzer="word", ngram_range=(1, 1))],
    "words 1-2": [dict(analyzer="word", ngram_range=(1, 2))],
    "words 1-2, cased": [
        dict(analyzer="word", ngram_range=(1, 2), lowercase=False)
    ],
    "words 1-2 + chars 2-5": [
        dict(analyzer="word", ngram_range=(1, 2)),
        dict(analyzer="char_wb", ngram_range=(2, 5), min_df=2),
    ],
}
C_VALUES = (0.1, 0.3, 1.0, 3.0)


def _import_sklearn():
    try:
        from scipy import sparse
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.svm import LinearSVC
    except ImportError:
        raise SystemExit(
            "This benchmark needs scikit-learn (not a dependency of "
            "keras_transformer): pip install scikit-learn"
        ) from None
    return sparse, TfidfVectorizer, LinearSVC


def run(feature_sets=FEATURE_SETS, c_values=C_VALUES):
    """Fits every feature set; returns a list of result dicts."""
    import numpy as np

    from keras_transformer.data import load_bundled_genre

    sparse, TfidfVectorizer, LinearSVC = _import_sklearn()
    splits = {s: load_bundled_genre(s)[:2] for s in ("train", "valid", "test")}
    texts = {s: list(v[0]) for s, v in splits.items()}
    labels = {s: np.array(v[1]) for s, v in splits.items()}
    results = []
    for name, configs in feature_sets.items():
        start = time.monotonic()
        vectorizers = [
            TfidfVectorizer(sublinear_tf=True, **config).fit(texts["train"])
            for config in configs
        ]
        features = {
            s: sparse.hstack(
                [v.transform(texts[s]) for v in vectorizers]
            ).tocsr()
            for s in texts
        }
        best = None
        for c in c_values:
            model = LinearSVC(C=c).fit(features["train"], labels["train"])
            accuracy = {
                s: float((model.predict(features[s]) == labels[s]).mean())
                for s in ("valid", "test")
            }
            if best is None or accuracy["valid"] > best["valid_accuracy"]:
                best = {
                    "features": name,
                    "C": c,
                    "valid_accuracy": accuracy["valid"],
                    "test_accuracy": accuracy["test"],
                    "num_features": features["train"].shape[1],
                }
        best["seconds"] = round(time.monotonic() - start, 1)
        results.append(best)
        print(
            f"{name:<24} C={best['C']:<4} valid {best['valid_accuracy']:.3f}"
            f"  test {best['test_accuracy']:.3f}",
            flush=True,
        )
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", default=None, help="write results here")
    args = parser.parse_args(argv)
    results = run()
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"benchmark": "genre_baselines", "rows": results}, f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
