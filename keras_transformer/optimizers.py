"""Optimizer factories."""

import keras

from keras_transformer.schedules import TransformerSchedule


def transformer_adam(d_model, warmup_steps=4000, scale=1.0, **kwargs):
    """Adam with the paper's betas and epsilon and `TransformerSchedule`.

    Args:
        d_model: model size for the schedule.
        warmup_steps: warmup steps of the schedule.
        scale: multiplier of the schedule.
        **kwargs: more `keras.optimizers.Adam` arguments (e.g. `clipnorm`);
            they may also override `beta_1`, `beta_2` and `epsilon`.

    Returns:
        A `keras.optimizers.Adam` with beta_1=0.9, beta_2=0.98, epsilon=1e-9.

    Example:
    >>> from keras_transformer.optimizers import transformer_adam
    >>> optimizer = transformer_adam(d_model=256, warmup_steps=400)
    >>> optimizer.beta_2
    0.98

    References:
        Vaswani et al., "Attention Is All You Need", 2017, section 5.3.
    """
    options = {"beta_1": 0.9, "beta_2": 0.98, "epsilon": 1e-9}
    options.update(kwargs)
    schedule = TransformerSchedule(d_model, warmup_steps, scale)
    return keras.optimizers.Adam(learning_rate=schedule, **options)
