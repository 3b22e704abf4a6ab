"""`python -m benchmarks`: the fast benchmarks, side by side with KerasHub.

Runs training throughput and generation speed (a few minutes each on 2 CPU
cores). Add `--tiny` for a smoke run with small sizes. The long ones run on
their own: `python -m benchmarks.quality` (equal-budget quality, about 20
minutes) and `python -m benchmarks.serving EXPORT ...` (serving latency).
"""

import argparse

from benchmarks import generation, train_throughput


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args(argv)
    extra = ["--tiny"] if args.tiny else []
    train_throughput.main(["--steps", "5", "--repeats", "3", *extra])
    generation.main(["--repeats", "5", *extra])


if __name__ == "__main__":
    main()
