"""Train an English -> Spanish translator on the bundled corpus, then use it.

The bundled corpus holds about 20k verse pairs derived from the World
English Bible and the Reina-Valera 1909. With the `small` preset, 20 minutes
on 2 CPU cores gives a model that translates short verse-like sentences
roughly; a GPU or more time does much better.

    python examples/translate.py --minutes 20
    python examples/translate.py --preset tiny --minutes 1   # a smoke run

Running it again with the same `--output` resumes training.
"""

import argparse

import keras_transformer
from keras_transformer.tasks.translation import (
    evaluate_translation,
    train_translation,
)

SENTENCES = [
    "In the beginning, God created the heavens and the earth.",
    "The king said to his servants, go to the city.",
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", default="runs/translation-example")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--steps-per-epoch", type=int, default=100)
    parser.add_argument("--max-train-examples", type=int)
    parser.add_argument("--num-beams", type=int, default=4)
    args = parser.parse_args(argv)

    # 1. Train (the tokenizer, the model and its metadata go to --output).
    metadata = train_translation(
        args.output,
        preset=args.preset,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        max_minutes=args.minutes,
        max_train_examples=args.max_train_examples,
    )
    print(
        f"Trained {metadata['steps']} steps in "
        f"{metadata['train_seconds']:.0f} s; validation loss "
        f"{metadata['metrics']['best_val_loss']:.3f}."
    )

    # 2. Translate a few sentences with beam search.
    translator = keras_transformer.load(args.output)  # a Translator
    outputs = translator(SENTENCES, num_beams=args.num_beams)
    for source, output in zip(SENTENCES, outputs):
        print(f"{source}\n  -> {output}")

    # 3. Score 100 sentences of the bundled test split.
    scores = evaluate_translation(
        args.output, translator=translator, max_pairs=100
    )
    print(
        f"BLEU {scores['bleu']:.1f}, chrF {scores['chrf']:.1f} "
        "(greedy, 100 test sentences)"
    )
    return outputs


if __name__ == "__main__":
    main()
