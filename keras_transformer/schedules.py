"""Learning-rate schedules (backend-agnostic: keras and keras.ops only)."""

import keras
from keras import ops

from keras_transformer.layers._utils import check_required, renamed_argument


def _check_positive(name, value):
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or value <= 0
    ):
        raise ValueError(
            f"`{name}` must be a positive number. Received: {name}={value!r}"
        )


@keras.saving.register_keras_serializable(package="keras_transformer")
class TransformerSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """The warmup / inverse-square-root schedule of "Attention Is All You Need".

    `lr(step) = scale * hidden_dim**-0.5 * min(step**-0.5,
    step * warmup_steps**-1.5)`: a linear increase for `warmup_steps` steps,
    then a decay proportional to the inverse square root of the step. The
    peak, at `step == warmup_steps`, is `scale * (hidden_dim * warmup_steps)
    ** -0.5`. Step 0 (the first optimizer iteration in Keras) is treated as
    step 1, so the rate is never zero or infinite.

    Args:
        hidden_dim: int, the model size D used in the formula (the paper's
            `d_model`; required).
        warmup_steps: int, default 4000 (the paper's). The number of warmup
            steps. Size it to your budget: a run of a few thousand steps
            needs a few hundred.
        scale: float, default 1.0 (the paper's). A constant multiplier.
        d_model: int or None, default None. Deprecated name of `hidden_dim`
            (keyword only); it warns with a `DeprecationWarning`, also in
            `from_config`, so configs and `.keras` files saved with it
            load. `get_config()` writes `hidden_dim`.

    Call arguments:
        step: int or scalar int tensor, the optimizer iteration.

    Returns:
        The learning rate, a float32 scalar tensor.

    Example:
    >>> import keras
    >>> import keras_transformer
    >>> schedule = keras_transformer.schedules.TransformerSchedule(
    ...     hidden_dim=512, warmup_steps=4000)
    >>> optimizer = keras.optimizers.Adam(schedule, beta_2=0.98, epsilon=1e-9)
    >>> round(float(schedule(4000)), 7)
    0.0006988

    References:
        Vaswani et al., "Attention Is All You Need", 2017, section 5.3.
    """

    def __init__(
        self, hidden_dim=None, warmup_steps=4000, scale=1.0, *, d_model=None
    ):
        super().__init__()
        hidden_dim = renamed_argument(
            "TransformerSchedule", "hidden_dim", hidden_dim, "d_model", d_model
        )
        check_required("hidden_dim", hidden_dim)
        _check_positive("hidden_dim", hidden_dim)
        _check_positive("warmup_steps", warmup_steps)
        _check_positive("scale", scale)
        self.hidden_dim = hidden_dim
        self.warmup_steps = warmup_steps
        self.scale = scale

    def __call__(self, step):
        step = ops.maximum(ops.cast(step, "float32"), 1.0)
        warmup = ops.cast(self.warmup_steps, "float32")
        rate = ops.minimum(ops.rsqrt(step), step * warmup**-1.5)
        return ops.cast(self.scale * self.hidden_dim**-0.5, "float32") * rate

    def peak_learning_rate(self):
        """The largest rate, reached at `step == warmup_steps`.

        Returns:
            float, `scale * (hidden_dim * warmup_steps) ** -0.5`.

        Example:
        >>> import keras_transformer
        >>> schedule = keras_transformer.schedules.TransformerSchedule(
        ...     hidden_dim=256, warmup_steps=400, scale=2.0)
        >>> round(schedule.peak_learning_rate(), 8)
        0.00625
        """
        return self.scale * (self.hidden_dim * self.warmup_steps) ** -0.5

    @classmethod
    def with_peak(
        cls,
        hidden_dim=None,
        warmup_steps=None,
        peak_learning_rate=None,
        *,
        d_model=None,
    ):
        """The schedule whose largest rate is `peak_learning_rate`.

        Args:
            hidden_dim: int, the model size D (required).
            warmup_steps: int, the number of warmup steps (required).
            peak_learning_rate: float, the rate at `step == warmup_steps`
                (required).
            d_model: int or None, default None. Deprecated name of
                `hidden_dim` (keyword only; warns).

        Returns:
            A `TransformerSchedule` whose `scale` gives that peak.

        Example:
        >>> import keras_transformer
        >>> schedules = keras_transformer.schedules
        >>> schedule = schedules.TransformerSchedule.with_peak(
        ...     hidden_dim=256, warmup_steps=100, peak_learning_rate=5e-4)
        >>> round(schedule.peak_learning_rate(), 10)
        0.0005
        """
        hidden_dim = renamed_argument(
            "TransformerSchedule.with_peak",
            "hidden_dim",
            hidden_dim,
            "d_model",
            d_model,
        )
        check_required("hidden_dim", hidden_dim)
        check_required("warmup_steps", warmup_steps)
        check_required("peak_learning_rate", peak_learning_rate)
        _check_positive("peak_learning_rate", peak_learning_rate)
        scale = peak_learning_rate * (hidden_dim * warmup_steps) ** 0.5
        return cls(hidden_dim, warmup_steps, scale)

    @classmethod
    def from_config(cls, config):
        """Rebuilds a schedule from `get_config()` (old `d_model` too).

        Args:
            config: dict, from `get_config()`; a config written with the
                deprecated key `d_model` loads with a `DeprecationWarning`.

        Returns:
            A `TransformerSchedule`.
        """
        return cls(**config)

    def get_config(self):
        return {
            "hidden_dim": self.hidden_dim,
            "warmup_steps": self.warmup_steps,
            "scale": self.scale,
        }


