"""Training helpers: strategy selection, callbacks, atomic model directories.

Every application writes a model directory with the same layout:

    DIR/model.keras       the trained Keras model (best by validation loss)
    DIR/tokenizer.model   the SentencePiece model used for its text
    DIR/metadata.json     {"task": ..., "preset": ..., ...} written last
    DIR/logs/             TensorBoard logs
    DIR/backup/           `keras.callbacks.BackupAndRestore` state

Files are written to a temporary name and renamed into place, so a killed
job never leaves a half-written model where a good one was.
"""

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time

import keras

logger = logging.getLogger(__name__)

METADATA_FILE = "metadata.json"
MODEL_FILE = "model.keras"
TOKENIZER_FILE = "tokenizer.model"


class ModelDirectoryError(ValueError):
    """A model directory is missing, incomplete or of another application."""


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

    choices = ("auto", "default", "mirrored", "multi_worker", "tpu")
    if name not in choices:
        raise ValueError(
            f"`strategy` must be one of {choices}. Received: strategy={name!r}"
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

    strategy = strategy or model.distribute_strategy
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        with strategy.scope():
            return model.fit(x, **kwargs)
    model._distribute_strategy = None
    with strategy.scope(), _scalar_safe_multi_worker_reduce():
        return model.fit(x, **kwargs)


@contextlib.contextmanager
def _scalar_safe_multi_worker_reduce():
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


def add_scale_arguments(parser):
    """Adds --strategy, --tpu and --mixed-precision to a `train` parser."""
    parser.add_argument(
        "--strategy",
        default="auto",
        choices=("auto", "default", "mirrored", "multi_worker", "tpu"),
        help="tf.distribute strategy (auto: TPU if TPU_NAME, multi-worker "
        "if TF_CONFIG names several workers, mirrored on 2+ GPUs)",
    )
    parser.add_argument("--tpu", default=None, help="TPU name or address")
    parser.add_argument(
        "--mixed-precision",
        default="none",
        choices=("none", "bfloat16", "float16"),
        help="compute dtype of the layers (weights stay float32)",
    )


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


def scale_scope_from_args(args):
    """`scale_scope` for the `--strategy`/`--tpu`/`--mixed-precision` args."""
    return scale_scope(
        getattr(args, "strategy", "auto") or "auto",
        getattr(args, "tpu", None),
        getattr(args, "mixed_precision", "none") or "none",
    )


def _tf_config_workers():
    try:
        config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    except json.JSONDecodeError:
        raise ValueError(
            "`TF_CONFIG` is not valid JSON. Received: "
            f"TF_CONFIG={os.environ.get('TF_CONFIG')!r}"
        ) from None
    return len(config.get("cluster", {}).get("worker", []))


class TimeBudget(keras.callbacks.Callback):
    """Stops training cleanly once a wall-clock budget is spent.

    The check runs after every batch; the epoch in progress ends early and
    the usual end-of-training steps (saving, export) still happen.

    Args:
        max_minutes: the budget in minutes; None disables the callback.
    """

    def __init__(self, max_minutes):
        super().__init__()
        if max_minutes is not None and max_minutes <= 0:
            raise ValueError(
                "`max_minutes` must be positive. "
                f"Received: max_minutes={max_minutes}"
            )
        self.max_minutes = max_minutes
        self.stopped_early = False
        self._start = None

    def on_train_begin(self, logs=None):
        self._start = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        if self.max_minutes is None:
            return
        if time.monotonic() - self._start > 60.0 * self.max_minutes:
            self.stopped_early = True
            self.model.stop_training = True


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` whose backups survive a SIGKILL.

    Keras writes the backup weights in place, so a job killed while saving
    leaves a truncated HDF5 file and the restarted job cannot resume. Here
    the weights and the training state are written to temporary files and
    renamed into place (weights first), so the backup directory always holds
    a complete, loadable backup: the previous one or the new one.

    Args:
        backup_dir: the backup directory.
        save_freq: "epoch" or a number of batches.
    """

    def __init__(self, backup_dir, save_freq="epoch"):
        super().__init__(
            backup_dir, save_freq=save_freq, delete_checkpoint=False
        )

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        tmp_weights = os.path.join(self.backup_dir, ".tmp-latest.weights.h5")
        self.model.save_weights(tmp_weights, overwrite=True)
        state = {"epoch": self._current_epoch, "batch": self._last_batch_seen}
        tmp_state = self._training_metadata_path + ".tmp"
        with open(tmp_state, "w", encoding="utf-8") as f:
            json.dump(state, f)
        os.replace(tmp_weights, self._weights_path)
        os.replace(tmp_state, self._training_metadata_path)


class LearningRateLogger(keras.callbacks.Callback):
    """Adds the optimizer's current learning rate to the epoch logs.

    Place it before `keras.callbacks.TensorBoard` so the rate is written as
    the `learning_rate` scalar.
    """

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            rate = self.model.optimizer.learning_rate
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(rate))


class AtomicBestCheckpoint(keras.callbacks.Callback):
    """Saves the model when `monitor` improves, via a temporary file.

    If training ends before `monitor` was ever logged, the final model is
    saved so that the run always leaves a loadable model.

    Args:
        path: destination `.keras` file.
        monitor: the log key to watch (e.g. "val_loss").
        mode: "min" or "max".
    """

    def __init__(self, path, monitor="val_loss", mode="min"):
        super().__init__()
        if mode not in ("min", "max"):
            raise ValueError(
                f"`mode` must be min or max. Received: mode={mode}"
            )
        self.path = path
        self.monitor = monitor
        self.mode = mode
        self.best = None

    @property
    def _record_path(self):
        return self.path + ".best.json"

    def on_train_begin(self, logs=None):
        # A resumed run must not overwrite a better model saved before the
        # interruption: the best value so far is kept beside the model.
        if self.best is None and os.path.exists(self._record_path):
            with open(self._record_path, encoding="utf-8") as f:
                record = json.load(f)
            if record.get("monitor") == self.monitor:
                self.best = float(record["best"])

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        better = (
            self.best is None
            or (self.mode == "min" and value < self.best)
            or (self.mode == "max" and value > self.best)
        )
        if better:
            self.best = float(value)
            atomic_save_model(self.model, self.path)
            write_json_atomic(
                self._record_path,
                {"monitor": self.monitor, "best": self.best, "epoch": epoch},
            )
            logger.info("Saved %s (%s=%.4f)", self.path, self.monitor, value)

    def on_train_end(self, logs=None):
        # A run stopped before its first validation (a tiny time budget)
        # still leaves a loadable model.
        if not os.path.exists(self.path):
            atomic_save_model(self.model, self.path)


def attention_maps(model, inputs, block_names=None):
    """Attention probabilities of a model's Transformer blocks for `inputs`.

    Works for functional models built from `TransformerEncoder` and
    `TransformerDecoder` blocks: each block's input is recomputed with a
    sub-model and its self-attention is re-run with
    `return_attention_scores=True` (with the causal mask for decoder blocks
    and the Keras padding mask carried by the block input).

    Args:
        model: a functional `keras.Model`.
        inputs: one batch of inputs for `model`.
        block_names: names of the blocks; defaults to every encoder and
            decoder block.

    Returns:
        A dict `{block name: numpy array [B, N, T, T]}`.
    """
    from keras_transformer.layers import TransformerDecoder, TransformerEncoder

    blocks = [
        layer
        for layer in model.layers
        if isinstance(layer, (TransformerEncoder, TransformerDecoder))
        and (block_names is None or layer.name in block_names)
    ]
    if not blocks:
        raise ValueError(
            "The model has no TransformerEncoder/TransformerDecoder blocks "
            f"to draw. Received: block_names={block_names}"
        )
    probe = keras.Model(model.inputs, [_block_input(block) for block in blocks])
    block_inputs = probe(inputs, training=False)
    if not isinstance(block_inputs, (list, tuple)):
        block_inputs = [block_inputs]
    maps = {}
    for block, x in zip(blocks, block_inputs):
        if block.normalize_first:
            norm_name = (
                "self_attention_norm"
                if isinstance(block, TransformerDecoder)
                else "attention_norm"
            )
            x = getattr(block, norm_name)(x)
        causal = isinstance(block, TransformerDecoder)
        _, scores = block.self_attention(
            x, use_causal_mask=causal, return_attention_scores=True
        )
        maps[block.name] = keras.ops.convert_to_numpy(
            keras.ops.cast(scores, "float32")
        )
    return maps


def _block_input(block):
    # The block's first call in the functional graph; its main input.
    block_input = block.input
    if isinstance(block_input, (list, tuple)):
        block_input = block_input[0]
    return block_input


class AttentionMapLogger(keras.callbacks.Callback):
    """Writes attention maps of a fixed example as TensorBoard images.

    At the end of every epoch, for each Transformer block, the heads'
    attention probabilities for the first example of `inputs` are drawn
    side by side (matplotlib) and written with `tf.summary.image` under
    `attention/<block name>`.

    Args:
        log_dir: the TensorBoard directory (e.g. `OUTPUT/logs/attention`).
        inputs: one batch of model inputs; the first example is drawn.
        tokens: optional list of token strings for the axis labels.
        block_names: optional names of the blocks to draw.
    """

    def __init__(self, log_dir, inputs, tokens=None, block_names=None):
        super().__init__()
        self.log_dir = log_dir
        self.inputs = inputs
        self.tokens = tokens
        self.block_names = block_names
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        maps = attention_maps(self.model, self.inputs, self.block_names)
        with self._writer.as_default():
            for name, scores in maps.items():
                image = render_attention_png(scores[0], self.tokens, name)
                tf.summary.image(
                    f"attention/{name}",
                    tf.image.decode_png(image)[None],
                    step=epoch,
                )
        self._writer.flush()


def render_attention_png(scores, tokens=None, title=""):
    """Draws [N, T, S] attention probabilities as one PNG (bytes)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heads = scores.shape[0]
    fig, axes = plt.subplots(1, heads, figsize=(3 * heads, 3.2), squeeze=False)
    for head, ax in enumerate(axes[0]):
        ax.imshow(scores[head], vmin=0.0, vmax=1.0, cmap="viridis")
        ax.set_title(f"{title} head {head}", fontsize=8)
        if tokens is not None:
            n = min(len(tokens), scores.shape[-1])
            ax.set_xticks(range(n), tokens[:n], rotation=90, fontsize=6)
            ax.set_yticks(range(n), tokens[:n], fontsize=6)
        else:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return buffer.getvalue()


def standard_callbacks(
    output_dir,
    max_minutes=None,
    monitor="val_loss",
    mode="min",
    extra=(),
    backup_every_steps=None,
):
    """The callbacks every `train` command uses.

    Args:
        output_dir: the model directory.
        max_minutes: optional wall-clock budget.
        monitor: metric deciding the best checkpoint.
        mode: "min" or "max" for `monitor`.
        extra: more callbacks, run before TensorBoard (so their logs are
            written).
        backup_every_steps: also back up every N batches (default: at the
            end of every epoch only). A restarted run continues from the
            last backup: weights, optimizer state and step count.

    Returns:
        A list: TimeBudget, AtomicBackupAndRestore, LearningRateLogger, *extra,
        AtomicBestCheckpoint, TensorBoard.
    """
    return [
        TimeBudget(max_minutes),
        AtomicBackupAndRestore(
            os.path.join(output_dir, "backup"),
            save_freq=backup_every_steps or "epoch",
        ),
        LearningRateLogger(),
        *extra,
        AtomicBestCheckpoint(
            os.path.join(output_dir, MODEL_FILE), monitor=monitor, mode=mode
        ),
        keras.callbacks.TensorBoard(os.path.join(output_dir, "logs")),
    ]


def atomic_save_model(model, path):
    """Saves a Keras model to `path` through a temporary file and a rename."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, tmp = tempfile.mkstemp(
        prefix=".tmp-", suffix=".keras", dir=directory
    )
    os.close(handle)
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_bytes(path, data):
    """Writes bytes to `path` through a temporary file and a rename."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json_atomic(path, obj):
    """Writes `obj` as indented JSON to `path`, atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


@contextlib.contextmanager
def atomic_directory(final_dir, overwrite=False):
    """Yields a temporary directory that replaces `final_dir` on success.

    On an exception the temporary directory is removed and `final_dir` is
    left as it was.

    Args:
        final_dir: the directory to create.
        overwrite: replace an existing `final_dir`; otherwise an existing one
            is an error.
    """
    final_dir = os.path.abspath(final_dir)
    if os.path.exists(final_dir) and not overwrite:
        raise FileExistsError(
            f"{final_dir} already exists; choose another path or pass "
            "overwrite=True (`--overwrite` on the command line)."
        )
    parent = os.path.dirname(final_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(
        prefix=f".tmp-{os.path.basename(final_dir)}-", dir=parent
    )
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if os.path.exists(final_dir) and not overwrite:
        # Created by someone else while we wrote: keep theirs.
        shutil.rmtree(tmp, ignore_errors=True)
        raise FileExistsError(
            f"{final_dir} was created while this copy was being written; "
            "it is left as it is."
        )
    if os.path.exists(final_dir):
        old = tempfile.mkdtemp(prefix=".old-", dir=parent)
        os.rmdir(old)
        os.replace(final_dir, old)
    os.replace(tmp, final_dir)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def write_metadata(model_dir, task, **fields):
    """Writes `metadata.json` (last, so its presence marks a complete dir)."""
    write_json_atomic(
        os.path.join(model_dir, METADATA_FILE), {"task": task, **fields}
    )


def read_metadata(model_dir, expected_tasks=None):
    """Reads a model directory's metadata with clear errors.

    Args:
        model_dir: the directory written by a `train` command.
        expected_tasks: optional task name or tuple of names; another task
            is an error.

    Returns:
        The metadata dict.
    """
    if not os.path.isdir(model_dir):
        raise ModelDirectoryError(
            f"Model directory not found: {model_dir}. Expected a directory "
            "written by `keras-transformer train`."
        )
    path = os.path.join(model_dir, METADATA_FILE)
    if not os.path.exists(path):
        raise ModelDirectoryError(
            f"{model_dir} is not a keras_transformer model directory "
            f"(no {METADATA_FILE}); was training interrupted before it "
            "finished?"
        )
    with open(path, encoding="utf-8") as f:
        try:
            metadata = json.load(f)
        except json.JSONDecodeError as error:
            raise ModelDirectoryError(
                f"{path} is not valid JSON: {error}"
            ) from None
    if isinstance(expected_tasks, str):
        expected_tasks = (expected_tasks,)
    task = metadata.get("task")
    if expected_tasks and task not in expected_tasks:
        raise ModelDirectoryError(
            f"{model_dir} holds a {task!r} model, but this command needs "
            f"one of {', '.join(map(repr, expected_tasks))}."
        )
    return metadata


def save_float16_weights(model, prefix, max_file_bytes=None):
    """Writes a model's weights in float16, keyed by variable path.

    Half the bytes of the float32 weights, for shipping a pretrained
    encoder or moving weights off a machine with a file-size limit. The
    rounding (relative error at most 2**-11) is far below what fine-tuning
    changes. Files are written atomically.

    Args:
        model: a built Keras model.
        prefix: path without extension; writes `prefix.npz`, or with
            `max_file_bytes` `prefix-0.npz`, `prefix-1.npz`, ...
        max_file_bytes: split into files of at most about this size.

    Returns:
        The list of files written.

    Example:
    >>> files = save_float16_weights(model, "out/weights16")  # doctest: +SKIP
    >>> load_float16_weights(model, files)  # doctest: +SKIP
    """
    import io

    import numpy as np

    parts, part, size = [], {}, 0
    for variable in model.weights:
        value = np.asarray(keras.ops.convert_to_numpy(variable), np.float16)
        if part and max_file_bytes and size + value.nbytes > max_file_bytes:
            parts.append(part)
            part, size = {}, 0
        part[variable.path] = value
        size += value.nbytes
    parts.append(part)
    files = []
    for i, arrays in enumerate(parts):
        path = f"{prefix}-{i}.npz" if max_file_bytes else f"{prefix}.npz"
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(path, buffer.getvalue())
        files.append(path)
    return files


def load_float16_weights(model, files):
    """Loads weights written by `save_float16_weights` into `model`.

    Args:
        model: a model built with the same layers (variable paths).
        files: the files `save_float16_weights` returned, in any order.

    Raises:
        ValueError: a variable of the model is missing from the files or
            has another shape there.
    """
    import numpy as np

    values = {}
    for path in files:
        with np.load(path) as arrays:
            values.update({k: arrays[k] for k in arrays.files})
    missing = [v.path for v in model.weights if v.path not in values]
    if missing:
        raise ValueError(
            f"{len(missing)} weights of model {model.name!r} are not in "
            f"{list(files)} (first: {missing[0]!r}); were they written from "
            "a model with the same architecture?"
        )
    for variable in model.weights:
        value = values[variable.path]
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(
                f"Weight {variable.path!r} has shape {tuple(value.shape)} "
                f"in {list(files)} but {tuple(variable.shape)} in model "
                f"{model.name!r}."
            )
        variable.assign(value.astype(variable.dtype))
