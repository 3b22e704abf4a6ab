"""`preset="auto"` for translation: a model size that fits the data and budget.

A user's first run has a corpus of unknown size and a wall-clock budget.
A model too big for either makes few updates and degenerates into loops;
one too small wastes a big corpus. The rule here picks among the presets
named in `CANDIDATES` (smallest first) the largest whose expected number
of optimizer steps and training corpus both reach its minimums in
`MINIMUMS`. The expected steps come from the budget and the measured
training speed in `CPU_TARGET_TOKENS_PER_SECOND`; on a GPU or TPU the
budget is not the limit and only the corpus size counts.

The constants are measurements, not guesses: see `docs/your_own_data.md`
for the transfer-suite runs (`python -m benchmarks.transfer`) they come
from, on validation splits of corpora that are not the bundled one.
"""

# Presets `auto` may choose, smallest first.
CANDIDATES = ("mini", "small")

# Training speed on 2 CPU cores (target tokens per second, batch 32, no
# XLA: the CPU default), measured with `train_translation(max_minutes=1.5)`
# on the bundled corpus (2026-12-02: mini 4,901 at load ~2, small 1,077 at
# load ~4; rounded down, since a user's machine is rarely idle either).
CPU_TARGET_TOKENS_PER_SECOND = {"mini": 4000.0, "small": 1000.0}

# What a preset needs to beat the next smaller one: (optimizer steps within
# the budget, training pairs).
MINIMUMS = {"mini": (0, 0), "small": (6000, 40000)}


def expected_steps(
    preset, num_pairs, tokens_per_pair, batch_size, max_minutes, epochs
):
    """Optimizer steps a run can make: the budget's or the epochs'.

    Args:
        preset: str, a name in `CPU_TARGET_TOKENS_PER_SECOND`.
        num_pairs: int, training pairs.
        tokens_per_pair: float, mean target tokens per pair.
        batch_size: int, pairs per step.
        max_minutes: float or None, the wall-clock budget.
        epochs: int or None, the most passes over the data.

    Returns:
        int, the fewer of the steps the budget allows (None: no limit) and
        the steps of `epochs` passes (None: no limit), or None when neither
        limits the run.
    """
    limits = []
    if max_minutes:
        tokens = max_minutes * 60.0 * CPU_TARGET_TOKENS_PER_SECOND[preset]
        limits.append(int(tokens / max(tokens_per_pair * batch_size, 1.0)))
    if epochs:
        limits.append(int(epochs * num_pairs / batch_size))
    return min(limits) if limits else None


def choose_preset(
    num_pairs,
    tokens_per_pair,
    *,
    batch_size,
    max_minutes,
    epochs,
    accelerator=False,
):
    """The preset `preset="auto"` trains, and why.

    Args:
        num_pairs: int, training pairs.
        tokens_per_pair: float, mean target tokens per pair.
        batch_size: int, pairs per step (the presets' default is 32).
        max_minutes: float or None, the wall-clock budget.
        epochs: int or None, the most passes over the data.
        accelerator: bool, default False. True on a GPU or TPU: the CPU
            speed does not limit the steps there, only `epochs` does.

    Returns:
        `(name, details)`: the preset name and a dict recorded in the
        model's metadata (`expected_steps` per candidate, the rule).

    Example:
    >>> from keras_transformer.tasks._auto_preset import choose_preset
    >>> choose_preset(15000, 20.0, batch_size=32, max_minutes=8,
    ...               epochs=None)[0]
    'mini'
    >>> choose_preset(300000, 25.0, batch_size=32, max_minutes=240,
    ...               epochs=None)[0]
    'small'
    """
    chosen, steps_of = CANDIDATES[0], {}
    for name in CANDIDATES:
        minutes = None if accelerator else max_minutes
        steps = expected_steps(
            name, num_pairs, tokens_per_pair, batch_size, minutes, epochs
        )
        steps_of[name] = steps
        min_steps, min_pairs = MINIMUMS[name]
        if (steps is None or steps >= min_steps) and num_pairs >= min_pairs:
            chosen = name
    details = {
        "chosen": chosen,
        "expected_steps": steps_of,
        "train_pairs": num_pairs,
        "target_tokens_per_pair": round(float(tokens_per_pair), 1),
        "rule": "the largest of "
        + ", ".join(
            f"{name} (>= {MINIMUMS[name][0]} steps, >= {MINIMUMS[name][1]} "
            "pairs)"
            for name in CANDIDATES
        ),
    }
    return chosen, details
