"""Callbacks every trainer uses: time budget, atomic backups and checkpoints,
throughput, text samples and attention maps in TensorBoard.

`standard_callbacks(output_dir, ...)` returns them in the order they must
run. Keras' own `TensorBoard` callback logs the learning rate
(`epoch_learning_rate`), so no callback of ours does.
"""

import json
import logging
import os
import time

import keras

from keras_transformer import _keras_private, model_dir
from keras_transformer.training import plots

logger = logging.getLogger(__name__)


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

    def _save_model(self):  # The hook Keras calls (see _keras_private).
        epoch, batch, weights_path, state_path = _keras_private.backup_state(
            self
        )
        os.makedirs(self.backup_dir, exist_ok=True)
        tmp_weights = os.path.join(self.backup_dir, ".tmp-latest.weights.h5")
        self.model.save_weights(tmp_weights, overwrite=True)
        tmp_state = state_path + ".tmp"
        with open(tmp_state, "w", encoding="utf-8") as f:
            json.dump({"epoch": epoch, "batch": batch}, f)
        os.replace(tmp_weights, weights_path)
        os.replace(tmp_state, state_path)


class AtomicBestCheckpoint(keras.callbacks.Callback):
    """Saves the model when `monitor` improves, via a temporary file.

    If training ends before `monitor` was ever logged, the final model is
    saved so that the run always leaves a loadable model.

    Args:
        path: destination `.keras` file.
        monitor: the log key to watch (e.g. "val_loss").
        mode: "min" or "max".
        on_save: None or a callable `model -> None` run after each save.
    """

    def __init__(self, path, monitor="val_loss", mode="min", on_save=None):
        super().__init__()
        self.on_save = on_save
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
            model_dir.atomic_save_model(self.model, self.path)
            if self.on_save is not None:
                self.on_save(self.model)
            model_dir.write_json_atomic(
                self._record_path,
                {"monitor": self.monitor, "best": self.best, "epoch": epoch},
            )
            logger.info("Saved %s (%s=%.4f)", self.path, self.monitor, value)

    def on_train_end(self, logs=None):
        # A run stopped before its first validation (a tiny time budget)
        # still leaves a loadable model.
        if not os.path.exists(self.path):
            model_dir.atomic_save_model(self.model, self.path)
            if self.on_save is not None:
                self.on_save(self.model)


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
        maps = plots.attention_maps(self.model, self.inputs, self.block_names)
        with self._writer.as_default():
            for name, scores in maps.items():
                image = plots.render_attention_png(scores[0], self.tokens, name)
                tf.summary.image(
                    f"attention/{name}",
                    tf.image.decode_png(image)[None],
                    step=epoch,
                )
        self._writer.flush()


class ThroughputMeter(keras.callbacks.Callback):
    """Time spent in training steps and the tokens per second they reach.

    The first `skip` batches (compilation) are timed into `seconds` but left
    out of `tokens_per_second`. Validation is never timed.

    Args:
        tokens_per_batch: float, tokens one training batch processes.
        skip: int, default 3. Batches at the start left out of the rate.

    Example:
    >>> meter = ThroughputMeter(tokens_per_batch=512)
    >>> meter.tokens_per_second is None
    True
    """

    def __init__(self, tokens_per_batch, skip=3):
        super().__init__()
        self.tokens_per_batch = float(tokens_per_batch)
        self.skip = int(skip)
        self.seconds = 0.0
        self.steps = 0
        self._rate_seconds = 0.0
        self._rate_batches = 0
        self._start = None

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self._start is None:
            return
        elapsed = time.perf_counter() - self._start
        self.seconds += elapsed
        self.steps += 1
        if self.steps > self.skip:
            self._rate_seconds += elapsed
            self._rate_batches += 1

    @property
    def tokens_per_second(self):
        """Tokens per second of the timed batches, or None."""
        if not self._rate_seconds:
            return None
        return self._rate_batches * self.tokens_per_batch / self._rate_seconds

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.tokens_per_second:
            logs["tokens_per_second"] = self.tokens_per_second


class TextSamples(keras.callbacks.Callback):
    """Writes text samples of the model in training to TensorBoard and logs.

    At the end of every epoch `make_samples(model)` returns a list of
    `(input, output)` string pairs (translations of fixed sentences, a
    completion of a fixed prompt), written as a Markdown table with
    `tf.summary.text` under `samples` and logged at INFO level.

    Args:
        log_dir: str, the TensorBoard directory of the samples.
        make_samples: callable `model -> [(input, output), ...]`.
        name: str, default "samples". The summary's name.
    """

    def __init__(self, log_dir, make_samples, name="samples"):
        super().__init__()
        self.log_dir = log_dir
        self.make_samples = make_samples
        self.name = name
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        pairs = self.make_samples(self.model)
        lines = ["| input | output |", "|---|---|"]
        for source, output in pairs:
            logger.info(
                "Sample after epoch %d: %s => %s", epoch + 1, source, output
            )
            cells = [
                c.replace("|", "/").replace("\n", " ") for c in (source, output)
            ]
            lines.append("| " + " | ".join(cells) + " |")
        with self._writer.as_default():
            tf.summary.text(self.name, "\n".join(lines), step=epoch + 1)
        self._writer.flush()


class ProgressBar(keras.callbacks.ProgbarLogger):
    """Keras' progress bar, ending where a time budget stopped the epoch.

    Keras finishes the bar of an epoch at its planned length, so an epoch
    of 634 steps that a budget stopped at step 269 showed `634/634`; this
    bar shows `269/269`. Keras uses it instead of its own when it is in
    the callbacks, with `fit`'s `verbose`.
    """

    def on_epoch_end(self, epoch, logs=None):
        if self.model.stop_training and self.progbar is not None:
            self.target = self.seen
            self.progbar.target = self.seen
        super().on_epoch_end(epoch, logs)


def standard_callbacks(
    output_dir,
    max_minutes=None,
    monitor="val_loss",
    mode="min",
    extra=(),
    backup_every_steps=None,
    on_best=None,
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
        on_best: None or a callable `model -> None` run after each save of
            the best model (a LoRA run saves its adapters there).

    Returns:
        A list: TimeBudget, ProgressBar, AtomicBackupAndRestore, *extra,
        AtomicBestCheckpoint, TensorBoard.
    """
    return [
        TimeBudget(max_minutes),
        ProgressBar(),
        AtomicBackupAndRestore(
            os.path.join(output_dir, model_dir.BACKUP_DIR),
            save_freq=backup_every_steps or "epoch",
        ),
        *extra,
        AtomicBestCheckpoint(
            os.path.join(output_dir, model_dir.MODEL_FILE),
            monitor=monitor,
            mode=mode,
            on_save=on_best,
        ),
        keras.callbacks.TensorBoard(
            os.path.join(output_dir, model_dir.LOGS_DIR)
        ),
    ]
