"""Generate text with a GPT model trained by keras_transformer.

Train a model first (the bundled corpus, about 15 minutes on 2 CPU cores):

    keras-transformer train gpt --output runs/gpt --max-minutes 15

then complete prompts with greedy search (one compiled batch), nucleus
sampling with a seed (reproducible), and token-by-token streaming:

    python examples/generate.py --model runs/gpt "In the beginning" "Jesus"
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras_transformer  # noqa: E402
from keras_transformer import generation  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model directory")
    parser.add_argument("--max-new-tokens", type=int, default=40)
    parser.add_argument("prompts", nargs="*", default=["In the beginning"])
    args = parser.parse_args(argv)

    generator = keras_transformer.load(args.model)  # a TextGenerator

    # 1. Greedy: every prompt in one batch, compiled once for this shape.
    greedy = generator.generate(
        args.prompts, args.max_new_tokens, return_full_text=True
    )
    for text in greedy:
        print("greedy :", text)

    # 2. Nucleus sampling; the same seed gives the same text.
    sampler = generation.TopPSampler(p=0.9, temperature=0.8)
    sampled = generator.generate(
        args.prompts,
        args.max_new_tokens,
        sampler,
        seed=1,
        return_full_text=True,
    )
    for text in sampled:
        print("top-p  :", text)

    # 3. Streaming: pieces of text as soon as each token is chosen.
    print("stream :", args.prompts[0], end="", flush=True)
    for piece in generator.stream(args.prompts[0], args.max_new_tokens):
        print(piece, end="", flush=True)
    print()
    return greedy, sampled


if __name__ == "__main__":
    main()
