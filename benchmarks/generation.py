"""Greedy generation speed of a decoder-only LM: keras_transformer vs KerasHub.

Both models: vocabulary 8000, hidden_dim 256, 4 heads, feed-forward 1024, 4
layers, 128 positions; prompts of 16 tokens, 64 new tokens, greedy, no stop
token (every row produces all 64), batch 1 and 8. Ours: `gpt_lm` with
`GPTDecoder.generate` (one compiled while-loop over static KV caches).
KerasHub: `GPT2Backbone` of the same sizes in
`GPT2CausalLM(preprocessor=None).generate` with a token-id dict, twice: with
its default compile (`jit_compile="auto"`, which on CPU means no XLA) and
with `jit_compile=True`; the ratio is against the faster of the two
(`ratio_vs_keras_hub_best`), and against each (`ratio_vs_keras_hub`,
`ratio_vs_keras_hub_xla`). All are warmed up (compiled) first; calls then
alternate and medians are reported as new tokens per second.

    python -m benchmarks.generation [--repeats 5] [--tiny]
"""

import argparse
import os
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402


def build_ours(cfg):
    from keras_transformer.applications.gpt import GPTDecoder, gpt_lm

    model = gpt_lm(
        vocabulary_size=cfg["vocab"],
        num_layers=cfg["layers"],
        hidden_dim=cfg["dim"],
        num_heads=cfg["heads"],
        intermediate_dim=cfg["ff"],
        max_sequence_length=cfg["positions"],
    )
    generator = GPTDecoder(model)

    def run(prompts):
        out = generator.generate(
            prompts.tolist(), max_new_tokens=cfg["new"], sampler="greedy"
        )
        assert all(len(row) == cfg["new"] for row in out)

    return model.count_params(), run


def build_keras_hub(cfg, jit_compile="auto"):
    import keras_hub

    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=cfg["vocab"],
        num_layers=cfg["layers"],
        num_heads=cfg["heads"],
        hidden_dim=cfg["dim"],
        intermediate_dim=cfg["ff"],
        max_sequence_length=cfg["positions"],
    )
    lm = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
    lm.compile(sampler="greedy", jit_compile=jit_compile)
    length = cfg["prompt"] + cfg["new"]

    def run(prompts):
        batch = prompts.shape[0]
        token_ids = np.zeros((batch, length), "int32")
        token_ids[:, : cfg["prompt"]] = prompts
        padding_mask = np.zeros((batch, length), bool)
        padding_mask[:, : cfg["prompt"]] = True
        out = lm.generate(
            {"token_ids": token_ids, "padding_mask": padding_mask},
            stop_token_ids=None,
        )
        assert out["token_ids"].shape == (batch, length)

    return backbone.count_params(), run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args(argv)
    cfg = dict(
        vocab=8000,
        dim=256,
        heads=4,
        ff=1024,
        layers=4,
        positions=128,
        prompt=16,
        new=64,
    )
    if args.tiny:
        cfg = dict(
            vocab=100,
            dim=16,
            heads=2,
            ff=32,
            layers=1,
            positions=32,
            prompt=4,
            new=8,
        )
    keras.utils.set_random_seed(0)
    impls = {
        "keras_transformer": build_ours(cfg),
        "keras_hub": build_keras_hub(cfg),
        "keras_hub_xla": build_keras_hub(cfg, jit_compile=True),
    }
    rng = np.random.default_rng(0)
    rows = []
    raw = {}
    for batch in [int(b) for b in args.batch_sizes.split(",")]:
        prompts = rng.integers(1, cfg["vocab"], (batch, cfg["prompt"]))
        prompts = prompts.astype("int32")
        runs = {
            name: (lambda r=run, p=prompts: r(p))
            for name, (_, run) in impls.items()
        }
        for fn in runs.values():  # warm-up: compile for this shape
            fn()
        times = common.alternate(runs, args.repeats)
        raw[batch] = times
        speeds = {
            name: batch * cfg["new"] / statistics.median(t)
            for name, t in times.items()
        }
        best = max(speeds["keras_hub"], speeds["keras_hub_xla"])
        for name, speed in speeds.items():
            rows.append(
                {
                    "batch": batch,
                    "implementation": name,
                    "params": impls[name][0],
                    "new_tokens_per_s": speed,
                    "ratio_vs_keras_hub": speed / speeds["keras_hub"],
                    "ratio_vs_keras_hub_xla": speed / speeds["keras_hub_xla"],
                    "ratio_vs_keras_hub_best": speed / best,
                }
            )
    common.print_table("Greedy generation (new tokens/s)", rows, list(rows[0]))
    path = common.write_results(
        "generation" + ("_tiny" if args.tiny else ""),
        {
            "config": cfg,
            "repeats": args.repeats,
            "rows": rows,
            "raw_seconds": {str(k): v for k, v in raw.items()},
        },
    )
    print(f"wrote {path}")
    return rows


if __name__ == "__main__":
    main()