@keras.saving.register_keras_serializable(package="keras_transformer")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup to `peak_learning_rate`, then linear decay to zero.

    The BERT fine-tuning schedule; useful when the total number of steps is
    known and short.

    Args:
        peak_learning_rate: float, the rate reached at the end of warmup.
        warmup_steps: int, the number of warmup steps.
        total_steps: int, the step at which the rate reaches
            `end_learning_rate`; larger than `warmup_steps`.
        end_learning_rate: float, default 0.0. The final rate.

    Call arguments:
        step: int or scalar int tensor, the optimizer iteration.

    Returns:
        The learning rate, a float32 scalar tensor.

    Example:
    >>> import keras_transformer
    >>> schedule = keras_transformer.schedules.WarmupLinearDecay(
    ...     1e-3, warmup_steps=10, total_steps=100)
    >>> [round(float(schedule(step)), 6) for step in (5, 10, 55, 100)]
    [0.0005, 0.001, 0.0005, 0.0]
    """

    def __init__(
        self,
        peak_learning_rate,
        warmup_steps,
        total_steps,
        end_learning_rate=0.0,
    ):
        super().__init__()
        _check_positive("peak_learning_rate", peak_learning_rate)
        _check_positive("warmup_steps", warmup_steps)
        _check_positive("total_steps", total_steps)
        if total_steps <= warmup_steps:
            raise ValueError(
                "`total_steps` must be larger than `warmup_steps` "
                f"({warmup_steps}). Received: total_steps={total_steps}"
            )
        self.peak_learning_rate = peak_learning_rate
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.end_learning_rate = end_learning_rate

    def __call__(self, step):
        step = ops.maximum(ops.cast(step, "float32"), 1.0)
        peak = ops.cast(self.peak_learning_rate, "float32")
        end = ops.cast(self.end_learning_rate, "float32")
        warm = peak * step / self.warmup_steps
        frac = (step - self.warmup_steps) / (
            self.total_steps - self.warmup_steps
        )
        decay = peak + (end - peak) * ops.minimum(frac, 1.0)
        return ops.where(step <= self.warmup_steps, warm, decay)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
            "end_learning_rate": self.end_learning_rate,
        }
