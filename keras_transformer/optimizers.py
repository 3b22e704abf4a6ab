"""Optimizer factories and an AdamW with per-variable learning rates."""

import keras

from keras_transformer.layers._utils import check_required, renamed_argument
from keras_transformer.schedules import TransformerSchedule


def transformer_adam(
    hidden_dim=None,
    warmup_steps=4000,
    scale=1.0,
    peak_learning_rate=None,
    *,
    d_model=None,
    **kwargs,
):
    """Adam with the paper's betas and epsilon and `TransformerSchedule`.

    Args:
        hidden_dim: int, the model size D for the schedule (required).
        warmup_steps: int, default 4000. Warmup steps of the schedule.
        scale: float, default 1.0. Multiplier of the schedule.
        peak_learning_rate: float or None, default None. If given, the scale
            is set so that the largest rate (at `warmup_steps`) is this
            (`scale` is then ignored).
        d_model: int or None, default None. Deprecated name of `hidden_dim`
            (keyword only); it warns with a `DeprecationWarning`.
        **kwargs: more `keras.optimizers.Adam` arguments (e.g. `clipnorm`);
            they may also override `beta_1`, `beta_2` and `epsilon`.

    Returns:
        A `keras.optimizers.Adam` with beta_1=0.9, beta_2=0.98, epsilon=1e-9
        and a `keras_transformer.schedules.TransformerSchedule`.

    Example:
    >>> import keras_transformer
    >>> optimizer = keras_transformer.optimizers.transformer_adam(
    ...     hidden_dim=256, warmup_steps=400)
    >>> optimizer.beta_2
    0.98
    >>> optimizer.get_config()["learning_rate"]["config"]["hidden_dim"]
    256

    References:
        Vaswani et al., "Attention Is All You Need", 2017, section 5.3.
    """
    hidden_dim = renamed_argument(
        "transformer_adam", "hidden_dim", hidden_dim, "d_model", d_model
    )
    check_required("hidden_dim", hidden_dim)
    options = {"beta_1": 0.9, "beta_2": 0.98, "epsilon": 1e-9}
    options.update(kwargs)
    if peak_learning_rate is None:
        schedule = TransformerSchedule(hidden_dim, warmup_steps, scale)
    else:
        schedule = TransformerSchedule.with_peak(
            hidden_dim, warmup_steps, peak_learning_rate
        )
    return keras.optimizers.Adam(learning_rate=schedule, **options)


@keras.saving.register_keras_serializable(package="keras_transformer")
class ScaledRateAdamW(keras.optimizers.AdamW):
    """AdamW whose learning rate is multiplied per variable.

    `rate_multipliers` maps variable paths (`variable.path`) to a factor of
    the learning rate; variables it does not name use the rate as is. Used
    for layer-wise rate decay when fine-tuning (lower layers, which hold
    the pretrained knowledge, move less than the new head). The weight
    decay step is not scaled.

    Args:
        rate_multipliers: dict of str (variable path) to float > 0, or
            None, default None (every factor 1).
        **kwargs: `keras.optimizers.AdamW` arguments (`learning_rate`,
            `weight_decay`, ...).

    Returns:
        A `keras.optimizers.AdamW` subclass instance; `get_config()` keeps
        the multipliers, so a `.keras` file reloads it.

    Example:
    >>> import keras
    >>> import numpy as np
    >>> import keras_transformer
    >>> optimizer = keras_transformer.optimizers.ScaledRateAdamW(
    ...     rate_multipliers={"frozen/kernel": 0.5}, learning_rate=1e-3)
    >>> optimizer.rate_multipliers
    {'frozen/kernel': 0.5}
    >>> inputs = keras.Input((2,))
    >>> outputs = keras.layers.Dense(1, name="frozen")(inputs)
    >>> model = keras.Model(inputs, outputs)
    >>> [variable.path for variable in model.trainable_variables]
    ['frozen/kernel', 'frozen/bias']
    >>> model.compile(optimizer, "mse")
    >>> history = model.fit(np.ones((4, 2)), np.ones((4, 1)), verbose=0)
    """

    def __init__(self, rate_multipliers=None, **kwargs):
        super().__init__(**kwargs)
        rate_multipliers = dict(rate_multipliers or {})
        for path, factor in rate_multipliers.items():
            if isinstance(factor, bool) or not (
                isinstance(factor, (int, float)) and factor > 0
            ):
                raise ValueError(
                    "Every rate multiplier must be a number > 0. "
                    f"Received: rate_multipliers[{path!r}]={factor!r}"
                )
        self.rate_multipliers = {
            str(path): float(factor)
            for path, factor in rate_multipliers.items()
        }
        self._factors = []

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        # One factor per variable, in the order of `_get_variable_index`.
        self._factors = [
            self.rate_multipliers.get(v.path, 1.0) for v in variables
        ]

    def update_step(self, gradient, variable, learning_rate):
        factor = self._factors[self._get_variable_index(variable)]
        if factor != 1.0:
            learning_rate = learning_rate * factor
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        config["rate_multipliers"] = dict(self.rate_multipliers)
        return config


def bert_adamw(
    hidden_dim,
    learning_rate,
    warmup_steps,
    ema_momentum=None,
    rate_multipliers=None,
):
    """AdamW for the BERT-style encoder, with `TransformerSchedule`.

    The schedule's scale is set so that its peak (at `warmup_steps`) equals
    `learning_rate`; weight decay 0.01 applies to weight matrices only (not
    to biases or normalization parameters), gradients are clipped to norm 1.

    Args:
        hidden_dim: int, the encoder's model size D (the schedule's).
        learning_rate: float, the peak learning rate.
        warmup_steps: int, warmup steps of the schedule.
        ema_momentum: float or None, default None (no average). Keep an
            exponential moving average of the weights with this momentum.
        rate_multipliers: dict of str to float, or None, default None.
            Variable path to a factor of the learning rate (see
            `ScaledRateAdamW` and
            `keras_transformer.applications.bert.layer_rate_multipliers`).

    Returns:
        A `keras.optimizers.AdamW` (a `ScaledRateAdamW` when
        `rate_multipliers` is given).

    Example:
    >>> import keras_transformer
    >>> optimizer = keras_transformer.optimizers.bert_adamw(
    ...     256, learning_rate=1e-3, warmup_steps=200)
    >>> round(float(optimizer.learning_rate), 8)  # step 0 counts as 1
    5e-06
    """
    schedule = TransformerSchedule.with_peak(
        hidden_dim, warmup_steps, learning_rate
    )
    options = {}
    optimizer_class = keras.optimizers.AdamW
    if rate_multipliers:
        optimizer_class = ScaledRateAdamW
        options["rate_multipliers"] = rate_multipliers
    optimizer = optimizer_class(
        learning_rate=schedule,
        weight_decay=0.01,
        beta_1=0.9,
        beta_2=0.98,
        epsilon=1e-6,
        clipnorm=1.0,
        use_ema=ema_momentum is not None,
        ema_momentum=0.99 if ema_momentum is None else ema_momentum,
        **options,
    )
    # BERT decays weight matrices only, not biases or normalization.
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return optimizer
