"""Distribution strategies, mixed precision and a `fit` that works with both.

`scale_scope(strategy, tpu, mixed_precision)` is what every trainer runs
inside; `fit(model, data, ...)` is `model.fit` with the multi-worker
workaround (see its docstring).
"""

import contextlib
import json
import os

import keras

from keras_transformer import _keras_private

STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")


def distribution_strategy(name="auto", tpu=None):
    """Returns a `tf.distribute` strategy for the hardware at hand.

    With `name="auto"`: TPUStrategy when `tpu` is given or `TPU_NAME` is set,
    MultiWorkerMirroredStrategy when `TF_CONFIG` names several workers,
    MirroredStrategy with more than one GPU, else the default strategy.

    Args:
        name: "auto", "default", "mirrored", "multi_worker" or "tpu".
        tpu: optional TPU address or name for the TPU cluster resolver.

    Returns:
        A `tf.distribute.Strategy`.

    Example:
    >>> from keras_transformer.training import distribution_strategy
    >>> strategy = distribution_strategy("default")
    >>> strategy.num_replicas_in_sync
    1
    """
    import tensorflow as tf

    if name not in STRATEGIES:
        raise ValueError(
            f"`strategy` must be one of {STRATEGIES}. "
            f"Received: strategy={name!r}"
        )
    if name == "auto":
        if tpu or os.environ.get("TPU_NAME"):
            name = "tpu"
        elif _tf_config_workers() > 1:
            name = "multi_worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            tpu=tpu or os.environ.get("TPU_NAME")
        )
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.OpError, RuntimeError) as error:
        raise ValueError(
            "No TPU could be reached; set `--tpu` / `TPU_NAME` to a TPU "
            f"address. Received: tpu={tpu!r} ({error})"
        ) from None
    return tf.distribute.TPUStrategy(resolver)


def fit(model, x, strategy=None, **kwargs):
    """Runs `model.fit` under a distribution strategy.

    Works around two Keras 3 problems with `MultiWorkerMirroredStrategy`
    (keras-team/keras#20585): the eager symbolic build reduces the first
    data batch across workers and fails on integer inputs, so the model takes
    its strategy from the enclosing scope instead (the build then happens in
    the traced train step, which distributes as usual); and the logs are
    read from the local replica, because Keras's cross-worker mean of them
    fails on scalars (metric states are aggregated across workers anyway).

    Args:
        model: a compiled `keras.Model` created under `strategy.scope()`.
        x: the training data (a `tf.data.Dataset`).
        strategy: the strategy; defaults to the model's.
        **kwargs: more `model.fit` arguments.

    Returns:
        The `History` returned by `model.fit`.
    """
    import tensorflow as tf

    if isinstance(x, tf.data.Dataset):
        # A dataset shuffles in its pipeline; Keras warns that its own
        # `shuffle` (True by default) is ignored for one.
        kwargs.setdefault("shuffle", False)
    strategy = strategy or model.distribute_strategy
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        with strategy.scope():
            return model.fit(x, **kwargs)
    _keras_private.detach_strategy(model)
    with strategy.scope(), _keras_private.scalar_safe_multi_worker_reduce():
        return model.fit(x, **kwargs)


PRECISIONS = {
    "none": "float32",
    "float32": "float32",
    "bfloat16": "mixed_bfloat16",
    "float16": "mixed_float16",
}


def set_mixed_precision(precision):
    """Sets the global Keras dtype policy from a `--mixed-precision` value.

    Layers keep float32 weights and compute in the half dtype; the library's
    attention softmax, layer norms, logits and losses stay in float32. Under
    "float16", `model.compile` wraps the optimizer in a
    `keras.optimizers.LossScaleOptimizer` (dynamic loss scaling).

    Args:
        precision: "none"/"float32", "bfloat16" or "float16".

    Returns:
        The policy name that was set.
    """
    if precision not in PRECISIONS:
        raise ValueError(
            f"`mixed_precision` must be one of {sorted(PRECISIONS)}. "
            f"Received: mixed_precision={precision!r}"
        )
    policy = PRECISIONS[precision]
    keras.config.set_dtype_policy(policy)
    return policy


@contextlib.contextmanager
def scale_scope(strategy="auto", tpu=None, mixed_precision="none"):
    """Runs the enclosed training under a strategy and a dtype policy.

    Models, optimizers and metrics created inside are placed by the
    strategy (`strategy.scope()`); layers created inside use the mixed
    precision policy. The previous global policy is restored on exit.
    Use `keras_transformer.training.fit` (not `model.fit`) inside, so
    multi-worker runs work with Keras 3.

    Args:
        strategy: a name for `distribution_strategy` or a strategy object.
        tpu: TPU name or address for `strategy="tpu"`/"auto".
        mixed_precision: "none", "bfloat16" or "float16".

    Yields:
        The `tf.distribute.Strategy`.

    Example:
    >>> from keras_transformer import training
    >>> with training.scale_scope("default", mixed_precision="none") as s:
    ...     s.num_replicas_in_sync
    1
    """
    previous = keras.config.dtype_policy()
    if isinstance(strategy, str):
        strategy = distribution_strategy(strategy, tpu)
    set_mixed_precision(mixed_precision or "none")
    try:
        with strategy.scope():
            yield strategy
    finally:
        keras.config.set_dtype_policy(previous)


def _tf_config_workers():
    try:
        config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    except json.JSONDecodeError:
        raise ValueError(
            "`TF_CONFIG` is not valid JSON. Received: "
            f"TF_CONFIG={os.environ.get('TF_CONFIG')!r}"
        ) from None
    return len(config.get("cluster", {}).get("worker", []))
