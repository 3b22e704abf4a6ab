"""The steps every task runner shares, in the order a runner takes them.

`start_run` (refuse another task's directory, record or check the settings),
`hold_out` (the validation split), `tokenizer_or_resume`, then the task's own
model and pipelines, `run_fit` (the standard callbacks, throughput, text
samples; returns a `FitResult`) and `finish` (the one metadata schema of
`keras_transformer.model_dir`, the model card, the learning curves).
"""

import dataclasses
import logging
import math
import os
import sys
import time

import keras

from keras_transformer import model_dir as model_dir_lib
from keras_transformer import training
from keras_transformer.layers._utils import renamed_argument
from keras_transformer.tasks._tokenizer import (  # noqa: F401
    tokenizer_or_resume,
    tokenizer_summary,
)

logger = logging.getLogger(__name__)

# Settings that bound a run rather than define it: a resumed run may change
# them without --force (to train for longer, say).
BUDGET_SETTINGS = ("epochs", "max_minutes", "verbose", "force")

VALIDATION_SHARE = 0.05
MAX_VALIDATION_EXAMPLES = 1000


def default_verbose():
    """Keras progress bars on a terminal, one line per epoch otherwise."""
    return 1 if sys.stdout.isatty() else 2


def start_run(output_dir, task, settings, force=False):
    """Prepares `output_dir` for a run of `task`.

    Args:
        output_dir: str, the model directory (created if missing).
        task: str, the task name (`model_dir.TASKS`).
        settings: dict, the run's settings; those in `BUDGET_SETTINGS` are
            not compared on resume.
        force: bool, default False. Accept settings that differ from the
            recorded ones.

    Returns:
        True when the directory holds an earlier run of the same task (the
        run resumes or trains further), else False.

    Raises:
        ValueError: `output_dir` is a file or holds another task's model.
        ResumeMismatchError: the settings differ from the recorded ones.
    """
    output_dir = os.fspath(output_dir)
    if os.path.isfile(output_dir):
        raise ValueError(
            f"`output` must be a directory. Received: output={output_dir}"
        )
    metadata_path = os.path.join(output_dir, model_dir_lib.METADATA_FILE)
    if os.path.exists(metadata_path):
        model_dir_lib.read_metadata(output_dir, task)
    _forget_unstarted_run(output_dir)
    compared = {k: v for k, v in settings.items() if k not in BUDGET_SETTINGS}
    previous = model_dir_lib.check_resume(output_dir, compared, force=force)
    return previous is not None


def _forget_unstarted_run(output_dir):
    # A run that stopped before its first step (a bad data line, a wrong
    # argument found late) left its settings and perhaps a tokenizer but no
    # model, backup or metadata: the next run starts afresh with its own.
    started = (
        model_dir_lib.MODEL_FILE,
        model_dir_lib.METADATA_FILE,
        model_dir_lib.BACKUP_DIR,
    )
    if any(os.path.exists(os.path.join(output_dir, n)) for n in started):
        return
    for name in (model_dir_lib.RUN_FILE, model_dir_lib.TOKENIZER_FILE):
        path = os.path.join(output_dir, name)
        if os.path.isfile(path):
            os.remove(path)


def run_settings(arguments, runner, renamed=None):
    """A runner's settings (`run.json`): its arguments but the directory.

    Args:
        arguments: dict, the runner's `locals()` at its start.
        runner: str, the runner's name, for deprecation messages.
        renamed: None (default) or `(new_name, old_name)`: the deprecated
            old name's value moves to the new name.
    """
    settings = {
        k: v for k, v in arguments.items() if k not in ("output_dir", "output")
    }
    if renamed:
        new, old = renamed
        settings[new] = renamed_argument(
            runner, new, settings[new], old, settings.pop(old)
        )
    return settings


