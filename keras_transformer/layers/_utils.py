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


def check_required(name, value):
    """Raises ValueError if a required argument is missing (None)."""
    if value is None:
        raise ValueError(f"`{name}` is required. Received: {name}=None")


def renamed_argument(owner, new_name, new_value, old_name, old_value):
    """Returns an argument's value, accepting its deprecated old name.

    Warns with a `DeprecationWarning` when the old name is used; refuses
    both names at once.

    Args:
        owner: str, the class or function, for the messages.
        new_name: str, the argument's name.
        new_value: the value passed under `new_name` (None if not passed).
        old_name: str, the deprecated name.
        old_value: the value passed under `old_name` (None if not passed).

    Returns:
        The value to use: `new_value`, else `old_value`.
    """
    import warnings

    if old_value is None:
        return new_value
    if new_value is not None:
        raise ValueError(
            f"`{owner}` takes `{new_name}` or its deprecated name "
            f"`{old_name}`, not both. Received: {new_name}={new_value!r}, "
            f"{old_name}={old_value!r}"
        )
    warnings.warn(
        f"`{owner}({old_name}=...)` is deprecated and will be removed; "
        f"use `{new_name}=...` (the same value).",
        DeprecationWarning,
        stacklevel=3,
    )
    return old_value
