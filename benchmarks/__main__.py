"""`python -m benchmarks`: the fast benchmarks, side by side with KerasHub.

Runs training throughput and generation speed (a few minutes each on 2 CPU
cores) and, when exported models exist, serving latency. Add `--tiny` for a
smoke run with small sizes.
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
