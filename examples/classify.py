"""Train a small BERT-style genre classifier, then classify two verses.

Trains the `tiny` preset on the bundled 6-genre Bible verse task for about a
minute of CPU time, prints its test accuracy, and classifies two verses
with the saved model, as a user of the library would.

    python examples/classify.py --output /tmp/genre --max-minutes 1
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras_transformer  # noqa: E402
from keras_transformer.tasks.classifier import train_classifier  # noqa: E402

VERSES = [
    "Blessed are the poor in spirit, for theirs is the Kingdom of Heaven.",
    "These are the generations of the heavens and of the earth.",
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", default="/tmp/genre_classifier")
    parser.add_argument("--max-minutes", type=float, default=1.0)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--vocabulary-size", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--steps-per-epoch", type=int, default=200)
    args = parser.parse_args(argv)

    metadata = train_classifier(
        args.output,
        preset=args.preset,
        vocabulary_size=args.vocabulary_size,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        max_minutes=args.max_minutes,
        learning_rate=1e-3,
        verbose=2,
    )
    print(
        f"test accuracy {metadata['metrics']['test_accuracy']:.3f} after "
        f"{metadata['steps']} steps ({metadata['train_seconds'] / 60:.1f} min)"
    )

    classifier = keras_transformer.load(args.output)  # a TextClassifier
    results = classifier(VERSES)
    for verse, (label, probability) in zip(VERSES, results):
        print(f"{label:>20} {probability:.2f}  {verse}")
    return metadata, results


if __name__ == "__main__":
    main()
