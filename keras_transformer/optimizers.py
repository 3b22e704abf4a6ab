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


def bert_adamw(hidden_dim, learning_rate, warmup_steps, ema_momentum=None):
    """AdamW for the BERT-style encoder, with `TransformerSchedule`.

    The schedule's scale is set so that its peak (at `warmup_steps`) equals
    `learning_rate`; weight decay 0.01 applies to weight matrices only (not
    to biases or normalization parameters), gradients are clipped to norm 1.

    Args:
        hidden_dim: the encoder's model size (the schedule's d_model).
        learning_rate: the peak learning rate.
        warmup_steps: warmup steps of the schedule.
        ema_momentum: keep an exponential moving average of the weights
            with this momentum (None: no average).

    Returns:
        A `keras.optimizers.AdamW`.

    Example:
    >>> from keras_transformer.optimizers import bert_adamw
    >>> optimizer = bert_adamw(256, learning_rate=1e-3, warmup_steps=200)
    >>> round(float(optimizer.learning_rate), 8)  # step 0 counts as 1
    5e-06
    """
    scale = learning_rate * (hidden_dim * warmup_steps) ** 0.5
    schedule = TransformerSchedule(hidden_dim, warmup_steps, scale)
    optimizer = keras.optimizers.AdamW(
        learning_rate=schedule,
        weight_decay=0.01,
        beta_1=0.9,
        beta_2=0.98,
        epsilon=1e-6,
        clipnorm=1.0,
        use_ema=ema_momentum is not None,
        ema_momentum=0.99 if ema_momentum is None else ema_momentum,
    )
    # BERT decays weight matrices only, not biases or normalization.
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return optimizer
