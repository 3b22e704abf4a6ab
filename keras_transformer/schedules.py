"""Learning-rate schedules."""

import keras
from keras import ops


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

    `lr(step) = scale * d_model**-0.5 * min(step**-0.5,
    step * warmup_steps**-1.5)`: a linear increase for `warmup_steps` steps,
    then a decay proportional to the inverse square root of the step. The
    peak, at `step == warmup_steps`, is `scale * (d_model * warmup_steps)
    ** -0.5`. Step 0 (the first optimizer iteration in Keras) is treated as
    step 1, so the rate is never zero or infinite.

    Args:
        d_model: model size used in the formula.
        warmup_steps: number of warmup steps (4000 in the paper). Size it to
            your budget: a run of a few thousand steps needs a few hundred.
        scale: a constant multiplier (1.0 in the paper).

    Call arguments:
        step: the optimizer iteration (int or scalar tensor).

    Returns:
        The learning rate as a float32 scalar.

    Example:
    >>> import keras
    >>> from keras_transformer.schedules import TransformerSchedule
    >>> schedule = TransformerSchedule(d_model=512, warmup_steps=4000)
    >>> optimizer = keras.optimizers.Adam(schedule, beta_2=0.98, epsilon=1e-9)
    >>> round(float(schedule(4000)), 7)
    0.0006988

    References:
        Vaswani et al., "Attention Is All You Need", 2017, section 5.3.
    """

    def __init__(self, d_model, warmup_steps=4000, scale=1.0):
        super().__init__()
        _check_positive("d_model", d_model)
        _check_positive("warmup_steps", warmup_steps)
        _check_positive("scale", scale)
        self.d_model = d_model
        self.warmup_steps = warmup_steps
        self.scale = scale

    def __call__(self, step):
        step = ops.maximum(ops.cast(step, "float32"), 1.0)
        warmup = ops.cast(self.warmup_steps, "float32")
        rate = ops.minimum(ops.rsqrt(step), step * warmup**-1.5)
        return ops.cast(self.scale * self.d_model**-0.5, "float32") * rate

    def peak_learning_rate(self):
        """The largest rate, reached at `step == warmup_steps`."""
        return self.scale * (self.d_model * self.warmup_steps) ** -0.5

    @classmethod
    def with_peak(cls, d_model, warmup_steps, peak_learning_rate):
        """The schedule whose largest rate is `peak_learning_rate`.

        Example:
        >>> schedule = TransformerSchedule.with_peak(256, 100, 5e-4)
        >>> round(schedule.peak_learning_rate(), 10)
        0.0005
        """
        scale = peak_learning_rate * (d_model * warmup_steps) ** 0.5
        return cls(d_model, warmup_steps, scale)

    def get_config(self):
        return {
            "d_model": self.d_model,
            "warmup_steps": self.warmup_steps,
            "scale": self.scale,
        }


@keras.saving.register_keras_serializable(package="keras_transformer")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup to `peak_learning_rate`, then linear decay to zero.

    The BERT fine-tuning schedule; useful when the total number of steps is
    known and short.

    Args:
        peak_learning_rate: the rate reached at the end of warmup.
        warmup_steps: number of warmup steps.
        total_steps: the step at which the rate reaches `end_learning_rate`.
        end_learning_rate: the final rate.

    Call arguments:
        step: the optimizer iteration.

    Returns:
        The learning rate as a float32 scalar.

    Example:
    >>> from keras_transformer.schedules import WarmupLinearDecay
    >>> schedule = WarmupLinearDecay(1e-3, warmup_steps=10, total_steps=100)
    >>> round(float(schedule(10)), 6)
    0.001
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