def hold_out(items, count=None):
    """Splits a deterministic validation share off a list.

    Every k-th item is held out, so the split spreads over the whole file
    (no sorted tail ends up in validation) and is the same on every run.

    Args:
        items: list (or several equal-length lists in a tuple).
        count: int or None (default): 5% of the items, at least 1, at most
            1000.

    Returns:
        `(train, held_out)`, each of the same kind as `items`.

    Example:
    >>> hold_out(list(range(10)), count=2)
    ([1, 2, 3, 4, 6, 7, 8, 9], [0, 5])
    """
    columns = items if isinstance(items, tuple) else (items,)
    size = len(columns[0])
    if count is None:
        count = min(
            MAX_VALIDATION_EXAMPLES, max(1, round(size * VALIDATION_SHARE))
        )
    step = max(1, size // max(1, count))
    held = set(range(0, size, step)[:count])
    train = [[c[i] for i in range(size) if i not in held] for c in columns]
    valid = [[c[i] for i in sorted(held)] for c in columns]
    if isinstance(items, tuple):
        return tuple(train), tuple(valid)
    return train[0], valid[0]


@dataclasses.dataclass
class FitResult:
    """What `run_fit` measured.

    Attributes:
        history: dict `{log name: [value per epoch]}` of this run.
        steps: int, optimizer steps in the model (resumed runs included).
        train_seconds: float, time in training steps of this run.
        wall_seconds: float, wall time of `fit`.
        tokens_per_second: float or None, training throughput.
        stopped_early: bool, the time budget ended the run.
        best: float or None, the best value of the monitored log.
    """

    history: dict
    steps: int
    train_seconds: float
    wall_seconds: float
    tokens_per_second: float
    stopped_early: bool
    best: float

    def metrics(self, monitor):
        """The figures every task records: final logs, best, throughput."""
        final = {k: float(v[-1]) for k, v in self.history.items() if v}
        figures = {k: round(v, 6) for k, v in final.items()}
        figures[f"best_{monitor}"] = self.best
        figures["tokens_per_second"] = (
            round(self.tokens_per_second, 1) if self.tokens_per_second else None
        )
        figures["stopped_early"] = self.stopped_early
        return figures


def run_fit(
    model,
    train_data,
    valid_data,
    output_dir,
    *,
    epochs,
    steps_per_epoch,
    max_minutes=None,
    monitor="val_loss",
    mode="min",
    tokens_per_batch=0.0,
    samples=None,
    extra=(),
    backup_every_steps=None,
    verbose="auto",
    lora_callbacks=None,
):
    """Trains with the standard callbacks and says what will happen.

    `train_data` must repeat (`.repeat()`): every epoch is
    `steps_per_epoch` steps, so Keras never runs out of data and a time
    budget stops a run at a step boundary with a clear message.

    Args:
        model: a compiled `keras.Model`.
        train_data: a repeating `tf.data.Dataset`.
        valid_data: a finite `tf.data.Dataset`.
        output_dir: str, the model directory.
        epochs: int, the most epochs (a time budget may stop sooner).
        steps_per_epoch: int, steps between validations and checkpoints.
        max_minutes: float or None (default), the wall-clock budget.
        monitor: str, default "val_loss". The log deciding the best model.
        mode: "min" (default) or "max" for `monitor`.
        tokens_per_batch: float, for the throughput figure.
        samples: None or a callable `model -> [(input, output), ...]` whose
            pairs are logged and written to TensorBoard every epoch.
        extra: more callbacks, run before the checkpoint callback.
        backup_every_steps: int or None (default): back up for resuming
            every N steps as well as every epoch.
        verbose: "auto" (default: bars on a terminal, a line per epoch
            otherwise), 0, 1 or 2.
        lora_callbacks: None (default) or `(resume callback, on_best)` of a
            LoRA run (`keras_transformer.tasks._init_from.run_fit_options`).

    Returns:
        A `FitResult`.
    """
    if verbose == "auto":
        verbose = default_verbose()
    meter = training.ThroughputMeter(tokens_per_batch)
    on_best = None
    if lora_callbacks is not None:
        resume, on_best = lora_callbacks
        extra = (*extra, resume)
    callbacks = list(extra) + [meter]
    if samples is not None:
        callbacks.append(
            training.TextSamples(
                os.path.join(output_dir, model_dir_lib.LOGS_DIR, "samples"),
                samples,
            )
        )
    callbacks = training.standard_callbacks(
        output_dir,
        max_minutes=max_minutes,
        monitor=monitor,
        mode=mode,
        extra=callbacks,
        backup_every_steps=backup_every_steps,
        on_best=on_best,
    )
    budget, checkpoint = callbacks[0], callbacks[-2]
    logger.info(
        "Training for %s%d epochs of %d steps, validating after each; the "
        "best model by %s is kept in %s.",
        f"up to {max_minutes:g} minutes, at most " if max_minutes else "",
        epochs,
        steps_per_epoch,
        monitor,
        os.path.join(output_dir, model_dir_lib.MODEL_FILE),
    )
    start = time.monotonic()
    history = training.fit(
        model,
        train_data,
        validation_data=valid_data,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=callbacks,
        verbose=verbose,
    )
    wall = time.monotonic() - start
    steps = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    if budget.stopped_early:
        logger.info(
            "The %g-minute budget ended training at step %d (epoch %d cut "
            "short); the best model so far is kept.",
            max_minutes,
            steps,
            len(history.epoch),
        )
    logger.info(
        "Resume state kept in %s: running the same command again continues "
        "from step %d (add epochs or minutes to train further); delete it "
        "to start over.",
        os.path.join(output_dir, model_dir_lib.BACKUP_DIR),
        steps,
    )
    return FitResult(
        history={k: [float(x) for x in v] for k, v in history.history.items()},
        steps=steps,
        train_seconds=meter.seconds,
        wall_seconds=wall,
        tokens_per_second=meter.tokens_per_second,
        stopped_early=bool(budget.stopped_early),
        best=checkpoint.best,
    )


def steps_per_epoch_for(examples, batch_size, steps_per_epoch=None):
    """One pass over the data per epoch unless `steps_per_epoch` is given."""
    if steps_per_epoch is not None:
        return int(steps_per_epoch)
    return max(1, math.ceil(examples / batch_size))


def finish(
    output_dir,
    task,
    *,
    config,
    settings,
    tokenizer,
    data,
    inference,
    fit_result,
    metrics,
    parent=None,
    application=None,
):
    """Writes the metadata, the model card and the learning curves.

    Args:
        output_dir: str, the model directory.
        task: str, the task name.
        config: dict, the application function's keyword arguments.
        settings: dict, the run's settings.
        tokenizer: the `SubwordTokenizer` (or the metadata dict of one).
        data: dict, where the data came from and how much there was.
        inference: dict, what the inference objects need.
        fit_result: the `FitResult` of `run_fit`, or None.
        metrics: dict of figures to record.
        parent: str or None, the directory or preset this run started from.
        application: str or None (default: the task's usual function), see
            `model_dir.make_metadata`.

    Returns:
        The metadata dict written.
    """
    if not isinstance(tokenizer, dict):
        tokenizer = tokenizer_summary(tokenizer)
    metadata = model_dir_lib.make_metadata(
        task,
        config=config,
        settings=settings,
        tokenizer=tokenizer,
        data=data,
        inference=inference,
        train_seconds=fit_result.train_seconds if fit_result else None,
        steps=fit_result.steps if fit_result else 0,
        metrics=metrics,
        parent=parent,
        application=application,
    )
    if fit_result is not None and fit_result.history:
        model_dir_lib.atomic_write_bytes(
            os.path.join(output_dir, "learning_curves.png"),
            training.plot_learning_curves(fit_result.history, title=task),
        )
    model_dir_lib.write_metadata(output_dir, metadata)
    return metadata


def abspath(path):
    """`os.path.abspath`, None and lists included."""
    if path is None:
        return None
    if isinstance(path, (list, tuple)):
        return [os.path.abspath(p) for p in path]
    return os.path.abspath(path)


def check_positive(integers=(), numbers=()):
    """Raises `ValueError` naming the first setting that is not positive.

    A value of None passes: it stands for a setting left to its default.

    Args:
        integers: iterable of `(name, value)` pairs whose values must be
            integers of at least 1 (not bools).
        numbers: iterable of `(name, value)` pairs whose values must be
            numbers above 0.

    Example:
    >>> check_positive(integers=[("epochs", 0)])
    Traceback (most recent call last):
    ...
    ValueError: `epochs` must be a positive integer. Received: epochs=0
    """
    for name, value in integers:
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ValueError(
                f"`{name}` must be a positive integer. Received: "
                f"{name}={value!r}"
            )
    for name, value in numbers:
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not value > 0
        ):
            raise ValueError(
                f"`{name}` must be a positive number. Received: "
                f"{name}={value!r}"
            )


