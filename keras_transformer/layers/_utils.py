"""Small validation helpers shared by the layers, data pipelines, losses
and tasks (private to the package)."""


def check_positive_int(name, value, allow_none=False):
    """Raises ValueError unless `value` is a positive int."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(
            f"`{name}` must be a positive integer. Received: {name}={value!r}"
        )


def check_rate(name, value):
    """Raises ValueError unless `value` is a float in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(
            f"`{name}` must be a float in [0, 1). Received: {name}={value!r}"
        )
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(
            f"`{name}` must be a float in [0, 1). Received: {name}={value!r}"
        )


def check_activation(name, value):
    """Raises ValueError if `value` is not a known Keras activation."""
    import keras

    if callable(value):
        return
    try:
        keras.activations.get(value)
    except (ValueError, TypeError):
        raise ValueError(
            f"`{name}` must be a Keras activation name or a callable. "
            f"Received: {name}={value!r}"
        ) from None
