"""Every use of a private Keras API, in one place.

Keras has no public way to do these four things, so they are done here and
nowhere else; `tests/test_keras_private.py` fails loudly, naming the
attribute, when a Keras release changes one of them. `pyproject.toml` pins
`keras<3.16` while this module exists.

- `implicit_mask(x)`: the mask Keras attaches to a tensor (`_keras_mask`),
  read by the attention layers to merge it with explicit masks.
- `detach_strategy(model)`: forgets the strategy a model was built under
  (`_distribute_strategy`), so `fit` under `MultiWorkerMirroredStrategy`
  takes it from the enclosing scope (keras-team/keras#20585).
- `scalar_safe_multi_worker_reduce()`: patches the TensorFlow trainer's
  `reduce_per_replica` for multi-worker runs whose logs are scalars.
- `BACKUP_STATE`: the attributes of `keras.callbacks.BackupAndRestore`
  that an atomic backup writer must read (`_save_model` is its hook).
"""

import contextlib

MASK_ATTRIBUTE = "_keras_mask"
STRATEGY_ATTRIBUTE = "_distribute_strategy"
BACKUP_SAVE_HOOK = "_save_model"
BACKUP_STATE = (
    "_current_epoch",
    "_last_batch_seen",
    "_weights_path",
    "_training_metadata_path",
)


def implicit_mask(x):
    """The Keras mask attached to tensor `x`, or None."""
    return getattr(x, MASK_ATTRIBUTE, None)


def detach_strategy(model):
    """Makes `model` take its strategy from the enclosing scope."""
    setattr(model, STRATEGY_ATTRIBUTE, None)


def backup_state(callback):
    """`(epoch, batch, weights_path, state_path)` of a BackupAndRestore."""
    return tuple(getattr(callback, name) for name in BACKUP_STATE)


@contextlib.contextmanager
def scalar_safe_multi_worker_reduce():
    """Patches Keras's per-replica reduction for scalar multi-worker logs.

    Keras 3.15 reduces every log of a multi-worker train step with
    `strategy.reduce("MEAN", value, axis=0)`, which fails on scalars. Logs
    are metric results whose states are already aggregated across workers,
    so the local value is the global one; take it. Restored on exit.
    """
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original = tf_trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction == "auto":
            reduction = "first"
        return original(values, strategy, reduction)

    tf_trainer.reduce_per_replica = reduce_per_replica
    try:
        yield
    finally:
        tf_trainer.reduce_per_replica = original


def check():
    """Raises RuntimeError naming each private API that is gone.

    Returns:
        None when every private API this module uses exists.
    """
    import keras

    problems = []
    try:
        from keras.src.backend.tensorflow import trainer as tf_trainer

        if not callable(getattr(tf_trainer, "reduce_per_replica", None)):
            problems.append("keras.src...trainer.reduce_per_replica")
    except ImportError as error:
        problems.append(f"keras.src.backend.tensorflow.trainer ({error})")
    callback = keras.callbacks.BackupAndRestore("/nonexistent-backup")
    for name in BACKUP_STATE:
        if not hasattr(callback, name):
            problems.append(f"BackupAndRestore.{name}")
    if not callable(getattr(callback, BACKUP_SAVE_HOOK, None)):
        problems.append(f"BackupAndRestore.{BACKUP_SAVE_HOOK}")
    model = keras.Sequential([keras.layers.Dense(1)])
    if not hasattr(model, STRATEGY_ATTRIBUTE):
        problems.append(f"Model.{STRATEGY_ATTRIBUTE}")
    masked = keras.layers.Embedding(5, 2, mask_zero=True)(
        keras.ops.convert_to_tensor([[1, 0]])
    )
    if implicit_mask(masked) is None:
        problems.append(f"tensor.{MASK_ATTRIBUTE}")
    if problems:
        raise RuntimeError(
            f"Keras {keras.__version__} changed private APIs that "
            "keras_transformer._keras_private uses: " + ", ".join(problems)
        )