def finish_training(output_dir, task, model, fit_result, entries):
    """The last step of a training runner: `finish` with the fit's figures.

    The metrics are `FitResult.metrics("val_loss")`, the validation logs of
    the epoch that gave the kept model (`best_val_accuracy`, ...; absent
    when that epoch was in an earlier run), `epochs_run` and `parameters`.
    A rerun of a finished run restores it from its backup and trains
    nothing: its metadata then stays as it was.

    Args:
        output_dir: str, the model directory.
        task: str, the task name.
        model: the trained `keras.Model`.
        fit_result: the `FitResult` of `run_fit`.
        entries: dict, the `config`, `settings`, `tokenizer`, `data` and
            `inference` arguments of `finish`.

    Returns:
        The metadata dict written (or kept).
    """
    metadata_path = os.path.join(output_dir, model_dir_lib.METADATA_FILE)
    if not fit_result.history and os.path.exists(metadata_path):
        logger.info("%s had already trained every epoch asked for.", output_dir)
        return model_dir_lib.read_metadata(output_dir, task)
    metrics = fit_result.metrics("val_loss")
    losses = fit_result.history.get("val_loss") or []
    if (
        losses
        and fit_result.best is not None
        and min(losses) <= fit_result.best
    ):
        best_epoch = losses.index(min(losses))
        for name, values in fit_result.history.items():
            if name.startswith("val_") and name != "val_loss":
                metrics[f"best_{name}"] = values[best_epoch]
    metrics["epochs_run"] = len(fit_result.history.get("loss", []))
    metrics["parameters"] = int(model.count_params())
    return finish(
        output_dir, task, fit_result=fit_result, metrics=metrics, **entries
    )


def known_cardinality(dataset):
    """`dataset` with its number of batches known to Keras.

    After validating on a dataset whose length `tf.data` cannot infer (a
    `bucket_by_sequence_length` pipeline, for one), Keras warns "Your input
    ran out of data" at every epoch. Counting the batches once (a finite
    dataset) and asserting the count keeps that warning for real problems.

    Args:
        dataset: a finite `tf.data.Dataset`.

    Returns:
        The dataset, with a known cardinality.
    """
    import tensorflow as tf

    if int(dataset.cardinality()) >= 0:
        return dataset
    count = int(dataset.reduce(0, lambda count, *_: count + 1))
    return dataset.apply(tf.data.experimental.assert_cardinality(count))
